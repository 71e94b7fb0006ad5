"""A results document to the store's rows and back: the summary columns, the JSON kept as read, and the
samples' codec (zlib of float64 little-endian). Pure: no database here."""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chipbench.results.header import HostProbe
from chipbench.results.model import Benchmark
from chipbench.results.provenance import Stack, stack, stamp
from chipbench.results.typed import ResultsDocument
from chipbench.results.wire import JSONObject


def content_hash(raw: bytes) -> str:
    """A file's key in the store: sha256 of its bytes, hex."""
    return hashlib.sha256(raw).hexdigest()


def encode_samples(data: Sequence[float]) -> bytes:
    return zlib.compress(np.asarray(data, dtype="<f8").tobytes(), 6)


def decode_samples(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<f8")


def dumps(x: Any) -> str:
    """JSON text as kept in the store: the file's key order; ASCII, so a NUL or a lone surrogate that JSON
    allows in a string is kept as its escape (PostgreSQL's text holds neither); NaN and infinity refused
    (the strict reader has let none through)."""
    return json.dumps(x, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _check_text(row: Mapping[str, Any], where: str) -> None:
    """A text column's value must be text a database keeps as it is: no NUL, no lone surrogate (both are
    valid JSON escapes). A file with one is refused, not stored altered."""
    for col, v in row.items():
        if isinstance(v, str) and ("\x00" in v or (not v.isascii() and not _utf8(v))):
            raise ValueError(f"its {where} {col} holds a NUL or a lone surrogate, which a store cannot keep")


def _utf8(v: str) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def path_text(path: object) -> str:
    """A path as text a database keeps: bytes of a name that is not UTF-8 as backslash escapes."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class Rows:
    """One file's rows, before ids are known."""

    run: JSONObject
    results: list[JSONObject]
    samples: list[bytes]
    """One per result, in the same order."""


def to_rows(parsed: JSONObject, doc: ResultsDocument, meta: Mapping[str, Any]) -> Rows:
    """The rows of a checked document (`parsed`: the strict reader's JSON; `doc`: it, typed); `meta`: the
    run's columns the file does not give (content_hash, branch, reason, source_file, ingested_at)."""
    ci = doc.commit_info
    mi = doc.machine_info
    probe = doc.header.host_probe
    mm, cp = _probe_rates(probe) if probe is not None else (None, None)
    machine = doc.recorded_machine_id or "unknown"
    run = {
        "machine_id": machine,
        "device": (mi.device.name if mi is not None and mi.device is not None else None),
        "stack": dumps([list(p) for p in stack(doc)]),
        "commit_id": ci.id if ci else None,
        "commit_time": ci.time if ci else None,
        "commit_ts": _finite(stamp(ci.time if ci else None)),
        "run_datetime": doc.datetime,
        "run_ts": _finite(stamp(doc.datetime)),
        "header": dumps({k: ([] if k == "benchmarks" else v) for k, v in parsed.items()}),
        "host_probe": dumps(parsed["chipbench"]["host_probe"]) if probe is not None else None,
        "probe_matmul_gflops": mm,
        "probe_copy_gbps": cp,
        **meta,
    }
    results, blobs = [], []
    for i, (raw, b) in enumerate(zip(parsed.get("benchmarks", []), doc.benchmarks, strict=True)):
        results.append(_result(i, machine, raw, b))
        blobs.append(encode_samples(b.samples))
    _check_text(run, "run's")
    for i, r in enumerate(results):
        _check_text(r, f"benchmarks[{i}]'s")
    return Rows(run, results, blobs)


def _result(position: int, machine: str, raw: JSONObject, b: Benchmark) -> JSONObject:
    ei = b.extra_info
    ci = b.stats.median_ci95 or (None, None)
    record = dict(raw)
    record["stats"] = {k: ([] if k == "data" else v) for k, v in raw["stats"].items()}
    return {
        "position": position,
        "machine_id": machine,
        "name": b.name,
        "group_name": b.group,
        "version_hash": ei.version_hash,
        "config": dumps(ei.config),
        "requested": dumps(ei.requested) if ei.requested is not None else None,
        "sample_count": len(b.samples),
        "median_s": _finite(b.stats.median_s),
        "ci_low": _finite(ci[0]),
        "ci_high": _finite(ci[1]),
        "disturbed": ei.disturbed or None,
        "metrics": dumps(dict(ei.metrics)),
        "record": dumps(record),
    }


def _probe_rates(probe: HostProbe) -> tuple[float | None, float | None]:
    """The probe's rates as gate.drift.rates gives them: the geometric mean of its passes."""

    def geomean(values: list[float | None]) -> float | None:
        got = [v for v in values if v is not None and v > 0]
        return math.exp(sum(math.log(v) for v in got) / len(got)) if got else None

    passes = [p for p in (probe.start, probe.end) if p is not None]
    return geomean([p.matmul_gflops for p in passes]), geomean([p.copy_gbps for p in passes])


def document(header: str, records: Sequence[tuple[str, bytes]]) -> ResultsDocument:
    """The document again, from its run's `header` and its results' (record, samples) in file order: it
    equals the strict reader's of the original file."""
    doc = json.loads(header)
    benchmarks = []
    for record, blob in records:
        b = json.loads(record)
        b["stats"]["data"] = decode_samples(blob).tolist()
        benchmarks.append(b)
    doc["benchmarks"] = benchmarks
    return ResultsDocument.from_json(doc)


def stack_of(text: str) -> Stack:
    return tuple((str(k), str(v)) for k, v in json.loads(text))
