"""The one strict reader of results files: they come from anyone (other machines, pull requests), so every
field chipbench reads is type-checked before use, and anything else is one line naming the file and the
field.

Accepted: UTF-8 JSON (a byte-order mark is skipped), nested at most `MAX_DEPTH` deep, no NaN or infinity,
a `benchmarks` list whose entries have a unique non-empty `name` and raw samples (`stats.data`) that are
finite positive numbers (no booleans, no strings); what chipbench's own files add (`chipbench`,
`machine_info`, `commit_info`, `extra_info`) has the types chipbench writes, and a schema version this
chipbench knows. pytest-benchmark's own files pass when saved with `--benchmark-save-data`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import chipbench
from chipbench.core import text
from chipbench.core.config import finite_number
from chipbench.core.errors import UsageError
from chipbench.results.wire import JSONObject

MAX_DEPTH = 64
"""Deepest nesting of lists and objects accepted (chipbench's own files stay under 12)."""
MAX_NAME = 1000
"""Longest benchmark name accepted, in characters."""
MIN_SAMPLE_S, MAX_SAMPLE_S = 1e-12, 1e6
"""A step time outside a picosecond to 11 days is not a measurement (and 5e-324 beside 1e308 would
overflow every ratio built from it)."""


class _Bad(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")


def _fail(field: str, problem: str) -> NoReturn:
    raise _Bad(field, problem)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):  # 1e999 parses as infinity without a word
        raise ValueError(f"{text[:40]} is not a finite number")
    return v


def parse(raw: bytes, path: Path) -> JSONObject:
    """The document in `raw` (the bytes of `path`), checked; a one-line UsageError otherwise."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"results file {path} is not UTF-8 text (undecodable byte at offset {exc.start}); "
            "is it a chipbench or pytest-benchmark JSON file?"
        ) from None
    try:
        doc = json.loads(
            decoded.removeprefix("\ufeff"), parse_constant=_reject_constant, parse_float=_finite_float
        )
    except RecursionError:
        raise UsageError(f"results file {path} is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise UsageError(
            f"results file {path} is not valid JSON ({str(exc)[:200]}); re-run `chipbench run` to make a new one"
        ) from None
    try:
        _depth(doc)
        check_document(doc)
    except _Bad as exc:
        raise UsageError(f"results file {path}: {text.terminal(exc)}") from None
    return doc  # type: ignore[no-any-return]


def _depth(doc: Any) -> None:
    stack = [(doc, 1)]
    while stack:
        x, d = stack.pop()
        if d > MAX_DEPTH:
            _fail("the document", f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(x, dict):
            stack.extend((v, d + 1) for v in x.values() if isinstance(v, (dict, list)))
        elif isinstance(x, list):
            stack.extend((v, d + 1) for v in x if isinstance(v, (dict, list)))


def _opt(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], field: str) -> Any:
    """obj[key] when present and not None, checked to be of `kind`."""
    v = obj.get(key)
    if v is not None and (not isinstance(v, kind) or (isinstance(v, bool) and bool not in _tuple(kind))):
        _fail(f"{field}.{key}", f"must be {_kind_name(kind)}, not {type(v).__name__}")
    return v


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true or false"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


def check_document(doc: Any) -> None:
    """Raise _Bad naming the first field that is not what chipbench reads."""
    if not isinstance(doc, dict):
        _fail("the document", f"must be a JSON object, not {type(doc).__name__}")
    if not isinstance(doc.get("benchmarks"), list):
        _fail("the document", "has no 'benchmarks' list; is it a chipbench or pytest-benchmark file?")
    _opt(doc, "datetime", str, "the document")
    _check_meta(_opt(doc, "chipbench", dict, "the document") or {})
    _check_machine_info(_opt(doc, "machine_info", dict, "the document") or {})
    _check_commit(_opt(doc, "commit_info", dict, "the document") or {})
    names: set[str] = set()
    for i, b in enumerate(doc["benchmarks"]):
        field = f"benchmarks[{i}]"
        if not isinstance(b, dict):
            _fail(field, f"must be an object, not {type(b).__name__}")
        name = b.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            _fail(f"{field}.name", f"must be a non-empty string of at most {MAX_NAME} characters")
        if name in names:
            _fail(f"{field}.name", f"{name[:80]!r} appears twice in one file")
        names.add(name)
        _check_benchmark(b, f"benchmarks[{i}] ({name[:80]})")


def commit_problem(info: Any) -> str | None:
    """What is wrong with a commit as a results file's `commit_info` holds it (another environment's
    answer), or None."""
    try:
        _check_commit(info)
    except _Bad as e:
        return str(e)
    return None


def _check_commit(info: Any) -> None:
    if not isinstance(info, dict):
        _fail("commit_info", f"must be a JSON object, not {type(info).__name__}")
    for key in ("id", "time", "branch"):
        _opt(info, key, str, "commit_info")


def _check_meta(meta: Mapping[str, Any]) -> None:
    v = meta.get("schema_version", 1)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        _fail("chipbench.schema_version", "must be a positive integer")
    if v > chipbench.SCHEMA_VERSION:
        _fail(
            "chipbench.schema_version",
            f"is {v}, newer than this chipbench ({chipbench.SCHEMA_VERSION}); upgrade chipbench",
        )
    _opt(meta, "machine_id", str, "chipbench")
    _opt(meta, "suite", str, "chipbench")
    for j, arg in enumerate(_opt(meta, "argv", list, "chipbench") or []):
        if not isinstance(arg, str):
            _fail(f"chipbench.argv[{j}]", "must be a string")
    ceilings = _opt(meta, "ceilings", dict, "chipbench")
    if ceilings is not None:
        for k, v in (_opt(ceilings, "matmul_tflops", dict, "chipbench.ceilings") or {}).items():
            if not finite_number(v) or v <= 0:
                _fail(f"chipbench.ceilings.matmul_tflops.{k}", "must be a finite positive number")
        bw = ceilings.get("copy_gbps")
        if bw is not None and (not finite_number(bw) or bw <= 0):
            _fail("chipbench.ceilings.copy_gbps", "must be a finite positive number")
    _opt(meta, "interrupted", bool, "chipbench")
    _check_probe(_opt(meta, "host_probe", dict, "chipbench"))
    errors = _opt(meta, "errors", list, "chipbench")
    for i, e in enumerate(errors or []):
        if not isinstance(e, dict):
            _fail(f"chipbench.errors[{i}]", "must be an object")
        for key in ("name", "error_type", "message"):
            _opt(e, key, str, f"chipbench.errors[{i}]")


def _check_probe(probe: Mapping[str, Any] | None) -> None:
    """The host probe's names are strings and its rates finite positive numbers (or null)."""
    if probe is None:
        return
    for key in ("matmul", "copy"):
        if not isinstance(probe.get(key), str):
            _fail(f"chipbench.host_probe.{key}", "must be a string (the probe's case name)")
    for j, h in enumerate(_opt(probe, "version_hashes", list, "chipbench.host_probe") or []):
        if not isinstance(h, str):
            _fail(f"chipbench.host_probe.version_hashes[{j}]", "must be a string")
    for when in ("start", "end"):
        p = _opt(probe, when, dict, "chipbench.host_probe")
        for key in ("matmul_gflops", "copy_gbps"):
            v = p.get(key) if p is not None else None
            if v is not None and (not finite_number(v) or v <= 0):
                _fail(f"chipbench.host_probe.{when}.{key}", "must be a finite positive number")


