"""`chipbench history DIR`: change points in a benchmark's history of results files.

Every results file of one machine id is loaded and ordered by commit time (`commit_info.time`, then the
file's `datetime`); each run contributes one point per benchmark, its median step time.

Detection is two-stage, as in Apache Otava (formerly Hunter, MongoDB's approach):

1. Candidates from `ruptures` (Truong, Oudre & Vayatis; maintained, needs only numpy and scipy) with
   PELT on an L2 cost over the log of the medians. PELT finds the *optimal* segmentation for a penalised
   cost in about linear time, where binary segmentation is a greedy approximation that can misplace or
   miss one of two close steps; histories are hundreds of points at most, so exactness costs nothing. The
   penalty is deliberately liberal (2 sigma^2 log n, sigma from the median absolute successive
   difference, robust to the steps themselves): stage 2 prunes.
2. Each candidate is kept only if a Welch t-test (`scipy.stats.ttest_ind(equal_var=False)`) between the
   windows either side (up to the neighbouring candidates) gives p < --p-value and the ratio of medians
   after/before differs from 1 by at least --min-magnitude. The weakest failing candidate is dropped and
   the windows of its neighbours re-formed until all pass, as Otava does.

Libraries considered: `apache-otava` 0.8 pins numpy 2.2.0 and scipy < 1.17 and pulls cloud clients
(BigQuery, Slack); MongoDB's `signal-processing-algorithms` requires numpy < 2. `ruptures` found a planted
step with both PELT and binary segmentation and installs cleanly beside torch's numpy 2.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from chipbench.core import text
from chipbench.core.errors import UsageError
from chipbench.results.files import load_typed, result_files
from chipbench.results.header import CommitInfo
from chipbench.results.typed import ResultsDocument

MIN_POINTS = 4
"""Fewest results of a benchmark in which a change point can be found (two on each side)."""


@dataclass
class Point:
    commit: str
    when: str
    median_s: float
    file: str


@dataclass
class ChangePoint:
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
    points_after: int


def _time(doc: ResultsDocument) -> tuple[float, float]:
    def parse(s: str | None) -> float:
        if not s:
            return math.inf
        try:
            t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return math.inf
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return t.timestamp()

    return parse(doc.commit_info.time if doc.commit_info else None), parse(doc.datetime)


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
    picked.sort(key=lambda fd: (*_time(fd[1]), str(fd[0])))
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


def series(
    docs: list[tuple[Path, ResultsDocument]], pattern: str | None
) -> tuple[dict[str, list[Point]], list[Disturbed]]:
    """Each benchmark's points in file order; runs measured on a disturbed machine are left out and
    listed instead (a co-tenant's step would read as a change point)."""
    out: dict[str, list[Point]] = {}
    left: list[Disturbed] = []
    for i, (f, d) in enumerate(docs):
        ci = d.commit_info or CommitInfo()
        commit = ci.id or "unknown"
        when = ci.time or d.datetime or ""
        for b in d.benchmarks:
            name = b.name
            if pattern and not (
                fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(str(b.group), pattern)
            ):
                continue
            st = b.stats
            med = st.median if st.median is not None else (float(np.median(st.data)) if st.data else None)
            if med is None or not med > 0:
                continue
            why = b.extra_info.disturbed
            if why:
                newest = not any(b2.name == name for _, d2 in docs[i + 1 :] for b2 in d2.benchmarks)
                left.append(Disturbed(name, str(f), why, newest))
                continue
            out.setdefault(name, []).append(Point(commit, when, float(med), str(f)))
    return out, left


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
    bkps = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(y.reshape(-1, 1)).predict(pen=pen)
    return [int(b) for b in bkps if 0 < b < n]


def detect(
    name: str, points: list[Point], *, p_value: float = 0.01, min_magnitude: float = 0.05
) -> list[ChangePoint]:
    """Change points of one benchmark's history that pass the Welch t-test and the magnitude test."""
    from scipy.stats import ttest_ind

    x = np.array([p.median_s for p in points])
    if x.size < MIN_POINTS:
        return []
    cps = candidates(np.log(x))
    while True:
        tested: list[tuple[int, float, float, bool]] = []
        edges = [0, *cps, x.size]
        for i, b in enumerate(cps):
            before, after = x[edges[i] : b], x[b : edges[i + 2]]
            ratio = float(np.median(after) / np.median(before))
            if before.size >= 2 and after.size >= 2:
                with np.errstate(all="ignore"):
                    p = float(ttest_ind(before, after, equal_var=False).pvalue)
                p = 1.0 if math.isnan(p) else p
            else:
                p = 1.0
            ok = p < p_value and abs(ratio - 1.0) >= min_magnitude
            tested.append((b, p, ratio, ok))
        failing = [t for t in tested if not t[3]]
        if not failing:
            break
        weakest = max(failing, key=lambda t: (t[1], -abs(math.log(t[2]))))
        cps.remove(weakest[0])
    out = []
    edges = [0, *cps, x.size]
    for i, (b, p, ratio, _) in enumerate(tested):
        before, after = x[edges[i] : b], x[b : edges[i + 2]]
        out.append(
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
            )
        )
    return out


COLUMNS = ("benchmark", "commit", "previous", "ratio", "direction", "p", "before_ms", "after_ms")


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
        ]
        for c in cps
    ]


def to_markdown(title: str, cps: list[ChangePoint]) -> str:
    lines = [f"### {text.markdown(title)}", "", *text.markdown_table(COLUMNS, rows(cps))]
    return "\n".join(lines) + "\n"
