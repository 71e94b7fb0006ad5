"""`chipbench history DIR`: what changed in a benchmark's history of results files, and what was the host.

Every results file of one machine id is loaded and ordered by commit time (`commit_info.time`, then the
file's `datetime`); each run contributes its median step time per benchmark. Consecutive runs of a case at
one version hash and one software stack (torch, driver, allocator setting: `baseline.stack`) are one
*point*: the code and the software under it did not change between them, so their spread is the series'
noise at unchanged code, and whatever moves inside a point is the host.

- **Change points** sit only between points: the case's code or its stack differs across each, and each
  names which. Binary segmentation over those boundaries (`split`): the boundary whose windows either
  side differ most by a Mann-Whitney U test on the run medians (`scipy.stats.mannwhitneyu`; ranks, as run
  times on a shared host are heavy-tailed: one run in three may be 30-90% off) is kept if its p-value
  times the number of boundaries searched (Bonferroni) is below --p-value and its ratio of medians
  after/before differs from 1 by at least --min-magnitude; each side is then searched the same way. The
  Bonferroni factor holds the false change points per series near --p-value however many times the hash
  moved (`benchmarks/gate_quality.py --history`). Otava's (formerly Hunter, MongoDB's) prune-the-weakest
  loop, which main used over every run, selects among many candidates and is not corrected for them.
- **Host drift** is a change inside a point (same code, same stack): candidates from `ruptures` (Truong,
  Oudre & Vayatis; maintained, needs only numpy and scipy), PELT on an L2 cost over the log of the run
  medians (a liberal penalty, 2 sigma^2 log n, sigma from the median absolute successive difference),
  then the same test, corrected for every position PELT could have proposed. It is reported apart, with
  its size, and is never a regression.

Libraries considered: `apache-otava` 0.8 pins numpy 2.2.0 and scipy < 1.17 and pulls cloud clients
(BigQuery, Slack); MongoDB's `signal-processing-algorithms` requires numpy < 2. `ruptures` found a planted
step with both PELT and binary segmentation and installs cleanly beside torch's numpy 2.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from chipbench.core import text
from chipbench.core.errors import UsageError
from chipbench.gate import baseline, drift
from chipbench.gate.baseline import RunSpread, Stack
from chipbench.results.files import load_typed, result_files
from chipbench.results.header import CommitInfo, HostProbe
from chipbench.results.typed import ResultsDocument

MIN_POINTS = 4
"""Fewest results of a benchmark in which a change can be found (two runs on each side)."""


@dataclass
class Point:
    """One run of a case: its median step time, the commit, the case's version hash and the stack."""

    commit: str
    when: str
    median_s: float
    file: str
    version_hash: str | None = None
    stack: Stack = ()


@dataclass
class ChangePoint:
    """A change of the code or the stack that moved the case's times."""

    benchmark: str
    commit: str
    previous_commit: str
    ratio: float
    direction: str
    p_value: float
    before_median_s: float
    after_median_s: float
    index: int
    points_before: int
    """Runs in the window before it (the runs, not the pooled points, are the test's units)."""
    points_after: int
    changed: str = ""
    """What differs across it: `code 1a2b3c4d5e6f -> 0f1e2d3c4b5a`, `torch 2.13.0 -> 2.14.0`, ..."""
    probe: str = ""
    """The host probe's drift across the same windows (`probe 1.083|1.012`), where their runs carry one;
    where the case moved as the probe did, `direction` is `host drift` (`against_probe`)."""


@dataclass
class HostDrift:
    """A change inside one point: the same code on the same stack moved. The host, not a regression."""

    benchmark: str
    commit: str
    previous_commit: str
    version_hash: str | None
    ratio: float
    p_value: float
    before_median_s: float
    after_median_s: float
    runs_before: int
    runs_after: int


def _ruptures() -> ModuleType:
    """ruptures, imported here only: an offline GPU image without it still runs benchmarks."""
    try:
        import ruptures
    except ImportError:
        raise UsageError(
            "chipbench history needs ruptures, which this environment lacks: `pip install ruptures`, "
            "or run history on another machine"
        ) from None
    return ruptures


