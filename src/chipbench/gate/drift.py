"""The host's drift between two runs, from their host probes (results.header.HostProbe).

Every run measures the same short matmul and copy at its start and end (execution.probe). Between a base
and a new run, the probe's move is the host's own: a case that moved by as much as the probe did moved
with the host, not with the code. `host_drift` gives that move as `compare`'s ratio does (new step time
over base step time: above 1, the host ran slower), for the matmul and the copy apart (compute-bound and
memory-bound cases drift differently). `explains` tells whether a case moved by what the probe moved
(`compare` then calls it `host drift`, never a regression; `history` the same for a change point). Pure:
no I/O, no torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from chipbench.gate.compare import JUDGED, Comparison
from chipbench.results.header import HostProbe, ProbePass
from chipbench.results.typed import ResultsDocument


@dataclass(frozen=True)
class ProbeRates:
    """One run's probe, or several runs' pooled: its rates (the passes' geometric mean) and what it ran."""

    matmul_gflops: float | None
    copy_gbps: float | None
    key: tuple[str, ...]
    """The probe's case names and version hashes: rates compare only under one key."""
    runs: int = 1
    """Runs pooled (their median)."""
    disturbed: bool = False
    """A pass of some run was measured while another process held the cores."""


@dataclass(frozen=True)
class HostDrift:
    """How much the host moved from the base runs to the new ones, as a ratio of step times."""

    matmul: float | None
    """New over base step time of the probe's matmul (> 1: the host computes slower now)."""
    copy: float | None
    """New over base step time of the probe's copy (> 1: the host moves memory slower now)."""
    base: ProbeRates | None = None
    new: ProbeRates | None = None
    note: str = ""
    """Why there is no ratio (no probe on a side, probes of other sizes or code), else empty."""

    def describe(self) -> str:
        """One line: `host drift (new/base step time): matmul 1.08, copy 1.01` or why there is none."""
        if self.matmul is None and self.copy is None:
            return f"host drift: unknown ({self.note})"
        parts = [f"{k} {v:.3f}" for k, v in (("matmul", self.matmul), ("copy", self.copy)) if v is not None]
        busy = any(r is not None and r.disturbed for r in (self.base, self.new))
        return (
            "host drift (new/base step time): "
            + ", ".join(parts)
            + ("; a probe was disturbed" if busy else "")
        )


def _geomean(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in got) / len(got)) if got else None


def rates(probe: HostProbe) -> ProbeRates | None:
    """A run's probe rates: the geometric mean of its start and end passes; None when no pass measured."""
    passes: list[ProbePass] = [p for p in (probe.start, probe.end) if p is not None]
    mm = _geomean(p.matmul_gflops for p in passes)
    cp = _geomean(p.copy_gbps for p in passes)
    if mm is None and cp is None:
        return None
    key = (probe.matmul, probe.copy, *probe.version_hashes)
    return ProbeRates(mm, cp, key, 1, any(bool(p.disturbed) for p in passes))


def pool(runs: Iterable[ProbeRates]) -> ProbeRates | None:
    """Several runs' probes as one (the median of each rate), when all ran the same probe; else None."""
    got = list(runs)
    if not got or len({r.key for r in got}) != 1:
        return None

    def median(xs: Iterable[float | None]) -> float | None:
        vals = [x for x in xs if x is not None]
        return statistics.median(vals) if vals else None

    return ProbeRates(
        median(r.matmul_gflops for r in got), median(r.copy_gbps for r in got), got[0].key,
        sum(r.runs for r in got), any(r.disturbed for r in got),
    )  # fmt: skip


def drift(base: ProbeRates, new: ProbeRates) -> HostDrift:
    """New over base step time of each probe figure both sides have (a rate's inverse ratio)."""
    if base.key != new.key:
        return HostDrift(None, None, base, new, "the two sides ran different probes (sizes or code)")

    def ratio(b: float | None, n: float | None) -> float | None:
        return b / n if b is not None and n is not None and n > 0 else None

    got = HostDrift(
        ratio(base.matmul_gflops, new.matmul_gflops), ratio(base.copy_gbps, new.copy_gbps), base, new
    )
    return (
        got if got.matmul or got.copy else HostDrift(None, None, base, new, "no probe figure on both sides")
    )


def host_drift(base: Iterable[HostProbe | None], new: Iterable[HostProbe | None]) -> HostDrift:
    """The host's drift from the base runs' probes to the new runs' (each side pooled by `pool`): what
    `compare` and `history` set a case's ratio against. Runs without a probe (older files) are left out."""
    sides = []
    for name, probes in (("base", base), ("new", new)):
        got = [r for r in (rates(p) for p in probes if p is not None) if r is not None]
        if not got:
            return HostDrift(
                None, None, note=f"no host probe on the {name} side (older results, or --no-probe)"
            )
        pooled = pool(got)
        if pooled is None:
            return HostDrift(None, None, note=f"the {name} side's runs ran different probes")
        sides.append(pooled)
    return drift(sides[0], sides[1])


