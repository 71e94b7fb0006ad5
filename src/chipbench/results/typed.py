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
    MachineInfo,
    PriceSeen,
    RunSummary,
)
from chipbench.results.model import Benchmark
from chipbench.results.wire import JSONObject, Record, emit, number, read


@dataclass(frozen=True)
class LoadAvg(Record):
    """The machine's 1-minute load average when the run started and when it was saved."""

    start: float | None = None
    end: float | None = None

    ORDER = ("start", "end")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LoadAvg:
        return cls(start=number(d.get("start")), end=number(d.get("end")), **read(d, cls.ORDER))

    def to_json(self) -> JSONObject:
        return emit([("start", self.start), ("end", self.end)], self)


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

    ORDER = ("schema_version", "version", "machine_id", "suite", "argv", "environment", "ceilings", "price",
             "errors", "interrupted", "load_avg_1m", "startup_to_first_result_s", "runs", "wall_s", "ab")  # fmt: skip
    ALWAYS = 10
    """The first ALWAYS keys are written even when null; the rest only when set."""

    def __post_init__(self) -> None:
        if self.schema_version < 1:
            raise ValueError("chipbench.schema_version must be a positive integer")

    @property
    def world_size(self) -> int:
        dist = self.environment.get("distributed")
        ws = dist.get("world_size", 1) if isinstance(dist, dict) else 1
        return ws if isinstance(ws, int) else 1

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunHeader:
        ceil, price, load, ab = (wire.opt_obj(d.get(k)) for k in ("ceilings", "price", "load_avg_1m", "ab"))
        runs = d.get("runs")
        return cls(
            schema_version=wire.integer(d.get("schema_version")) or 1, version=wire.text(d.get("version")),
            machine_id=wire.text(d.get("machine_id")), suite=wire.text(d.get("suite")),
            argv=wire.texts(d.get("argv")), environment=wire.obj(d.get("environment")),
            ceilings=CeilingsSeen.from_json(ceil) if ceil is not None else None,
            price=PriceSeen.from_json(price) if price is not None else None,
            errors=tuple(CaseError.from_json(e) for e in d.get("errors") or () if isinstance(e, dict)),
            interrupted=bool(d.get("interrupted")), load_avg_1m=LoadAvg.from_json(load) if load is not None else None,
            startup_to_first_result_s=number(d.get("startup_to_first_result_s")),
            runs=tuple(RunSummary.from_json(r) for r in runs if isinstance(r, dict)) if isinstance(runs, list) else None,
            wall_s=number(d.get("wall_s")), ab=ABSide.from_json(ab) if ab is not None else None,
            **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = wire.fields(self, self.ORDER)
        for k in ("ceilings", "price", "load_avg_1m", "ab"):
            values[k] = values[k].to_json() if values[k] is not None else None
        values["argv"], values["environment"] = list(self.argv), dict(self.environment)
        values["errors"] = [e.to_json() for e in self.errors]
        values["runs"] = [r.to_json() for r in self.runs] if self.runs is not None else None
        pairs = list(values.items())
        if self.key_order is None:
            pairs = pairs[: self.ALWAYS] + [(k, v) for k, v in pairs[self.ALWAYS :] if v is not None]
        return emit(pairs, self)


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

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ResultsDocument:
        """The typed document of a JSON one (checked by results.validate when it came from a file)."""
        mi, ci, cb = (wire.opt_obj(d.get(k)) for k in ("machine_info", "commit_info", "chipbench"))
        benchmarks = d.get("benchmarks")
        return cls(
            benchmarks=tuple(Benchmark.from_json(b) for b in benchmarks if isinstance(b, dict))
            if isinstance(benchmarks, list) else (),
            machine_info=MachineInfo.from_json(mi) if mi is not None else None,
            commit_info=CommitInfo.from_json(ci) if ci is not None else None,
            datetime=wire.text(d.get("datetime")), version=wire.text(d.get("version")),
            chipbench=RunHeader.from_json(cb) if cb is not None else None, **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        """The JSON document (NaN and infinity stored as null): what `files.save` writes."""
        values = wire.fields(self, self.ORDER)
        for k in ("machine_info", "commit_info", "chipbench"):
            values[k] = values[k].to_json() if values[k] is not None else None
        values["benchmarks"] = [b.to_json() for b in self.benchmarks]
        out: JSONObject = wire.clean(emit(list(values.items()), self))
        return out


def as_document(doc: ResultsDocument | Mapping[str, Any]) -> ResultsDocument:
    """A typed document, from one or from its JSON (a document built before the typed path, or by hand)."""
    return doc if isinstance(doc, ResultsDocument) else ResultsDocument.from_json(doc)
