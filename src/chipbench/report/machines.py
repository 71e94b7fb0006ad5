"""Reading for `chipbench report`: every results file under the paths given, through the strict reader,
and each machine as its files describe it (device, CPU, stack, the best measured ceilings)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipbench.core.config import finite_number
from chipbench.core.errors import UsageError
from chipbench.platform import hardware, peaks
from chipbench.results.files import load_typed, result_files
from chipbench.results.header import DeviceInfo, MachineInfo
from chipbench.results.typed import ResultsDocument


def _num(x: Any) -> float | None:
    return float(x) if finite_number(x) else None


def _str(x: Any, default: str = "?") -> str:
    return x if isinstance(x, str) and x else default


def _dict(x: Any) -> Mapping[str, Any]:
    """`x` when it is a JSON object (the recorded environment is platform's wire format), else empty."""
    return x if isinstance(x, dict) else {}


@dataclass(frozen=True)
class Machine:
    """One machine, as its results files describe it."""

    id: str
    """chipbench's machine id (device model, count, ISA tier), or the CPU for a plain pytest-benchmark file."""
    device: str
    """Device model name and count, e.g. `NVIDIA H100 80GB HBM3 x8`."""
    kind: str
    """cpu, cuda, rocm, mps, xpu."""
    memory_gib: float | None
    cpu: str
    """CPU model, core count and ISA tier (the device's capability on CPUs)."""
    stack: dict[str, str]
    """torch, torchrec, fbgemm versions (absent: not installed)."""
    driver: str
    commits: tuple[str, ...]
    dates: tuple[str, ...]
    """First and last run date (UTC, ISO)."""
    matmul_tflops: dict[str, float]
    """Measured matmul ceiling per dtype (`chipbench calibrate`)."""
    copy_gbps: float | None
    """Measured copy bandwidth ceiling."""
    peak_tflops: dict[str, float]
    """Published dense peaks per dtype; empty when the device is not in the table."""
    peak_gbps: float | None
    files: tuple[str, ...]
    """The results files whose runs the page shows (commits and dates are theirs)."""
    files_read: int
    """Every results file of this machine that was read, the left-out ones included."""
    newest_commit: str
    """The commit of the newest results file read, shown or not (8 hex digits; empty when not recorded)."""
    probe: str = ""
    """The host probe's range over the runs that carry one (its drift reference), or empty."""


def _probe_range(docs: Loaded) -> str:
    """`host probe over 3 runs: matmul 7.47-11 GFLOP/s, copy 2.72-4.36 GB/s` (each run's start and end)."""
    runs = [p for _, d in docs if (p := d.header.host_probe) is not None]
    passes = [x for p in runs for x in (p.start, p.end) if x is not None]
    parts = []
    for label, unit, got in (
        ("matmul", "GFLOP/s", [x.matmul_gflops for x in passes]),
        ("copy", "GB/s", [x.copy_gbps for x in passes]),
    ):
        vals = [v for v in got if v is not None]
        if vals:
            parts.append(f"{label} {min(vals):.3g}-{max(vals):.3g} {unit}")
    return f"host probe over {len(runs)} run(s): {', '.join(parts)}" if parts else ""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


Loaded = list[tuple[Path, ResultsDocument]]
"""Results files and their documents."""


def collect(paths: list[Path], *, skip_bad: bool) -> tuple[Loaded, list[Skipped]]:
    """Every results file under `paths`, loaded through the strict reader. A bad file is a one-line
    UsageError, or with `skip_bad` listed and left out."""
    docs, skipped = [], []
    seen: set[Path] = set()
    for p in paths:
        for f in result_files(p):
            if f.resolve() in seen:  # overlapping arguments: a file counts once
                continue
            seen.add(f.resolve())
            if p.is_dir() and _not_results(f):
                # A folder of results may hold other JSON (a robustness log, a config): not ours to read.
                skipped.append(Skipped(str(f), "JSON, but not a results file (no 'benchmarks' list)"))
                continue
            try:
                doc = load_typed(f)
            except UsageError as exc:
                if not skip_bad:
                    raise UsageError(f"{exc} (or pass --skip-bad to leave it out)") from None
                skipped.append(Skipped(str(f), str(exc).replace(f"results file {f}", "it", 1)))
                continue
            if not doc.benchmarks:
                skipped.append(Skipped(str(f), "holds no finished benchmark"))
                continue
            docs.append((f, doc))
    if not docs:
        raise UsageError("no results to report: every file given was empty or bad; run `chipbench run` first")
    return docs, skipped


def _not_results(path: Path) -> bool:
    """A JSON object without a `benchmarks` list: some other tool's file (a corrupt or hostile results
    file still goes to the strict reader and its error)."""
    try:
        with path.open("rb") as fh:
            doc = json.loads(fh.read())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and "benchmarks" not in doc


def machine_id_of(doc: ResultsDocument) -> str:
    """The machine id by today's rule from the recorded environment (older files lack the ISA tier
    that tells two hosts of one CPU name apart), else as recorded."""
    mi = doc.machine_info or MachineInfo()
    if doc.chipbench is not None and doc.chipbench.environment:
        try:
            return hardware.machine_id(dict(doc.chipbench.environment))
        except (KeyError, TypeError, AttributeError, ValueError):
            pass  # not the environment chipbench writes: fall back to the recorded id
    mid = doc.header.machine_id or mi.chipbench_machine_id
    if mid:
        return mid
    brand = mi.cpu.brand_raw if mi.cpu else None
    return f"{_str(brand, 'unknown cpu')} ({_str(mi.machine)})"


def _cpu_text(env: Mapping[str, Any], dev: DeviceInfo, brand: str) -> str:
    """CPU model, core count and ISA tier, from the recorded environment."""
    cpu = _dict(env.get("cpu"))
    cores = cpu.get("physical_cores") or cpu.get("logical_cores")
    isa = cpu.get("isa")
    tier = hardware.isa_tier(isa) if isinstance(isa, dict) else (dev.capability or "")
    return " ".join(
        x for x in (_str(cpu.get("model"), ""), f"{cores} cores" if isinstance(cores, int) else "",
                    f"ISA {tier}" if tier else "") if x
    ) or brand  # fmt: skip


def _best_ceilings(docs: Loaded) -> tuple[dict[str, float], float | None]:
    """The best measured ceiling over the files (a busy run's lower figure is not the machine's)."""
    matmul: dict[str, float] = {}
    copy: float | None = None
    for _, d in docs:
        c = d.header.ceilings
        if c is None:
            continue
        for dtype, v in c.matmul_tflops.items():
            if (x := _num(v)) and x > matmul.get(dtype, 0.0):
                matmul[dtype] = x
        if (bw := _num(c.copy_gbps)) and bw > (copy or 0.0):
            copy = bw
    return matmul, copy


def read_machine(mid: str, docs: Loaded, used: set[str]) -> Machine:
    """One machine from the files of `docs` whose runs are shown (paths in `used`): the newest describes
    it, the ceilings are the best seen, the commits and dates are theirs. Where none is shown, every file
    describes the device, and the commits, dates and files are left empty."""
    shown = [pd for pd in docs if str(pd[0]) in used]
    latest = max(docs, key=lambda pd: pd[1].datetime or "")[1].commit_info
    n_read, docs = len(docs), shown or docs
    newest = max(docs, key=lambda pd: pd[1].datetime or "")[1]
    mi = newest.machine_info or MachineInfo()
    dev = mi.device or DeviceInfo()
    brand = _str(mi.cpu.brand_raw if mi.cpu else None)
    name = _str(dev.name, brand)
    count = dev.count if dev.count is not None else 1
    mem = _num(dev.memory_bytes)
    stack = {
        k: v
        for k in ("torch", "torchrec", "fbgemm-gpu", "fbgemm-gpu-cpu")
        if isinstance(v := mi.package(k), str)
    }
    matmul, copy = _best_ceilings(docs)
    peak = peaks.lookup(name)
    dates = sorted(d.datetime for _, d in shown if d.datetime)
    commits = sorted({((d.commit_info.id if d.commit_info else None) or "")[:8] for _, d in shown} - {""})
    return Machine(
        id=mid,
        device=f"{name} x{count}",
        kind=_str(dev.kind),
        memory_gib=mem / 2**30 if mem else None,
        cpu=_cpu_text(newest.header.environment, dev, brand),
        stack=stack,
        driver=" ".join(x for x in (dev.driver or "", f"(runtime {dev.runtime})" if dev.runtime else "") if x)
        or "-",
        commits=tuple(commits),
        dates=(dates[0][:19], dates[-1][:19]) if dates else (),
        matmul_tflops=matmul,
        copy_gbps=copy,
        peak_tflops=dict(peak.tflops) if peak else {},
        peak_gbps=peak.mem_tbps * 1000.0 if peak else None,
        files=tuple(str(p) for p, _ in shown),
        files_read=n_read,
        newest_commit=((latest.id if latest else None) or "")[:8],
        probe=_probe_range(shown),
    )
