"""What a results file says of its run's place among others: the software stack it was measured with, and
its order in time. gate.baseline (the baseline choice, `history`) and the results store share them, so a
store orders and groups runs exactly as the folder-based commands do.

- **Stack.** The Python, every package the file lists (torch, torchrec, fbgemm), the device's driver and
  runtime, the host allocator's setting, as sorted (field, value) pairs.
- **Order.** Commit time (`commit_info.time`), then the file's `datetime`, then the path; a time that is
  missing or not ISO 8601 sorts last.
"""

from __future__ import annotations

import datetime as dt
import math

from chipbench.results.header import MachineInfo
from chipbench.results.typed import ResultsDocument

Stack = tuple[tuple[str, str], ...]
"""(field, value) pairs, sorted: what must match for two runs to be the same code on the same software."""


def stack(doc: ResultsDocument) -> Stack:
    """The software stack a results file records (module docstring)."""
    mi = doc.machine_info or MachineInfo()
    out: dict[str, str] = {}
    if mi.python_version:
        out["python"] = mi.python_version
    for name, version in mi.packages.items():
        out[name] = str(version)
    dev = mi.device
    if dev is not None and dev.driver:
        out["driver"] = dev.driver
    if dev is not None and dev.runtime:
        out["runtime"] = dev.runtime
    if mi.host_allocator is not None:
        out["host allocator"] = mi.host_allocator.describe()
    return tuple(sorted(out.items()))


def stamp(s: str | None) -> float:
    """An ISO 8601 time as POSIX seconds (no zone: UTC); infinity where missing or unreadable (last)."""
    if not s:
        return math.inf
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return math.inf
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def order_key(doc: ResultsDocument, path: object = "") -> tuple[float, float, str]:
    """Runs in time: commit time, then when the file was saved, then the path (ties)."""
    return stamp(doc.commit_info.time if doc.commit_info else None), stamp(doc.datetime), str(path)
