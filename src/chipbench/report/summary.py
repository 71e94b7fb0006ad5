"""What a reader sees first: each machine's geometric-mean speed-up over the baseline, overall and per
workload family (ranking, generative recommenders, LLM training, ...), each with its 95% interval and the
number of matched cases, a caution where it rests on few cases, and the order of the speed-up bars. Plain
data, unit-tested; `page` and `figures` show it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chipbench.report.assemble import Cell, LeftOut, Report, Row

FEW_CASES = 5
"""A geometric mean over fewer matched cases than this carries a visible caution."""
FAMILIES = {
    "dlrm": "ranking (DLRM)",
    "hstu": "generative recommenders (HSTU)",
    "llama": "LLM training (Llama)",
    "calib": "calibration kernels",
    "comm": "collectives",
    "micro": "micro-benchmarks",
}
"""Each family's name for a reader, in the order the page shows them (the buyer's workloads first); a
family not named here is shown by its prefix, after these."""
N_BOOT = 4000
SEED = 20261207
Z95 = 1.959964


def family_title(family: str) -> str:
    return FAMILIES.get(family, family)


def family_order(family: str) -> tuple[int, str]:
    names = list(FAMILIES)
    return (names.index(family) if family in names else len(names), family)


@dataclass(frozen=True)
class Mean:
    """The geometric mean of one machine's speed-ups over the baseline on a set of matched cases."""

    family: str
    """The family's prefix (`dlrm`), or empty for every matched case."""
    value: float
    ci: tuple[float, float]
    """95% interval: a two-level bootstrap (cases resampled, then each case's speed-up drawn from its own
    interval), so both the spread across cases and each case's noise are in it."""
    cases: int
    faster: int
    """Cases whose interval lies above 1."""
    slower: int
    """Cases whose interval lies below 1."""
    disturbed: int
    """Cases of these measured on a disturbed machine (shown only with `--include-disturbed`)."""

    @property
    def title(self) -> str:
        return family_title(self.family) if self.family else "all matched cases"

    @property
    def few(self) -> bool:
        """Fewer than FEW_CASES cases: a hint, not a verdict."""
        return self.cases < FEW_CASES


@dataclass(frozen=True)
class Standing:
    """One machine against the baseline: over every matched case, and per workload family."""

    machine: str
    overall: Mean | None
    """None: no case in common with the baseline."""
    families: tuple[Mean, ...]


def _disturbed(c: Cell) -> bool:
    return bool(c.pooled.disturbed)


def geomean(family: str, cells: list[Cell]) -> Mean:
    """The geometric mean of the cells' speed-ups and its 95% interval (see `Mean.ci`). Each case's
    speed-up is drawn on a log scale from a normal with its interval's lower and upper half-widths (a
    skewed interval stays skewed)."""
    sp = np.log([c.speedup or 1.0 for c in cells])
    lo = np.log([(c.speedup_ci or (1.0, 1.0))[0] for c in cells])
    hi = np.log([(c.speedup_ci or (1.0, 1.0))[1] for c in cells])
    s_lo, s_hi = np.maximum(sp - lo, 0.0) / Z95, np.maximum(hi - sp, 0.0) / Z95
    rng = np.random.default_rng(SEED)
    n = len(cells)
    idx = rng.integers(0, n, size=(N_BOOT, n))
    z = rng.standard_normal((N_BOOT, n))
    draws = sp[idx] + np.where(z < 0, z * s_lo[idx], z * s_hi[idx])
    low, high = np.exp(np.quantile(draws.mean(axis=1), [0.025, 0.975]))
    return Mean(
        family=family,
        value=float(math.exp(float(sp.mean()))),
        ci=(float(low), float(high)),
        cases=n,
        faster=sum(1 for c in cells if c.speedup_ci and c.speedup_ci[0] > 1.0),
        slower=sum(1 for c in cells if c.speedup_ci and c.speedup_ci[1] < 1.0),
        disturbed=sum(1 for c in cells if _disturbed(c)),
    )


def _matched(report: Report, machine: str, rows: list[Row]) -> list[Cell]:
    return [r.cells[machine] for r in rows if machine in r.cells and r.cells[machine].speedup is not None]


def standings(report: Report) -> list[Standing]:
    """Every machine but the baseline, in the report's machine order."""
    out = []
    for m in report.machines:
        if m.id == report.baseline:
            continue
        cells = _matched(report, m.id, report.rows)
        fams = sorted({r.family for r in report.rows}, key=family_order)
        per = [(f, _matched(report, m.id, [r for r in report.rows if r.family == f])) for f in fams]
        out.append(
            Standing(
                m.id,
                geomean("", cells) if cells else None,
                tuple(geomean(f, cs) for f, cs in per if cs),
            )
        )
    return out


def bar_rows(report: Report) -> list[Row]:
    """The cases with a speed-up on two or more machines, grouped by family (in FAMILIES order) and
    fastest first within each: by the geometric mean of the row's speed-ups other than the baseline's."""

    def key(r: Row) -> tuple[tuple[int, str], float, str]:
        sp = [c.speedup for mid, c in r.cells.items() if mid != report.baseline and c.speedup]
        return family_order(r.family), -sum(math.log(s) for s in sp) / max(1, len(sp)), r.name

    rows = [r for r in report.rows if sum(1 for c in r.cells.values() if c.speedup is not None) >= 2]
    return sorted(rows, key=key)


@dataclass(frozen=True)
class LeftOutGroup:
    """The runs of one results file left out, with their reasons."""

    path: str
    commit: str
    date: str
    runs: tuple[LeftOut, ...]

    @property
    def reasons(self) -> dict[str, int]:
        return reason_counts(self.runs)


def reason_counts(runs: tuple[LeftOut, ...]) -> dict[str, int]:
    """Each kind of reason (`disturbed`, `older code`) and how many of `runs` it left out."""
    out: dict[str, int] = {}
    for lo in runs:
        kind = lo.reason.split(":", 1)[0]
        out[kind] = out.get(kind, 0) + 1
    return out


@dataclass(frozen=True)
class MachineLeftOut:
    """One machine's left-out runs: its newest commit's named one by one, the older commits' per file."""

    machine: str
    newest_commit: str
    """The commit of the machine's newest results file read, shown or not (empty when not recorded)."""
    newest: tuple[LeftOut, ...]
    older: tuple[LeftOutGroup, ...]

    @property
    def newest_reasons(self) -> dict[str, int]:
        return reason_counts(self.newest)

    @property
    def older_runs(self) -> int:
        return sum(len(g.runs) for g in self.older)


def left_out_by_machine(report: Report) -> list[MachineLeftOut]:
    out = []
    for m in report.machines:
        mine = [lo for lo in report.left_out if lo.machine == m.id]
        if not mine:
            continue
        commit = m.newest_commit
        recent = tuple(lo for lo in mine if commit and lo.commit == commit)
        groups: dict[str, list[LeftOut]] = {}
        for lo in mine:
            if not (commit and lo.commit == commit):
                groups.setdefault(lo.path, []).append(lo)
        older = tuple(LeftOutGroup(p, g[0].commit, g[0].date, tuple(g)) for p, g in groups.items())
        out.append(MachineLeftOut(m.id, commit, recent, older))
    return out