def load_history(root: Path, machine_id: str | None = None) -> tuple[str, list[tuple[Path, ResultsDocument]]]:
    """(machine id, [(file, doc)] in commit-time order) for every results file under root."""
    _ruptures()  # before any file is read: the one line that says what to install
    if not root.exists():
        raise UsageError(f"history folder {root} does not exist")
    docs = [(f, load_typed(f)) for f in result_files(root)]
    ids: dict[str, int] = {}
    for _, d in docs:
        mid = _machine(d)
        ids[mid] = ids.get(mid, 0) + 1
    if machine_id is None:
        if len(ids) > 1:
            listed = ", ".join(f"{k} ({v} files)" for k, v in sorted(ids.items()))
            raise UsageError(f"{root} mixes machines: {listed}; pick one with --machine-id")
        machine_id = next(iter(ids))
    elif machine_id not in ids:
        raise UsageError(
            f"no results of machine {machine_id!r} under {root} (found: {', '.join(sorted(ids))})"
        )
    picked = [(f, d) for f, d in docs if _machine(d) == machine_id]
    picked.sort(key=lambda fd: baseline.order_key(fd[1], fd[0]))
    return machine_id, picked


def _machine(doc: ResultsDocument) -> str:
    return doc.recorded_machine_id or "unknown"


@dataclass
class Disturbed:
    """A run left out of a history: the machine was disturbed while it was measured."""

    benchmark: str
    file: str
    why: str
    newest: bool
    """It was the benchmark's newest run: CI should run it again."""


