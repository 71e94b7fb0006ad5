"""What the results store takes and gives: typed, frozen, checked on construction. Rows become these in
`database`, and nothing outside the store sees a row."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chipbench.results.header import HostProbe
from chipbench.results.provenance import Stack

REASONS = ("commit", "pr", "nightly", "manual")
"""Why a run was made: a main-branch commit, a pull request, a nightly job, by hand."""

STATUSES = ("open", "acknowledged", "invalid", "fixed")
"""A change point's status: new; looked at and real; not a real change; the code was fixed."""

DIRECTIONS = ("slower", "faster", "host drift")


@dataclass(frozen=True)
class IngestOptions:
    """What `Store.ingest` records of the runs it adds besides their files."""

    branch: str | None = None
    """The branch the runs were made on; None: each file's own `commit_info.branch` (may be None)."""
    reason: str = "manual"
    """One of REASONS."""

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {', '.join(REASONS)}, got {self.reason!r}")
        if self.branch is not None and not self.branch.strip():
            raise ValueError("branch must not be empty")


@dataclass(frozen=True)
class IngestedFile:
    """A file the store holds, whether this ingest added it or found it there."""

    path: str
    run_id: int
    content_hash: str
    """sha256 of the file's bytes, hex: the run's key."""
    results: int
    """Benchmarks the run holds."""


@dataclass(frozen=True)
class RefusedFile:
    path: str
    reason: str
    """One line: what the strict reader found wrong."""


@dataclass(frozen=True)
class IngestReport:
    added: tuple[IngestedFile, ...] = ()
    present: tuple[IngestedFile, ...] = ()
    """Already in the store (same bytes): nothing was added for them."""
    refused: tuple[RefusedFile, ...] = ()

    @property
    def ok(self) -> bool:
        """Every file is in the store now."""
        return not self.refused


@dataclass(frozen=True)
class StoredRun:
    """One results file in the store."""

    id: int
    content_hash: str
    file: str
    """The path it was ingested from, as given (the folder code's tie-breaker in `order`)."""
    machine_id: str
    """Its recorded machine id ("unknown" when none), as `history` groups runs."""
    device: str | None
    commit: str | None
    commit_time: str | None
    datetime: str | None
    branch: str | None
    reason: str
    stack: Stack
    host_probe: HostProbe | None
    """The run's host probe (gate.drift compares two runs' probes)."""
    order: tuple[float, float, str]
    """results.provenance.order_key of the file: runs are listed in this order."""

    @property
    def stack_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.stack)


@dataclass(frozen=True)
class StoredPoint:
    """One benchmark of one run, from the summary columns only (no samples decoded)."""

    run_id: int
    result_id: int
    case: str
    """The benchmark's name in its file (`@worldN` included)."""
    group: str | None
    version_hash: str | None
    median_s: float | None
    """The file's median (from the samples where the file gives none); None without samples."""
    ci_low: float | None
    ci_high: float | None
    samples: int
    disturbed: str | None
    commit: str | None
    commit_time: str | None
    datetime: str | None
    file: str
    stack: Stack
    order: tuple[float, float, str]
    """Its run's order key."""

    @property
    def when(self) -> str:
        """What `history` shows as the point's time: the commit's, else the run's."""
        return self.commit_time or self.datetime or ""


@dataclass(frozen=True)
class ChangePointRecord:
    """A change point found in one series (a machine's case), as `save_change_points` takes it."""

    case: str
    commit: str
    previous_commit: str
    ratio: float
    """Median after over median before (> 1: slower)."""
    direction: str
    """One of DIRECTIONS."""
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    before_median_s: float | None = None
    after_median_s: float | None = None
    changed: str = ""
    """What differs across it (code, stack), as `history` says it."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ratio) and self.ratio > 0):
            raise ValueError(f"a change point's ratio must be finite and > 0, got {self.ratio!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        if not self.case or not self.commit:
            raise ValueError("a change point needs its case and its commit")


@dataclass(frozen=True)
class StoredChangePoint(ChangePointRecord):
    """A change point as kept: its id, machine, status and note."""

    id: int = 0
    machine_id: str = ""
    status: str = "open"
    """One of STATUSES."""
    note: str = ""
    created: str = ""
    """When it was first saved (UTC, ISO 8601)."""
