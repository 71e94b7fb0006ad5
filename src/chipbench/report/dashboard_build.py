"""The dashboard's files from a results store, one machine at a time (so a fleet's dashboard holds one
machine's points in memory at once): each machine's page, then the index and the shared scripts.

Reads the store through its API (`Store.runs`, `Store.points`, `Store.change_points`): the summary
columns, never a sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from chipbench.gate.compare import ratio_ci
from chipbench.report import dashboard_page
from chipbench.report.dashboard import (
    ChangePoint,
    Index,
    MachineLine,
    PointRow,
    Run,
    machine_history,
    machine_line,
)
from chipbench.store import Store, StoredChangePoint, StoredRun

DEFAULT_LAST = 300
"""Runs per machine page: the newest 300 (a page of 300 runs x 60 cases is about 0.5 MB)."""


def point_rows(store: Store, machine_id: str, run_ids: Sequence[int]) -> list[PointRow]:
    """The machine's results in these runs that have a median (`Store.points`' summary columns)."""
    return [
        PointRow(p.run_id, p.case, p.median_s, p.ci_low, p.ci_high, p.version_hash, p.disturbed)
        for p in store.points(machine_id, run_ids=run_ids)
        if p.median_s is not None
    ]


@dataclass(frozen=True)
class DashboardOptions:
    """What `chipbench dashboard` shows."""

    title: str = "chipbench history"
    branch: str | None = None
    """Only runs of this branch (None: every run)."""
    last: int = DEFAULT_LAST
    """The newest runs per machine page."""

    def __post_init__(self) -> None:
        if self.last < 1:
            raise ValueError(f"last must be at least 1, not {self.last}")


@dataclass(frozen=True)
class Built:
    """What the dashboard holds, for the command's summary line."""

    machines: int
    runs: int
    points: int
    open: int
    looked_at: int


def _run(r: StoredRun) -> Run:
    return Run(r.id, r.commit or "", r.commit_time or r.datetime or "unknown", r.branch or "")


def _change_point(c: StoredChangePoint, when: dict[str, str]) -> ChangePoint:
    ci = (c.ci_low, c.ci_high) if c.ci_low is not None and c.ci_high is not None else None
    return ChangePoint(
        id=c.id, machine=c.machine_id, case=c.case, ratio=c.ratio, ratio_ci=ci, commit=c.commit,
        previous_commit=c.previous_commit, when=when.get(c.commit) or c.created, status=c.status,
        note=c.note, p_value=c.p_value, direction=c.direction,
    )  # fmt: skip


def with_intervals(
    cps: Sequence[ChangePoint], runs: Sequence[Run], rows: Sequence[PointRow]
) -> list[ChangePoint]:
    """Change points kept without an interval get one here: a percentile bootstrap of the ratio of the
    median run medians after and before (`gate.compare.ratio_ci`; runs are history's units), each side
    the case's undisturbed runs between this change point and its neighbours, within the runs shown.
    Where a side has fewer than two runs shown, the interval stays unknown."""
    at = {r.run_id: i for i, r in enumerate(runs)}
    first: dict[str, int] = {}
    for i, r in enumerate(runs):
        first.setdefault(r.commit, i)
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        if row.run_id in at and not row.disturbed:
            series.setdefault(row.case, []).append((at[row.run_id], row.median_s))
    edges: dict[str, list[int]] = {}
    for c in cps:
        if c.commit in first:
            edges.setdefault(c.case, []).append(first[c.commit])
    out = []
    for c in cps:
        b = first.get(c.commit)
        if c.ratio_ci is not None or b is None:
            out.append(c)
            continue
        bounds = sorted(set(edges[c.case]))
        lo = max((e for e in bounds if e < b), default=0)
        hi = min((e for e in bounds if e > b), default=len(runs))
        pts = series.get(c.case, [])
        before = np.array([m for i, m in pts if lo <= i < b])
        after = np.array([m for i, m in pts if b <= i < hi])
        if before.size < 2 or after.size < 2:
            out.append(c)
            continue
        _, low, high = ratio_ci(before, after, n_boot=1000)
        out.append(replace(c, ratio_ci=(low, high)))
    return out


def pages(store: Store, options: DashboardOptions, built: list[Built]) -> Iterator[tuple[str, str]]:
    """(file name, text) of every file of the dashboard: the machine pages as they are made, then the
    index, then the shared scripts. `built` gets the summary once the last file is made."""
    stored = store.change_points()
    by_machine: dict[str, list[StoredChangePoint]] = {}
    for c in stored:
        by_machine.setdefault(c.machine_id, []).append(c)
    lines: list[MachineLine] = []
    listed: list[ChangePoint] = []
    n_runs = n_points = 0
    for machine in store.machines():
        every = store.runs(machine, branch=options.branch)
        when = {r.commit: r.commit_time or r.datetime or "" for r in every if r.commit}
        cps = [_change_point(c, when) for c in by_machine.pop(machine, [])]
        if not every:  # no run of this branch
            listed += cps
            continue
        shown = every[-options.last :]
        rows = point_rows(store, machine, [r.id for r in shown])
        device = next((r.device for r in reversed(shown) if r.device), "") or ""
        runs = [_run(r) for r in shown]
        cps = with_intervals(cps, runs, rows)
        h = machine_history(machine, runs, rows, cps, device=device, shown_of=len(every))
        listed += cps
        n_runs, n_points = n_runs + len(h.runs), n_points + len(rows)
        lines.append(machine_line(h))
        yield h.page, dashboard_page.machine_html(h, options.title)
    # Change points of a machine with no run left (a store rebuilt without it) are still listed.
    listed += [_change_point(c, {}) for cs in by_machine.values() for c in cs]
    index = Index(options.title, tuple(listed), tuple(lines))
    yield dashboard_page.INDEX, dashboard_page.index_html(index)
    yield from dashboard_page.assets().items()
    built.append(Built(len(lines), n_runs, n_points, len(index.open), len(index.looked_at)))
