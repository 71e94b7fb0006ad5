"""What the history dashboard shows, as typed values: a machine's runs in commit order, a panel per case
(a point per run: median, interval, version hash, disturbed), and change points with their status.

Built from plain rows (a store's query results, or anything shaped like them) by `machine_history`; drawn
by `dashboard_page`. Nothing here reads a database or a file: the command hands the rows in, one machine at
a time, so a dashboard over many machines holds one machine's points in memory at once.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

STATUSES = ("open", "acknowledged", "invalid", "fixed")
"""A change point's status: `open` until someone looked at it; the index lists only open ones first."""


HOST_DRIFT = "host drift"


def slug(text: str, prefix: str) -> str:
    """A file name or anchor for any string (a machine id or case name from a results file may hold any
    character): its safe characters, then a hash so that two names never share one."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60].strip("._") or "x"
    return f"{prefix}-{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Run:
    """One run of a machine (one results file), in the order the page draws them."""

    run_id: int
    commit: str
    when: str
    """The commit's time (ISO 8601), else the run's own time: the x axis."""
    branch: str = ""

    def __post_init__(self) -> None:
        if not self.when:
            raise ValueError(f"run {self.run_id} has no time")


@dataclass(frozen=True)
class Point:
    """One case in one run."""

    run: int
    """Index into the machine's `runs`."""
    median_s: float
    ci_s: tuple[float, float]
    """The median's 95% interval (equal to the median where the run had too few samples for one)."""
    version_hash: str
    disturbed: str = ""
    """Why the run was disturbed while this case was measured; empty when it was not."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.median_s) and self.median_s > 0):
            raise ValueError(f"a median must be a positive time, not {self.median_s!r}")


@dataclass(frozen=True)
class ChangePoint:
    """A change point as the dashboard lists it."""

    id: int
    machine: str
    case: str
    ratio: float
    """Median after over median before (above 1: slower)."""
    ratio_ci: tuple[float, float] | None
    """Its 95% interval, where known."""
    commit: str
    """The first commit after the change."""
    previous_commit: str
    """The last commit before it: the change lies in previous_commit..commit."""
    when: str
    """The commit's time (ISO 8601): the index is newest first by it."""
    status: str = "open"
    note: str = ""
    p_value: float | None = None
    direction: str = ""
    """slower, faster, or host drift (a move between runs of identical code: never a regression)."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")

    @property
    def page(self) -> str:
        return slug(self.machine, "machine") + ".html"

    @property
    def anchor(self) -> str:
        return slug(self.case, "case")


@dataclass(frozen=True)
class Panel:
    """A case's history on one machine."""

    case: str
    points: tuple[Point, ...]
    change_points: tuple[ChangePoint, ...] = ()

    @property
    def anchor(self) -> str:
        return slug(self.case, "case")


@dataclass(frozen=True)
class MachineHistory:
    """One machine's page: its runs oldest first and a panel per case, sorted by name."""

    machine: str
    runs: tuple[Run, ...]
    panels: tuple[Panel, ...]
    device: str = ""
    shown_of: int = 0
    """How many runs the store holds for it (the page shows the newest `len(runs)`)."""

    @property
    def page(self) -> str:
        return slug(self.machine, "machine") + ".html"


@dataclass(frozen=True)
class MachineLine:
    """A machine as the index lists it."""

    machine: str
    page: str
    runs: int
    cases: int
    last_commit: str
    last_when: str


@dataclass(frozen=True)
class Index:
    """The index page: change points (open ones first, newest first) and the machines."""

    title: str
    change_points: tuple[ChangePoint, ...]
    machines: tuple[MachineLine, ...]

    @property
    def open(self) -> list[ChangePoint]:
        """Open changes of code or stack, newest first: what nobody has looked at yet."""
        return newest_first(c for c in self.change_points if c.status == "open" and c.direction != HOST_DRIFT)

    @property
    def looked_at(self) -> list[ChangePoint]:
        return newest_first(c for c in self.change_points if c.status != "open" and c.direction != HOST_DRIFT)

    @property
    def host_drift(self) -> list[ChangePoint]:
        return newest_first(c for c in self.change_points if c.direction == HOST_DRIFT)


def newest_first(cps: Iterable[ChangePoint]) -> list[ChangePoint]:
    return sorted(cps, key=lambda c: (c.when, c.id), reverse=True)


class PointRow(NamedTuple):
    """One case in one run as a store returns it: the input of `machine_history` (a named tuple: a
    dashboard makes one per point, tens of thousands a page)."""

    run_id: int
    case: str
    median_s: float
    ci_low_s: float | None
    ci_high_s: float | None
    version_hash: str | None
    disturbed: str | None


def machine_history(
    machine: str,
    runs: Iterable[Run],
    rows: Iterable[PointRow],
    change_points: Iterable[ChangePoint] = (),
    *,
    device: str = "",
    shown_of: int = 0,
) -> MachineHistory:
    """A machine's page from its runs, oldest first (the store's order: commit time, the run's time, the
    file), and its points; rows of runs not given are left out (the page shows the runs it was given)."""
    ordered = tuple(runs)
    at = {r.run_id: i for i, r in enumerate(ordered)}
    by_case: dict[str, list[Point]] = {}
    for row in rows:
        i = at.get(row.run_id)
        if i is None or not (math.isfinite(row.median_s) and row.median_s > 0):
            continue
        lo = row.ci_low_s if row.ci_low_s is not None and math.isfinite(row.ci_low_s) else row.median_s
        hi = row.ci_high_s if row.ci_high_s is not None and math.isfinite(row.ci_high_s) else row.median_s
        by_case.setdefault(row.case, []).append(
            Point(i, row.median_s, (lo, hi), row.version_hash or "", row.disturbed or "")
        )
    cps: dict[str, list[ChangePoint]] = {}
    for c in change_points:
        cps.setdefault(c.case, []).append(c)
    panels = tuple(
        Panel(case, tuple(sorted(pts, key=lambda p: p.run)), tuple(newest_first(cps.get(case, ()))))
        for case, pts in sorted(by_case.items())
    )
    return MachineHistory(machine, ordered, panels, device, shown_of or len(ordered))


def machine_line(h: MachineHistory) -> MachineLine:
    last = h.runs[-1] if h.runs else None
    return MachineLine(
        h.machine, h.page, h.shown_of, len(h.panels), last.commit if last else "", last.when if last else ""
    )
