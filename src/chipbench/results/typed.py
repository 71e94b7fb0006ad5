"""The typed results document: `ResultsDocument` (pytest-benchmark's layout) with chipbench's run header.

`ResultsDocument.from_json` is the one place a checked file (results.validate) becomes typed, and
`ResultsDocument.to_json` the one place a document becomes JSON again; the parts are results.model
(a benchmark's result) and results.header (the machine, the commit, the run's errors, ceilings, price).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chipbench.results import wire
from chipbench.results.header import (
    ABSide,
    CaseError,
    CeilingsSeen,
    CommitInfo,
    HostProbe,
    MachineInfo,
    PriceSeen,
    RunSummary,
)
from chipbench.results.model import Benchmark
from chipbench.results.wire import JSONObject, Record


@dataclass(frozen=True)
class LoadAvg(Record):
    """The machine's 1-minute load average when the run started and when it was saved."""

    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class RunHeader(Record):
    """chipbench's section of a results file: what ran, where, how, and what failed."""

    schema_version: int = 1
    version: str | None = None
    """chipbench's version."""
    machine_id: str | None = None
    """Device model, count and ISA tier: results of one machine id are comparable."""
    suite: str | None = None
    argv: tuple[str, ...] = ()
    """The command line that ran."""
    environment: Mapping[str, Any] = field(default_factory=dict)
    """The machine as platform.hardware.environment described it (device, CPU, packages, distributed)."""
    ceilings: CeilingsSeen | None = None
    price: PriceSeen | None = None
    errors: tuple[CaseError, ...] = ()
    interrupted: bool = False
    """Ctrl-C or a signal stopped the run: the file holds what finished."""
    load_avg_1m: LoadAvg | None = None
    startup_to_first_result_s: float | None = None
    """From process start to the first finished benchmark."""
    runs: tuple[RunSummary, ...] | None = None
    """The runs of a sweep (several process counts); None for one run."""
    wall_s: float | None = None
    """From process start to the save (a sweep: its last run's)."""
    ab: ABSide | None = None
    host_probe: HostProbe | None = None
    """The host probe at the run's start and end: its own drift reference (absent: no probe ran)."""

    OMIT_NONE = ("load_avg_1m", "startup_to_first_result_s", "runs", "wall_s", "ab", "host_probe")

    def __post_init__(self) -> None:
        if self.schema_version < 1:
            raise ValueError("chipbench.schema_version must be a positive integer")

    @property
    def world_size(self) -> int:
        dist = self.environment.get("distributed")
        ws = dist.get("world_size", 1) if isinstance(dist, dict) else 1
        return ws if isinstance(ws, int) else 1


@dataclass(frozen=True)
class ResultsDocument(Record):
    """One results file: pytest-benchmark's format, chipbench's fields in `extra_info` and `chipbench`."""

    benchmarks: tuple[Benchmark, ...] = ()
    machine_info: MachineInfo | None = None
    commit_info: CommitInfo | None = None
    datetime: str | None = None
    """When the run was saved (UTC, ISO 8601)."""
    version: str | None = None
    """pytest-benchmark's file-format version."""
    chipbench: RunHeader | None = None
    """None for a plain pytest-benchmark file."""

    ORDER = ("machine_info", "commit_info", "benchmarks", "datetime", "version", "chipbench")

    @property
    def header(self) -> RunHeader:
        """chipbench's section, or an empty one for a plain pytest-benchmark file."""
        return self.chipbench if self.chipbench is not None else RunHeader()

    @property
    def errors(self) -> tuple[CaseError, ...]:
        return self.header.errors

    @property
    def recorded_machine_id(self) -> str | None:
        """The machine id as recorded (machine_info's, else the run header's)."""
        mi = self.machine_info.chipbench_machine_id if self.machine_info is not None else None
        return mi or self.header.machine_id

    def to_json(self) -> JSONObject:
        """The JSON document (NaN and infinity stored as null): what `files.save` writes."""
        out: JSONObject = wire.clean(super().to_json())
        return out


Document = ResultsDocument | Mapping[str, Any]
"""What the views and writers take: a typed document, or its JSON (made before the typed path, or by hand)."""


def as_document(doc: Document) -> ResultsDocument:
    """A typed document, from one or from its JSON (a document built before the typed path, or by hand)."""
    return doc if isinstance(doc, ResultsDocument) else ResultsDocument.from_json(doc)
