"""The JSON boundary of the typed results (results.model, results.header): lenient field readers for a
document the strict reader (`validate`) has already checked, and the one way a record goes back to JSON.

Every record keeps the keys this chipbench does not model (`other`) and, when it was read from JSON, the
order its keys came in (`key_order`): a file read and written again keeps its keys and their order, and
a record built in code writes its keys in the order chipbench has always written them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JSONObject = dict[str, Any]
"""A JSON object as it crosses the wire (a results file, a worker's reply): the one untyped shape."""


@dataclass(frozen=True)
class Record:
    """What every results record carries besides its typed fields."""

    other: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    """Keys this chipbench does not model (another version's, pytest-benchmark's), kept as read."""
    key_order: tuple[str, ...] | None = field(default=None, kw_only=True, compare=False, repr=False)
    """The keys as read, in their order; None for a record built in code (then the canonical order)."""


def obj(x: Any) -> JSONObject:
    """`x` when it is a JSON object, else an empty one."""
    return x if isinstance(x, dict) else {}


def opt_obj(x: Any) -> JSONObject | None:
    return x if isinstance(x, dict) else None


def text(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def integer(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def flag(x: Any) -> bool | None:
    return x if isinstance(x, bool) else None


def number(x: Any) -> float | None:
    """A JSON number as read (an integer stays one, so it is written back the same), or None for
    anything else (a string, a boolean, a non-finite float)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def numbers(x: Any) -> tuple[float, ...] | None:
    if not isinstance(x, list):
        return None
    got = [number(v) for v in x]
    return tuple(v for v in got if v is not None)


def number_map(x: Any) -> dict[str, float]:
    """A JSON object's numeric values (others left out: the strict reader has refused them)."""
    got = {str(k): number(v) for k, v in obj(x).items()}
    return {k: v for k, v in got.items() if v is not None}


def text_map(x: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in obj(x).items() if v is not None}


def texts(x: Any) -> tuple[str, ...]:
    return tuple(v for v in x if isinstance(v, str)) if isinstance(x, list) else ()


def each(reader: Callable[[Any], Any], d: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """Keyword arguments of a record: each key's value in `d` through `reader` (the record's fields
    give their types)."""
    return {k: reader(d.get(k)) for k in keys}


def rest(d: Mapping[str, Any], known: Sequence[str]) -> JSONObject:
    """The keys of `d` not in `known`, in their order."""
    return {k: v for k, v in d.items() if k not in known}


def read(d: Mapping[str, Any], known: Sequence[str]) -> JSONObject:
    """The `other` and `key_order` arguments of a record read from `d`."""
    return {"other": rest(d, known), "key_order": tuple(d)}


def fields(rec: Record, order: Sequence[str]) -> JSONObject:
    """A record's fields named in `order`, as they are (a `to_json` turns the nested ones to JSON)."""
    return {k: getattr(rec, k) for k in order}


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, (list, tuple, dict)) and not v)


def emit(known: Sequence[tuple[str, Any]], rec: Record) -> JSONObject:
    """A record's JSON object: its typed fields (`known`, already JSON) and the keys it kept.

    Built in code: the known keys in their canonical order (None included), then the kept ones. Read
    from JSON: the keys in the order read; a known key the file lacked is added only when it now holds
    something (a value set since), so a file read and written again keeps its shape.
    """
    if rec.key_order is None:
        out = dict(known)
        out.update((k, v) for k, v in rec.other.items() if k not in out)
        return out
    values = dict(known)
    out = {}
    for k in rec.key_order:
        if k in values:
            out[k] = values[k]
        elif k in rec.other:
            out[k] = rec.other[k]
    for k, v in known:
        if k not in out and not _empty(v):
            out[k] = v
    out.update((k, v) for k, v in rec.other.items() if k not in out)
    return out


def clean(x: Any) -> Any:
    """JSON has no NaN or infinity: store them as null (and tuples as lists)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x
