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
from typing import Any

from chipbench.core.contract import Work
from chipbench.results import wire
from chipbench.results.measurement import Measurement
from chipbench.results.roofline import Roofline
from chipbench.results.wire import JSONObject, Record, emit, number, read


@dataclass(frozen=True)
class Stats(Record):
    """pytest-benchmark's `stats` of one benchmark (seconds per step), plus chipbench's percentiles."""

    data: tuple[float, ...] = ()
    """The raw samples: seconds per step, each finite and > 0."""
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
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    median_ci95: tuple[float | None, float | None] | None = None
    """The median's 95% confidence interval (chipbench's files; a bound is None with too few samples)."""

    def __post_init__(self) -> None:
        if any(not (math.isfinite(v) and v > 0) for v in self.data):
            raise ValueError("stats.data must hold finite positive seconds")

    FLOATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "ops",
              "total", "p50", "p90", "p99")  # fmt: skip
    INTS = ("rounds", "iqr_outliers", "stddev_outliers", "iterations")
    ORDER = ("min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3", "iqr_outliers",
             "stddev_outliers", "outliers", "ld15iqr", "hd15iqr", "ops", "total", "iterations", "data", "p50",
             "p90", "p99", "median_ci95")  # fmt: skip

    @property
    def median_s(self) -> float | None:
        """The median, from the samples where the file does not give it."""
        if self.median is not None:
            return self.median
        return sorted(self.data)[len(self.data) // 2] if self.data else None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Stats:
        ci = d.get("median_ci95")
        pair = (number(ci[0]), number(ci[1])) if isinstance(ci, list) and len(ci) == 2 else None
        return cls(
            data=wire.numbers(d.get("data")) or (),
            **wire.each(number, d, cls.FLOATS),
            **wire.each(wire.integer, d, cls.INTS),
            outliers=wire.text(d.get("outliers")),
            median_ci95=pair,
            **read(d, cls.ORDER),
        )

    def to_json(self) -> JSONObject:
        values = wire.fields(self, self.ORDER)
        values["data"] = list(self.data)
        values["median_ci95"] = list(self.median_ci95) if self.median_ci95 is not None else None
        return emit(list(values.items()), self)


@dataclass(frozen=True)
class WorkRecord(Record):
    """What one rank's step does, as recorded (core.contract.Work): the counts derived metrics divide."""

    flops: float | None = None
    bytes: float | None = None
    samples: int | None = None
    tokens: int | None = None
    model_flops: bool = False
    """`flops` counts a whole model's FLOPs: the share of peak is reported as MFU too."""
    flop_convention: str | None = None
    bytes_convention: str | None = None
    extra_bytes: Mapping[str, float] = field(default_factory=dict)
    """Other byte counts per step under named conventions (each yields `gbps_<name>`)."""
    counts: Mapping[str, float] = field(default_factory=dict)
    """Other things a step processes, by plural name (each yields `<name>_per_s`)."""

    ORDER = ("flops", "bytes", "samples", "tokens", "model_flops", "flop_convention", "bytes_convention",
             "extra_bytes", "counts")  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("flops", "bytes", "samples", "tokens"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"work.{name} must be >= 0")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> WorkRecord:
        return cls(
            flops=number(d.get("flops")), bytes=number(d.get("bytes")),
            samples=wire.integer(d.get("samples")), tokens=wire.integer(d.get("tokens")),
            model_flops=bool(d.get("model_flops")), flop_convention=wire.text(d.get("flop_convention")),
            bytes_convention=wire.text(d.get("bytes_convention")), extra_bytes=wire.number_map(d.get("extra_bytes")),
            counts=wire.number_map(d.get("counts")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = wire.fields(self, self.ORDER)
        values["extra_bytes"], values["counts"] = dict(self.extra_bytes), dict(self.counts)
        return emit(list(values.items()), self)

    def as_work(self) -> Work:
        return Work(
            flops=self.flops, bytes=self.bytes, samples=self.samples, tokens=self.tokens,
            model_flops=self.model_flops, flop_convention=self.flop_convention,
            bytes_convention=self.bytes_convention, extra_bytes=dict(self.extra_bytes), counts=dict(self.counts),
        )  # fmt: skip


@dataclass(frozen=True)
class Scaling(Record):
    """How an N-process result scales against its one-process twin in the same document."""

    baseline: str
    """The one-process benchmark's name."""
    metric: str
    """The throughput compared (samples_per_s, tokens_per_s, tflops, gbps)."""
    world_size: int

    ORDER = ("baseline", "metric", "world_size")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Scaling:
        return cls(
            baseline=wire.text(d.get("baseline")) or "?", metric=wire.text(d.get("metric")) or "?",
            world_size=wire.integer(d.get("world_size")) or 1, **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        return emit([(k, getattr(self, k)) for k in self.ORDER], self)


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

    ORDER = ("benchmark", "version_hash", "config", "requested", "device", "world_size", "dtype", "metrics",
             "unavailable", "flags", "disturbed", "work", "info", "roofline", "measurement", "scaling")  # fmt: skip

    def __post_init__(self) -> None:
        if self.world_size is not None and self.world_size < 1:
            raise ValueError("extra_info.world_size must be >= 1")

    @property
    def world(self) -> int:
        """Processes the case ran on (1 when not recorded)."""
        return self.world_size or 1

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ExtraInfo:
        work, roof, m, sc = (wire.opt_obj(d.get(k)) for k in ("work", "roofline", "measurement", "scaling"))
        return cls(
            benchmark=wire.text(d.get("benchmark")), version_hash=wire.text(d.get("version_hash")),
            config=wire.obj(d.get("config")), requested=wire.opt_obj(d.get("requested")),
            device=wire.text(d.get("device")), world_size=wire.integer(d.get("world_size")),
            dtype=wire.text(d.get("dtype")), metrics=wire.number_map(d.get("metrics")),
            unavailable=wire.text_map(d.get("unavailable")), flags=wire.texts(d.get("flags")),
            disturbed=wire.text(d.get("disturbed")), work=WorkRecord.from_json(work) if work is not None else None,
            info=wire.obj(d.get("info")), roofline=Roofline.from_json(roof) if roof is not None else None,
            measurement=Measurement.from_json(m) if m is not None else None,
            scaling=Scaling.from_json(sc) if sc is not None else None, **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = wire.fields(self, self.ORDER)
        for k in ("work", "roofline", "measurement", "scaling"):
            values[k] = values[k].to_json() if values[k] is not None else None
        for k in ("config", "metrics", "unavailable", "info"):
            values[k] = dict(values[k])
        values["requested"] = dict(self.requested) if self.requested is not None else None
        values["flags"] = list(self.flags)
        pairs = list(values.items())
        if self.key_order is None and self.scaling is None:  # only a sweep's N-process results have one
            pairs = pairs[:-1]
        return emit(pairs, self)


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

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Benchmark:
        return cls(
            name=wire.text(d.get("name")) or "?", group=wire.text(d.get("group")),
            fullname=wire.text(d.get("fullname")), params=wire.opt_obj(d.get("params")),
            param=wire.text(d.get("param")), extra_info=ExtraInfo.from_json(wire.obj(d.get("extra_info"))),
            options=wire.obj(d.get("options")), stats=Stats.from_json(wire.obj(d.get("stats"))),
            **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = wire.fields(self, self.ORDER)
        values["params"] = dict(self.params) if self.params is not None else None
        values["extra_info"], values["stats"] = self.extra_info.to_json(), self.stats.to_json()
        values["options"] = dict(self.options)
        return emit(list(values.items()), self)