def _check_machine_info(mi: Mapping[str, Any]) -> None:
    for key in ("chipbench_machine_id", "machine", "node", "system"):
        _opt(mi, key, str, "machine_info")
    dev = _opt(mi, "device", dict, "machine_info") or {}
    for key in ("name", "kind"):
        _opt(dev, key, str, "machine_info.device")
    count = _opt(dev, "count", int, "machine_info.device")
    if count is not None and count < 1:
        _fail("machine_info.device.count", "must be >= 1")
    cpu = _opt(mi, "cpu", dict, "machine_info") or {}
    _opt(cpu, "brand_raw", str, "machine_info.cpu")
    packages = _opt(mi, "packages", dict, "machine_info")
    for k, v in (packages or {}).items():
        if v is not None and not isinstance(v, str):
            _fail(f"machine_info.packages.{k}", "must be a version string or null")
    alloc = _opt(mi, "host_allocator", dict, "machine_info")
    if alloc is not None:
        if not isinstance(alloc.get("allocator"), str):
            _fail("machine_info.host_allocator.allocator", "must be a string")
        _opt(alloc, "tuned", bool, "machine_info.host_allocator")
        for key in ("mmap_threshold_bytes", "trim_threshold_bytes"):
            _opt(alloc, key, int, "machine_info.host_allocator")