class CaseRun(NamedTuple):
    """One case in one run, as much of it as a history reads (no samples). A NamedTuple, immutable and
    cheap: a store's history makes one per stored result."""

    name: str
    group: str | None
    median_s: float | None
    version_hash: str | None
    disturbed: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run (a results file, or a store's run) as a history reads it: where it came from, its commit,
    its stack, its cases and its host probe. Folders and stores give the same records (`record`)."""

    file: str
    commit: str
    when: str
    stack: Stack
    cases: tuple[CaseRun, ...]
    probe: HostProbe | None = None


def record(path: object, doc: ResultsDocument) -> RunRecord:
    """A results file's run record."""
    ci = doc.commit_info or CommitInfo()
    cases = tuple(
        CaseRun(b.name, b.group, b.stats.median_s, b.extra_info.version_hash, b.extra_info.disturbed or None)
        for b in doc.benchmarks
    )  # fmt: skip
    return RunRecord(str(path), ci.id or "unknown", ci.time or doc.datetime or "", baseline.stack(doc), cases,
                     doc.header.host_probe)  # fmt: skip


def series(
    docs: list[tuple[Path, ResultsDocument]], pattern: str | None
) -> tuple[dict[str, list[Point]], list[Disturbed]]:
    """`series_of_runs` over results files in history order."""
    return series_of_runs([record(f, d) for f, d in docs], pattern)


def series_of_runs(
    runs: list[RunRecord], pattern: str | None
) -> tuple[dict[str, list[Point]], list[Disturbed]]:
    """Each benchmark's runs in the given (history) order; runs measured on a disturbed machine are left out
    and listed instead (a co-tenant's step would read as a change point)."""
    out: dict[str, list[Point]] = {}
    left: list[Disturbed] = []
    last = {c.name: i for i, r in enumerate(runs) for c in r.cases}  # the newest run of each benchmark
    for i, r in enumerate(runs):
        for c in r.cases:
            if pattern and not (
                fnmatch.fnmatchcase(c.name, pattern) or fnmatch.fnmatchcase(str(c.group), pattern)
            ):
                continue
            med = c.median_s
            if med is None or not med > 0:
                continue
            if c.disturbed:
                left.append(Disturbed(c.name, r.file, c.disturbed, last[c.name] == i))
                continue
            out.setdefault(c.name, []).append(
                Point(r.commit, r.when, float(med), r.file, c.version_hash, r.stack)
            )
    return out, left


def boundaries(points: list[Point]) -> list[int]:
    """Indices of the runs that start a new point: the version hash or the stack differs from the run
    before."""
    return [
        i
        for i in range(1, len(points))
        if (points[i].version_hash, points[i].stack) != (points[i - 1].version_hash, points[i - 1].stack)
    ]


def noise(points: list[Point]) -> RunSpread | None:
    """The series' run-to-run spread at unchanged code: within its points, pooled."""
    edges = [0, *boundaries(points), len(points)]
    groups = [[p.median_s for p in points[a:b]] for a, b in itertools.pairwise(edges)]
    return baseline.spread(groups, "series")


def what_changed(before: Point, after: Point) -> str:
    """`code 1a2b3c4d5e6f -> 0f1e2d3c4b5a; torch 2.13.0 -> 2.14.0`: what differs between two runs."""
    parts = []
    if before.version_hash != after.version_hash:
        parts.append(f"code {str(before.version_hash)[:12]} -> {str(after.version_hash)[:12]}")
    parts.extend(baseline.stack_changes(before.stack, after.stack))
    return "; ".join(parts)


def candidates(y: np.ndarray, min_size: int = 2) -> list[int]:
    """Indices where a new segment starts, from ruptures' PELT on an L2 cost (liberal penalty)."""
    rpt = _ruptures()

    n = y.size
    if n < 2 * min_size:
        return []
    d = np.abs(np.diff(y))
    sigma = float(np.median(d)) / 0.9539 if d.size else 0.0  # MASD of Gaussian noise = 0.9539 * sigma
    sigma = max(sigma, 1e-6)
    pen = 2.0 * sigma**2 * math.log(n)
    bkps = rpt.Pelt(custom_cost=_prefix_l2(rpt), min_size=min_size, jump=1).fit(y).predict(pen=pen)
    return [int(b) for b in bkps if 0 < b < n]


def _prefix_l2(rpt: ModuleType) -> Any:
    """ruptures' L2 cost (a segment's squared deviation from its mean) from prefix sums: O(1) a segment
    where ruptures' own computes the variance of the slice, O(n) (PELT asks O(n^2) times). The same cost up
    to rounding (the series centred first); ruptures' search around it is unchanged."""

    class PrefixL2(rpt.base.BaseCost):  # type: ignore[misc,name-defined]
        model = "l2-prefix"
        min_size = 1

        def fit(self, signal: np.ndarray) -> PrefixL2:
            self.signal = np.asarray(signal, dtype=float).reshape(-1, 1)  # ruptures reads its length
            y = self.signal[:, 0] - self.signal[:, 0].mean()
            self.s1 = [0.0, *np.cumsum(y).tolist()]
            self.s2 = [0.0, *np.cumsum(y * y).tolist()]
            return self

        def error(self, start: int, end: int) -> float:
            n = end - start
            if n < self.min_size:
                raise rpt.costs.NotEnoughPoints
            s = self.s1[end] - self.s1[start]
            return max(self.s2[end] - self.s2[start] - s * s / n, 0.0)

    return PrefixL2()


Tested = tuple[int, float, float, np.ndarray, np.ndarray]
"""(index, p, ratio after/before, the window before, the window after)."""


def split(
    x: np.ndarray, cps: list[int], p_value: float, min_magnitude: float, proposed: bool = False
) -> list[Tested]:
    """Binary segmentation over the allowed positions `cps`: in the whole series, the position whose
    windows either side differ most (the smallest Mann-Whitney U p-value on the run medians, among those
    whose ratio of medians moved by at least min_magnitude) is a change point if that p-value, times the
    number of positions in the whole series (Bonferroni: a family-wise rate per series, not per window),
    is below p_value; then each side the same way; then each one found is tested again between its
    neighbours. `proposed`: the candidates came from the data (PELT's), so the correction counts every
    position they could have come from."""
    logs = np.log(x)
    inside = sum(2 <= b <= x.size - 2 for b in cps)
    tried = max(inside, x.size - 3) if proposed else inside

    def search(lo: int, hi: int) -> list[Tested]:
        best: Tested | None = None
        for b in (b for b in cps if lo + 2 <= b <= hi - 2):
            ratio = _ratio(x, lo, b, hi)  # a move too small never counts: no rank test spent on it
            t = _test(x, logs, lo, b, hi, ratio) if abs(ratio - 1.0) >= min_magnitude else None
            if t is not None and (best is None or t[1] < best[1]):
                best = t
        if best is None or not best[1] * tried < p_value:
            return []
        return [*search(lo, best[0]), best, *search(best[0], hi)]

    found = [t[0] for t in search(0, x.size)]
    while found:  # a position chosen early was tested over windows that later ones cut
        edges = [0, *found, x.size]
        tested = [_test(x, logs, *w, _ratio(x, *w)) for w in zip(edges, edges[1:], edges[2:], strict=False)]
        failing = [t for t in tested if not (t[1] * tried < p_value and abs(t[2] - 1.0) >= min_magnitude)]
        if not failing:
            return tested
        found.remove(max(failing, key=lambda t: t[1])[0])
    return []


def _ratio(x: np.ndarray, lo: int, b: int, hi: int) -> float:
    """The ratio of medians across position b, window x[b:hi] over x[lo:b]."""
    return float(np.median(x[b:hi]) / np.median(x[lo:b]))


def _test(x: np.ndarray, logs: np.ndarray, lo: int, b: int, hi: int, ratio: float) -> Tested:
    """Position b between the windows x[lo:b] and x[b:hi]: the rank test's p, with their `_ratio`."""
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(logs[lo:b], logs[b:hi], alternative="two-sided").pvalue)
    return (b, p, ratio, x[lo:b], x[b:hi])


