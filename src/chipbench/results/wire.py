"""The JSON boundary of the typed results (results.model, results.header): lenient field readers for a
document the strict reader (`validate`) has already checked, and the one way a record goes to and from JSON.

A record's fields are its JSON keys: `Record.from_json` reads each through the reader its type gives
(`_reader`), and `Record.to_json` writes them back in the record's key order. Every record keeps the keys
this chipbench does not model (`other`) and, when it was read from JSON, the order its keys came in
(`key_order`): a file read and written again keeps its keys and their order, and a record built in code
writes its keys in the order chipbench has always written them.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from typing_extensions import Self

JSONObject = dict[str, Any]
"""A JSON object as it crosses the wire (a results file, a worker's reply): the one untyped shape."""

Reader = Callable[[Any], Any]


@dataclass(frozen=True)
class Record:
    """What every results record carries besides its typed fields, and its way to and from JSON."""

    other: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    """Keys this chipbench does not model (another version's, pytest-benchmark's), kept as read."""
    key_order: tuple[str, ...] | None = field(default=None, kw_only=True, compare=False, repr=False)
    """The keys as read, in their order; None for a record built in code (then the canonical order)."""

    ORDER: ClassVar[tuple[str, ...]] = ()
    """The keys in the order chipbench writes them, where that is not the fields' order."""
    OMIT_NONE: ClassVar[tuple[str, ...]] = ()
    """Keys a record built in code leaves out while None (written only once set)."""
    ABSENT: ClassVar[Mapping[str, Any]] = {}
    """A field's value when its key is missing or empty, where that is not its default (or, for a field
    without one, `?`, 0, 0.0 or False by its type)."""

    @classmethod
    def json_keys(cls) -> tuple[str, ...]:
        return cls.ORDER or tuple(f.name for f in dataclasses.fields(cls) if f.name not in _OWN)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        """The record of a JSON object (checked by results.validate when it came from a file)."""
        values = {name: reader(d.get(name)) for name, reader in _readers(cls).items()}
        return cls(**values, **read(d, cls.json_keys()))

    def to_json(self) -> JSONObject:
        """The JSON object: the fields under their keys (nested records as theirs), then the kept keys."""
        pairs = [(k, as_json(getattr(self, k))) for k in self.json_keys()]
        if self.key_order is None:
            pairs = [(k, v) for k, v in pairs if v is not None or k not in self.OMIT_NONE]
        return emit(pairs, self)


_OWN = ("other", "key_order")


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


def rest(d: Mapping[str, Any], known: Sequence[str]) -> JSONObject:
    """The keys of `d` not in `known`, in their order."""
    return {k: v for k, v in d.items() if k not in known}


def read(d: Mapping[str, Any], known: Sequence[str]) -> JSONObject:
    """The `other` and `key_order` arguments of a record read from `d`."""
    return {"other": rest(d, known), "key_order": tuple(d)}


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


def as_json(v: Any) -> Any:
    """A field's value as JSON: a record's object, a tuple's list, a mapping's copy."""
    if isinstance(v, Record):
        return v.to_json()
    if isinstance(v, (tuple, list)):
        return [as_json(x) for x in v]
    if isinstance(v, Mapping):
        return {k: as_json(x) for k, x in v.items()}
    return v


def _texts_or_none(x: Any) -> dict[str, str | None]:
    return {str(k): v for k, v in obj(x).items() if v is None or isinstance(v, str)}


_SCALARS: dict[Any, Reader] = {str: text, int: integer, float: number}
_MAPS: dict[Any, Reader] = {Any: opt_obj, float: number_map, str: text_map, str | None: _texts_or_none}
_BY_TYPE: dict[Any, Any] = {str: "?", int: 0, float: 0.0, bool: False}


def _reader(t: Any, optional: bool = False) -> Reader:
    """How a field of type `t` is read: None for a value of another shape (an optional field keeps it)."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if _is_optional(t):
        return _reader(next(a for a in args if a is not type(None)), optional=True)
    if isinstance(t, type) and issubclass(t, Record):
        return _record_reader(t, optional)
    if t is bool:
        return flag if optional else bool
    if t in _SCALARS:
        return _SCALARS[t]
    if origin is tuple and args == (str, ...):
        return texts
    if origin is tuple and args == (float, ...):
        return numbers
    if origin is tuple and args[-1] is Ellipsis:
        item = _reader(args[0])
        return lambda x: tuple(item(e) for e in x if isinstance(e, dict)) if isinstance(x, list) else None
    if origin is tuple:
        items = [_reader(a) for a in args]
        return lambda x: (
            tuple(r(v) for r, v in zip(items, x, strict=True)) if _list_of(x, len(items)) else None
        )
    if origin in (Mapping, dict) and args[1] in _MAPS:
        return _MAPS[args[1]]
    if origin in (Mapping, dict):
        value = _reader(args[1])
        return lambda x: {str(k): value(v) for k, v in obj(x).items() if isinstance(v, dict)}
    raise TypeError(f"no JSON reader for {t}")


def _record_reader(rec: type[Record], optional: bool) -> Reader:
    if optional:
        return lambda x: rec.from_json(x) if isinstance(x, dict) else None
    return lambda x: rec.from_json(obj(x))


def _is_optional(t: Any) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType) and type(None) in typing.get_args(t)


def _list_of(x: Any, n: int) -> bool:
    return isinstance(x, list) and len(x) == n


_READERS: dict[type, dict[str, Reader]] = {}


def _readers(cls: type[Record]) -> dict[str, Reader]:
    """Each field's reader; a field that cannot be None falls back (`Record.ABSENT`) where its value is
    missing or empty."""
    if cls not in _READERS:
        _READERS[cls] = _field_readers(cls)
    return _READERS[cls]


def _field_readers(cls: type[Record]) -> dict[str, Reader]:
    hints = typing.get_type_hints(cls)
    out: dict[str, Reader] = {}
    for f in dataclasses.fields(cls):
        if f.name in _OWN:
            continue
        t = hints[f.name]
        reader = _reader(t)
        if not _is_optional(t):
            reader = _falling_back(reader, _fallback(cls, f, t))
        out[f.name] = reader
    return out


def _fallback(cls: type[Record], f: dataclasses.Field[Any], t: Any) -> Callable[[], Any] | None:
    if f.name in cls.ABSENT:
        return lambda: cls.ABSENT[f.name]
    if f.default is not dataclasses.MISSING:
        return lambda: f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory
    return (lambda: _BY_TYPE[t]) if t in _BY_TYPE else None


def _falling_back(reader: Reader, fallback: Callable[[], Any] | None) -> Reader:
    if fallback is None:
        return reader
    return lambda x: reader(x) or fallback()