# ---------------------------------------------------------------- a case against the probe

HOST_DRIFT_TOLERANCE = 0.10
"""How close a case's move must come to the probe's to be called host drift: the probe's figure moved at
least this far in the case's direction, and the case's ratio is within this of it (|log(case / probe)| <=
log(1 + tolerance)). Chosen from the committed results, each run's calib cases standing in for the probe
(`benchmarks/probe_tolerance.py`): at 10%, 11% of same-code moves of 5% or more are called host drift and
3.5% of planted 10% slowdowns would be excused; at 5%, 12.5% and 9.3%; at 3%, 12.8% and 9.5%."""


def explains(
    ratio: float, got: HostDrift, tolerance: float = HOST_DRIFT_TOLERANCE
) -> tuple[str, float] | None:
    """(figure, its ratio) of the probe that moved as the case did, the nearer of matmul and copy; None
    where neither moved at least `tolerance` in the case's direction with the case within `tolerance` of
    it. A flat probe explains nothing: the case's move is then the code's (or the case's own noise)."""
    if not (ratio > 0 and math.isfinite(ratio)) or ratio == 1.0:
        return None
    bound = math.log1p(tolerance)
    best: tuple[str, float] | None = None
    for name, f in (("matmul", got.matmul), ("copy", got.copy)):
        if f is None or not f > 0 or math.log(f) * math.copysign(1.0, math.log(ratio)) < bound:
            continue  # the probe did not move (far enough) the case's way
        if abs(math.log(ratio / f)) <= bound and (
            best is None or abs(math.log(ratio / f)) < abs(math.log(ratio / best[1]))
        ):
            best = (name, f)
    return best


def short(got: HostDrift) -> str:
    """`probe 1.083|1.012` (matmul|copy, new/base step time; `-` where a figure is missing), or ''."""
    if got.matmul is None and got.copy is None:
        return ""
    return "probe " + "|".join("-" if v is None else f"{v:.3f}" for v in (got.matmul, got.copy))


def probes_of(files: Iterable[object], docs: Iterable[ResultsDocument]) -> dict[str, HostProbe | None]:
    """Each file's host probe (None: it has none), by the file's path as a string."""
    return {str(f): d.header.host_probe for f, d in zip(files, docs, strict=True)}


def judge(
    comps: list[Comparison],
    base: dict[str, HostProbe | None],
    new: dict[str, list[str]],
    new_probes: dict[str, HostProbe | None],
    tolerance: float = HOST_DRIFT_TOLERANCE,
) -> None:
    """Set each compared case against the host probe of its own files (base: `base_files`; new: `new`,
    files by case): its note gains `probe M|C`, and a regression or improvement that moved by what the
    probe moved (`explains`) becomes `host drift`. Cases whose files carry no probe are left as they were."""
    for c in comps:
        if c.verdict not in JUDGED or c.ratio is None:
            continue
        got = host_drift([base.get(f) for f in c.base_files],
                         [new_probes.get(f) for f in new.get(c.benchmark, [])])  # fmt: skip
        c.probe = short(got)
        if not c.probe:
            continue
        why = explains(c.ratio, got, tolerance) if c.verdict in ("regression", "improvement") else None
        if why is not None:
            c.note = (
                f"was {c.verdict}: moved with the host (the probe's {why[0]} {why[1]:.3f}, the case "
                f"within {tolerance:.0%} of it)" + (f"; {c.note}" if c.note else "")
            )
            c.verdict = "host drift"
        c.note = f"{c.probe}; {c.note}" if c.note else c.probe


def series_lines(probes: list[HostProbe | None], last: int = 10) -> list[str]:
    """The probe's own series over a history's runs (oldest first), in at most three lines: its runs, and
    the matmul's GFLOP/s and the copy's GB/s of the newest `last` of them with their range over all."""
    got = [r for r in (rates(p) for p in probes if p is not None) if r is not None]
    if not got:
        return [f"host probe: none in these {len(probes)} runs (older results, or --no-probe)"]
    lines = [
        f"host probe in {len(got)} of {len(probes)} runs (oldest -> newest, the newest {min(last, len(got))}):"
    ]
    for label, values in (("matmul GFLOP/s", [r.matmul_gflops for r in got]),
                          ("copy GB/s", [r.copy_gbps for r in got])):  # fmt: skip
        have = [v for v in values if v is not None]
        if have:
            shown = " ".join("-" if v is None else f"{v:.3g}" for v in values[-last:])
            lines.append(f"  {label}: {shown} (range {min(have):.3g}-{max(have):.3g})")
    return lines
