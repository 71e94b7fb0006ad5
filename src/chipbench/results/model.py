"""What one case's result holds, typed: its statistics, derived metrics (and why any is absent), flags,
work counts, info, the measurement and its extras, and its roofline breakdown.

Built from JSON in one place (each record's `from_json`, called by `header.ResultsDocument.from_json`
after the strict reader has checked the file) and written back to JSON in one place (`to_json`). Keys a
record does not model are kept (`wire.Record`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chipbench.core.contract import Work
from chipbench.results.measurement import Measurement
from chipbench.results.roofline import Roofline
from chipbench.results.wire import Record


@dataclass(frozen=True)
class Stats(Record):
    """pytest-benchmark's `stats` of one benchmark (seconds per step), plus chipbench's percentiles."""

    min: float | None = None
    max: float | None = None
    mean: float | None = None
    stddev: float | None = None
    rounds: int | None = None
    median: float | None = None
    iqr: float | None = None
    q1: float | None = None
    q3: float | None = None
    iqr_outliers: int | None = None
    stddev_outliers: int | None = None
    outliers: str | None = None
    ld15iqr: float | None = None
    hd15iqr: float | None = None
    ops: float | None = None
    total: float | None = None
    iterations: int | None = None
    data: tuple[float, ...] = ()
    """The raw samples: seconds per step, each finite and > 0."""
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    median_ci95: tuple[float | None, float | None] | None = None
    """The median's 95% confidence interval (chipbench's files; a bound is None with too few samples)."""

    def __post_init__(self) -> None:
        if any(not (math.isfinite(v) and v > 0) for v in self.data):
            raise ValueError("stats.data must hold finite positive seconds")

    @property
    def median_s(self) -> float | None:
        """The median, from the samples where the file does not give it."""
        if self.median is not None:
            return self.median
        return sorted(self.data)[len(self.data) // 2] if self.data else None


@dataclass(frozen=True)
class WorkRecord(Work, Record):
    """What one rank's step does, as recorded: core.contract.Work (the counts derived metrics divide) with
    the keys a file kept."""

    def __post_init__(self) -> None:
        for name in ("flops", "bytes", "samples", "tokens"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"work.{name} must be >= 0")


@dataclass(frozen=True)
class Scaling(Record):
    """How an N-process result scales against its one-process twin in the same document."""

    baseline: str
    """The one-process benchmark's name."""
    metric: str
    """The throughput compared (samples_per_s, tokens_per_s, tflops, gbps)."""
    world_size: int

    ABSENT: ClassVar[Mapping[str, Any]] = {"world_size": 1}


@dataclass(frozen=True)
class ExtraInfo(Record):
    """chipbench's fields of one benchmark (pytest-benchmark's `extra_info`); a plain pytest-benchmark
    file leaves them all absent."""

    benchmark: str | None = None
    """The benchmark's registered name (e.g. `dlrm.train_step`)."""
    version_hash: str | None = None
    """Hash of the timed code and its config: results compare only at equal hashes."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The config as run (fitted values included): the benchmark's own fields."""
    requested: Mapping[str, Any] | None = None
    """What was asked before fitting to the device (dtype=auto, max_rows=-1); None in files from before
    it was recorded."""
    device: str | None = None
    """Device kind: cpu, cuda, rocm, mps, xpu."""
    world_size: int | None = None
    dtype: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Derived metrics, units in their names (results.metrics)."""
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Metric name -> why it cannot be known here."""
    flags: tuple[str, ...] = ()
    """Warnings about the figures (a share above 100%)."""
    disturbed: str | None = None
    """Why the machine was disturbed while this was measured; the gate says "rerun" instead of judging."""
    work: WorkRecord | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    """Facts about how the case ran (backend, shapes, caps applied, its parts), as the worker said."""
    roofline: Roofline | None = None
    measurement: Measurement | None = None
    scaling: Scaling | None = None

    OMIT_NONE = ("scaling",)
    """Only a sweep's N-process results have one."""

    def __post_init__(self) -> None:
        if self.world_size is not None and self.world_size < 1:
            raise ValueError("extra_info.world_size must be >= 1")

    @property
    def world(self) -> int:
        """Processes the case ran on (1 when not recorded)."""
        return self.world_size or 1


@dataclass(frozen=True)
class Benchmark(Record):
    """One benchmark's result in a results file (pytest-benchmark's entry, chipbench's in extra_info)."""

    name: str
    """Unique in its file: the case's name, with `@worldN` for an N-process run."""
    group: str | None = None
    fullname: str | None = None
    params: Mapping[str, Any] | None = None
    """The overrides asked for (pytest-benchmark's params)."""
    param: str | None = None
    extra_info: ExtraInfo = field(default_factory=ExtraInfo)
    options: Mapping[str, Any] = field(default_factory=dict)
    """pytest-benchmark's timing options, as written (chipbench never reads them)."""
    stats: Stats = field(default_factory=Stats)

    ORDER = ("group", "name", "fullname", "params", "param", "extra_info", "options", "stats")

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a benchmark's name must not be empty")

    @property
    def bench(self) -> str:
        """The registered benchmark name: recorded, else the group, else the name without `@worldN`."""
        return self.extra_info.benchmark or self.group or self.name.rsplit("@world", 1)[0]

    @property
    def samples(self) -> tuple[float, ...]:
        return self.stats.data