def detect(
    name: str, points: list[Point], *, p_value: float = 0.01, min_magnitude: float = 0.05
) -> list[ChangePoint]:
    """Change points of one benchmark's history: only where the code or the stack changed (`boundaries`),
    kept where the rank test (Bonferroni over the boundaries) and the magnitude test pass (`split`)."""
    x = np.array([p.median_s for p in points])
    if x.size < MIN_POINTS:
        return []
    return [
        ChangePoint(
            benchmark=name,
            commit=points[b].commit,
            previous_commit=points[b - 1].commit,
            ratio=ratio,
            direction="regression" if ratio > 1 else "improvement",
            p_value=p,
            before_median_s=float(np.median(before)),
            after_median_s=float(np.median(after)),
            index=b,
            points_before=int(before.size),
            points_after=int(after.size),
            changed=what_changed(points[b - 1], points[b]),
        )
        for b, p, ratio, before, after in split(x, boundaries(points), p_value, min_magnitude)
    ]


def against_probe(
    cps: list[ChangePoint], points: list[Point], probes: Mapping[str, HostProbe | None]
) -> None:
    """Set each change point of one benchmark against the host probe of the runs in its windows: `probe`
    gains its drift, and a change that moved as the probe did (gate.drift.explains) becomes `host drift`."""
    for c in cps:
        before = [probes.get(p.file) for p in points[c.index - c.points_before : c.index]]
        after = [probes.get(p.file) for p in points[c.index : c.index + c.points_after]]
        got = drift.host_drift(before, after)
        c.probe = drift.short(got)
        why = drift.explains(c.ratio, got) if c.probe else None
        if why is not None:
            c.direction = "host drift"
            c.changed += f"; moved with the host (the probe's {why[0]} {why[1]:.3f})"


