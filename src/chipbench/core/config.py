"""Typed, frozen config dataclasses and `--set key=value` overrides validated against them."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from chipbench.core.errors import UsageError
from chipbench.core.wire import Overrides

C = TypeVar("C")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_sets(items: list[str] | None, flag: str = "--set") -> dict[str, str]:
    """Parse `key=value` strings (as given to `--set`, or `flag`) into a dict; later keys win."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {item!r} is not key=value (example: {flag} batch_size=64)")
        out[key.strip()] = value.strip()
    return out


MAX_INT = 2**62
"""Largest magnitude an integer field takes (larger values overflow torch's int64 sizes)."""
_SEPARATOR = re.compile(r",|(?<=\d)-(?=\d)")
"""Tuple items: `13,512,64` or `13-512-64`; a '-' between digits separates, a leading one is a sign."""


def finite_number(x: Any) -> bool:
    """An int or float (never a bool) that is finite: what a value read from JSON must be to be a figure.
    An integer too large for any float is not."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def parse_int(name: str, value: str) -> int:
    """An exact integer: '64', '1_000', '1e6' (integral), never a fraction or an out-of-range value."""
    text = value.strip()
    try:
        n = int(text.replace("_", ""))
    except ValueError:
        try:
            f = float(text)
        except ValueError:
            raise UsageError(f"{name}={value!r} is not a valid int") from None
        if not math.isfinite(f) or f != int(f):
            raise UsageError(f"{name}={value!r} is not a valid int (a whole number)") from None
        n = int(f)
    if abs(n) > MAX_INT:
        raise UsageError(f"{name}={value[:40]!r} is out of range (at most 2^62 in magnitude)")
    return n


def parse_float(name: str, value: str) -> float:
    """A finite float: never nan or inf (nor a number too large to be finite)."""
    try:
        f = float(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} is not a valid float") from None
    if not math.isfinite(f):
        raise UsageError(f"{name}={value[:40]!r} is not a finite number")
    return f


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null", "") and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        # Members in order: the first that reads the value wins (bool | Literal["auto"] takes
        # "true" as True and "auto" as "auto"); none: every member's reason, in one line.
        if len(non_none) == 1:
            return _coerce(name, value, non_none[0])
        errors = []
        for member in non_none:
            try:
                return _coerce(name, value, member)
            except UsageError as exc:
                errors.append(str(exc).removeprefix(f"{name}={value!r} "))
        raise UsageError(f"{name}={value!r} " + "; ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise UsageError(f"{name}={value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        inner = args[0] if args else str
        parts = [p for p in _SEPARATOR.split(value) if p.strip()] if value.strip() else []
        return tuple(_coerce(name, p.strip(), inner) for p in parts)
    if annotation is bool:
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise UsageError(f"{name}={value!r} is not a valid bool")
    if annotation is int:
        return parse_int(name, value)
    if annotation is float:
        return parse_float(name, value)
    return value


def apply_overrides(base: C, overrides: Mapping[str, Any]) -> C:
    """Return a copy of the dataclass `base` with string or typed overrides applied and validated."""
    assert dataclasses.is_dataclass(base) and not isinstance(base, type)
    hints = typing.get_type_hints(type(base))
    fields = {f.name for f in dataclasses.fields(base) if f.init}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UsageError(
            f"unknown config key {unknown[0]!r} for {type(base).__name__}; valid keys: {', '.join(sorted(fields))}"
        )
    values = {k: _coerce(k, v, hints[k]) for k, v in overrides.items()}
    try:
        return dataclasses.replace(base, **values)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"invalid config: {exc}") from None


def config_dict(cfg: Any) -> Overrides:
    """A JSON-ready dict of a config dataclass."""
    out = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def check(cond: bool, msg: str) -> None:
    """Validation helper for `__post_init__`: raise ValueError with `msg` when `cond` is false."""
    if not cond:
        raise ValueError(msg)