def _check_benchmark(b: Mapping[str, Any], field: str) -> None:
    _opt(b, "group", str, field)
    _opt(b, "params", dict, field)
    st = b.get("stats")
    if not isinstance(st, dict):
        _fail(f"{field}.stats", "must be an object with the raw samples in 'data'")
    data = st.get("data")
    if data is None:
        _fail(
            f"{field}.stats",
            "has no raw samples ('data'); a pytest-benchmark file must be saved with --benchmark-save-data",
        )
    if not isinstance(data, list) or not data:
        _fail(f"{field}.stats.data", "must be a non-empty list of seconds per step")
    for j, v in enumerate(data):
        if not finite_number(v) or not MIN_SAMPLE_S <= v <= MAX_SAMPLE_S:
            _fail(
                f"{field}.stats.data[{j}]",
                f"must be a number of seconds between {MIN_SAMPLE_S:g} and {MAX_SAMPLE_S:g}, not {json.dumps(v)[:40]}",
            )
    for key in ("median", "mean", "min", "max"):
        v = st.get(key)
        if v is not None and (not finite_number(v) or v < 0):
            _fail(f"{field}.stats.{key}", "must be a finite number >= 0")
    extra = _opt(b, "extra_info", dict, field)
    if extra is not None:
        _opt(extra, "version_hash", str, f"{field}.extra_info")
        _opt(extra, "config", dict, f"{field}.extra_info")
        _opt(extra, "info", dict, f"{field}.extra_info")
        world = _opt(extra, "world_size", int, f"{field}.extra_info")
        if world is not None and world < 1:
            _fail(f"{field}.extra_info.world_size", "must be >= 1")
        for key in ("benchmark", "dtype", "device", "disturbed"):
            _opt(extra, key, str, f"{field}.extra_info")
        _opt(extra, "requested", dict, f"{field}.extra_info")
        metrics = _opt(extra, "metrics", dict, f"{field}.extra_info")
        for k, v in (metrics or {}).items():
            if not finite_number(v):
                _fail(f"{field}.extra_info.metrics.{k}", "must be a finite number")
        for key in ("unavailable", "scaling"):
            _opt(extra, key, dict, f"{field}.extra_info")
        for j, flag in enumerate(_opt(extra, "flags", list, f"{field}.extra_info") or []):
            if not isinstance(flag, str):
                _fail(f"{field}.extra_info.flags[{j}]", "must be a string")
        work = _opt(extra, "work", dict, f"{field}.extra_info")
        if work is not None:
            for key in ("flops", "bytes", "samples", "tokens"):
                v = work.get(key)
                if v is not None and (not finite_number(v) or v < 0):
                    _fail(f"{field}.extra_info.work.{key}", "must be a finite number >= 0 or null")
            for key in ("flop_convention", "bytes_convention"):
                _opt(work, key, str, f"{field}.extra_info.work")
        _check_roofline(_opt(extra, "roofline", dict, f"{field}.extra_info"), f"{field}.extra_info.roofline")


ROOFLINE_NUMBERS = ("step_ms", "parts_sum_ms", "parts_cover", "floor_ms", "share_of_roofline")
PART_NUMBERS = ("ms", "flops", "bytes", "tflops", "gbps", "floor_ms", "share_of_roofline")


def _check_roofline(r: Mapping[str, Any] | None, field: str) -> None:
    """A roofline breakdown (results.roofline): numbers finite and >= 0, strings strings (they are shown)."""
    if r is None:
        return
    for key in ROOFLINE_NUMBERS:
        v: Any = r.get(key)
        if not finite_number(v) or v < 0:
            _fail(f"{field}.{key}", "must be a finite number >= 0")
    _opt(r, "holds_back", str, field)
    parts = r.get("parts")
    if not isinstance(parts, dict):
        _fail(f"{field}.parts", "must be an object of parts")
    for name, p in parts.items():
        if not isinstance(p, dict):
            _fail(f"{field}.parts", f"part {json.dumps(name)[:40]} must be an object")
        for key in PART_NUMBERS:
            w: Any = p.get(key)
            if not finite_number(w) or w < 0:
                _fail(f"{field}.parts.{name[:40]}.{key}", "must be a finite number >= 0")
        _opt(p, "bound", str, f"{field}.parts.{name[:40]}")