def host_drift(
    name: str, points: list[Point], *, p_value: float = 0.01, min_magnitude: float = 0.05
) -> list[HostDrift]:
    """Changes inside the points of one benchmark's history (same code, same stack): the host moved."""
    out: list[HostDrift] = []
    edges = [0, *boundaries(points), len(points)]
    for a, z in itertools.pairwise(edges):
        x = np.array([p.median_s for p in points[a:z]])
        if x.size < MIN_POINTS:
            continue
        for b, p, ratio, before, after in split(
            x, candidates(np.log(x)), p_value, min_magnitude, proposed=True
        ):
            at, prev = points[a + b], points[a + b - 1]
            out.append(
                HostDrift(
                    benchmark=name,
                    commit=at.commit,
                    previous_commit=prev.commit,
                    version_hash=at.version_hash,
                    ratio=ratio,
                    p_value=p,
                    before_median_s=float(np.median(before)),
                    after_median_s=float(np.median(after)),
                    runs_before=int(before.size),
                    runs_after=int(after.size),
                )
            )
    return out


@dataclass
class Analysis:
    """One benchmark's history analysed: its change points, its host drift, its noise at unchanged code."""

    benchmark: str
    change_points: list[ChangePoint]
    drifts: list[HostDrift]
    noise: RunSpread | None


def analyse(
    name: str,
    points: list[Point],
    probes: Mapping[str, HostProbe | None],
    *,
    p_value: float = 0.01,
    min_magnitude: float = 0.05,
) -> Analysis:
    """`detect` set `against_probe`, `host_drift` and `noise` of one benchmark's points."""
    found = detect(name, points, p_value=p_value, min_magnitude=min_magnitude)
    against_probe(found, points, probes)
    drifts = host_drift(name, points, p_value=p_value, min_magnitude=min_magnitude)
    return Analysis(name, found, drifts, noise(points))


@dataclass
class Analysed:
    """One machine's history: its runs in order, each benchmark's points, the disturbed runs left out, and
    each benchmark analysed (sorted by name)."""

    machine_id: str
    runs: list[RunRecord]
    per: dict[str, list[Point]]
    disturbed: list[Disturbed]
    analyses: list[Analysis]


def analyse_runs(
    machine_id: str, runs: list[RunRecord], pattern: str | None, *, p_value: float, min_magnitude: float
) -> Analysed:
    """Every benchmark of one machine's runs (in history order) that matches `pattern`, analysed."""
    per, disturbed = series_of_runs(runs, pattern)
    probes = {r.file: r.probe for r in runs}
    got = [analyse(n, per[n], probes, p_value=p_value, min_magnitude=min_magnitude) for n in sorted(per)]
    return Analysed(machine_id, runs, per, disturbed, got)


COLUMNS = ("benchmark", "commit", "previous", "ratio", "direction", "p", "before_ms", "after_ms", "probe",
           "changed")  # fmt: skip
DRIFT_COLUMNS = (
    "benchmark",
    "commit",
    "previous",
    "version hash",
    "ratio",
    "p",
    "runs",
    "before_ms",
    "after_ms",
)


def rows(cps: list[ChangePoint]) -> list[list[str]]:
    return [
        [
            c.benchmark,
            c.commit[:12],
            c.previous_commit[:12],
            f"{c.ratio:.3f}",
            c.direction,
            f"{c.p_value:.2g}",
            f"{c.before_median_s * 1e3:.4g}",
            f"{c.after_median_s * 1e3:.4g}",
            c.probe,
            c.changed,
        ]
        for c in cps
    ]


def drift_rows(drifts: list[HostDrift]) -> list[list[str]]:
    return [
        [
            d.benchmark,
            d.commit[:12],
            d.previous_commit[:12],
            str(d.version_hash)[:12],
            f"{d.ratio:.3f}",
            f"{d.p_value:.2g}",
            f"{d.runs_before}+{d.runs_after}",
            f"{d.before_median_s * 1e3:.4g}",
            f"{d.after_median_s * 1e3:.4g}",
        ]
        for d in drifts
    ]


def to_markdown(title: str, cps: list[ChangePoint], drifts: list[HostDrift] | None = None) -> str:
    lines = [f"### {text.markdown(title)}", "", *text.markdown_table(COLUMNS, rows(cps))]
    if drifts:
        lines += ["", "Host drift (same code, same stack: not a regression)", ""]
        lines += text.markdown_table(DRIFT_COLUMNS, drift_rows(drifts))
    return "\n".join(lines) + "\n"
