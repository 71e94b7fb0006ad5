"""A results document, typed: the machine it ran on (`machine_info`), the commit (`commit_info`), the
benchmarks (results.model), and chipbench's run header (`chipbench`: machine id, suite, argv, environment,
ceilings, price, errors, interruption, timings, the runs of a sweep).

`ResultsDocument.from_json` is the one place a checked file becomes typed (`files.load_typed`), and
`ResultsDocument.to_json` the one place a document becomes JSON again (`files.save` writes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chipbench.results import wire
from chipbench.results.wire import JSONObject, Record, emit, number, read


def _fields(rec: Any, order: tuple[str, ...]) -> list[tuple[str, Any]]:
    return [(k, getattr(rec, k)) for k in order]


@dataclass(frozen=True)
class CpuInfo(Record):
    """pytest-benchmark's CPU description."""

    brand_raw: str | None = None
    """The CPU model name."""
    arch: str | None = None
    count: int | None = None
    """Logical cores."""

    ORDER = ("brand_raw", "arch", "count")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CpuInfo:
        return cls(
            brand_raw=wire.text(d.get("brand_raw")), arch=wire.text(d.get("arch")),
            count=wire.integer(d.get("count")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        return emit(_fields(self, self.ORDER), self)


@dataclass(frozen=True)
class DeviceInfo(Record):
    """The device the run used, as the environment described it (platform.hardware)."""

    name: str | None = None
    """Device model, e.g. `NVIDIA H100 80GB HBM3`, or the CPU's."""
    kind: str | None = None
    """cpu, cuda, rocm, mps, xpu."""
    count: int | None = None
    memory_bytes: int | None = None
    driver: str | None = None
    runtime: str | None = None
    capability: str | None = None

    ORDER = ("name", "kind", "count", "memory_bytes", "driver", "runtime", "capability")

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("machine_info.device.count must be >= 1")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DeviceInfo:
        texts = ("name", "kind", "driver", "runtime", "capability")
        return cls(
            **wire.each(wire.text, d, texts), count=wire.integer(d.get("count")),
            memory_bytes=wire.integer(d.get("memory_bytes")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        return emit(_fields(self, self.ORDER), self)


@dataclass(frozen=True)
class HostAllocator(Record):
    """The host memory allocator and whether chipbench fixed its thresholds (platform.allocator)."""

    allocator: str
    tuned: bool | None = None
    mmap_threshold_bytes: int | None = None
    trim_threshold_bytes: int | None = None

    ORDER = ("allocator", "tuned", "mmap_threshold_bytes", "trim_threshold_bytes")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HostAllocator:
        return cls(
            allocator=wire.text(d.get("allocator")) or "?", tuned=wire.flag(d.get("tuned")),
            mmap_threshold_bytes=wire.integer(d.get("mmap_threshold_bytes")),
            trim_threshold_bytes=wire.integer(d.get("trim_threshold_bytes")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        return emit(_fields(self, self.ORDER), self)

    def describe(self) -> str:
        """`glibc, its defaults` or `glibc, thresholds fixed (mmap N, trim M)`."""
        how = "its defaults"
        if self.tuned:
            how = f"thresholds fixed (mmap {self.mmap_threshold_bytes}, trim {self.trim_threshold_bytes})"
        return f"{self.allocator}, {how}"


@dataclass(frozen=True)
class MachineInfo(Record):
    """pytest-benchmark's machine_info plus chipbench's device and software stack."""

    node: str | None = None
    processor: str | None = None
    machine: str | None = None
    """The instruction set (x86_64, aarch64)."""
    python_compiler: str | None = None
    python_implementation: str | None = None
    python_implementation_version: str | None = None
    python_version: str | None = None
    python_build: tuple[str, ...] = ()
    release: str | None = None
    system: str | None = None
    cpu: CpuInfo | None = None
    chipbench_machine_id: str | None = None
    device: DeviceInfo | None = None
    packages: Mapping[str, str | None] = field(default_factory=dict)
    """Package -> version (None: not installed): torch, torchrec, fbgemm."""
    host_allocator: HostAllocator | None = None

    TEXTS = ("node", "processor", "machine", "python_compiler", "python_implementation",
             "python_implementation_version", "python_version", "release", "system", "chipbench_machine_id")  # fmt: skip
    ORDER = ("node", "processor", "machine", "python_compiler", "python_implementation",
             "python_implementation_version", "python_version", "python_build", "release", "system", "cpu",
             "chipbench_machine_id", "device", "packages", "host_allocator")  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MachineInfo:
        cpu, dev, alloc = (wire.opt_obj(d.get(k)) for k in ("cpu", "device", "host_allocator"))
        packages = {
            str(k): v for k, v in wire.obj(d.get("packages")).items() if v is None or isinstance(v, str)
        }
        return cls(
            **wire.each(wire.text, d, cls.TEXTS), python_build=wire.texts(d.get("python_build")),
            cpu=CpuInfo.from_json(cpu) if cpu is not None else None,
            device=DeviceInfo.from_json(dev) if dev is not None else None, packages=packages,
            host_allocator=HostAllocator.from_json(alloc) if alloc is not None else None, **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = dict(_fields(self, self.ORDER))
        for k in ("cpu", "device", "host_allocator"):
            values[k] = values[k].to_json() if values[k] is not None else None
        values["python_build"], values["packages"] = list(self.python_build), dict(self.packages)
        return emit(list(values.items()), self)

    def package(self, name: str) -> str | None:
        return self.packages.get(name)


@dataclass(frozen=True)
class CommitInfo(Record):
    """The git commit of the chipbench that ran (platform.hardware.git_commit)."""

    id: str | None = None
    time: str | None = None
    """Commit time, ISO 8601."""
    author_time: str | None = None
    dirty: bool | None = None
    project: str | None = None
    branch: str | None = None

    ORDER = ("id", "time", "author_time", "dirty", "project", "branch")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CommitInfo:
        texts = ("id", "time", "author_time", "project", "branch")
        return cls(**wire.each(wire.text, d, texts), dirty=wire.flag(d.get("dirty")), **read(d, cls.ORDER))

    def to_json(self) -> JSONObject:
        return emit(_fields(self, self.ORDER), self)


@dataclass(frozen=True)
class CaseError(Record):
    """A case that failed: no measurement, the reason instead."""

    name: str
    world_size: int | None = None
    group: str | None = None
    params: Mapping[str, Any] | None = None
    error_type: str = "error"
    """crash, timeout, oom, does_not_fit, start_failed, ..."""
    message: str = ""
    traceback: str | None = None
    wall_s: float | None = None

    ORDER = ("name", "world_size", "group", "params", "error_type", "message", "traceback", "wall_s")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CaseError:
        return cls(
            name=wire.text(d.get("name")) or "?", world_size=wire.integer(d.get("world_size")),
            group=wire.text(d.get("group")), params=wire.opt_obj(d.get("params")),
            error_type=wire.text(d.get("error_type")) or "error", message=wire.text(d.get("message")) or "",
            traceback=wire.text(d.get("traceback")), wall_s=number(d.get("wall_s")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = dict(_fields(self, self.ORDER))
        values["params"] = dict(self.params) if self.params is not None else None
        return emit(list(values.items()), self)


@dataclass(frozen=True)
class CeilingsSeen(Record):
    """The measured ceilings a run used (platform.ceilings.Ceilings as stored); absent rates: none measured."""

    matmul_tflops: Mapping[str, float] = field(default_factory=dict)
    """Dense matmul TFLOP/s per dtype."""
    copy_gbps: float | None = None
    """Device memory bandwidth (bytes read + written)."""
    measured_at: str | None = None

    ORDER = ("matmul_tflops", "copy_gbps", "measured_at")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CeilingsSeen:
        return cls(
            matmul_tflops=wire.number_map(d.get("matmul_tflops")), copy_gbps=number(d.get("copy_gbps")),
            measured_at=wire.text(d.get("measured_at")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = dict(_fields(self, self.ORDER))
        values["matmul_tflops"] = dict(self.matmul_tflops)
        return emit(list(values.items()), self)


@dataclass(frozen=True)
class PriceSeen(Record):
    """What the machine cost, as the user said (core.price.Price as stored)."""

    per_hour_usd: float | None = None
    per_kwh_usd: float | None = None
    source: str | None = None
    date: str | None = None

    ORDER = ("per_hour_usd", "per_kwh_usd", "source", "date")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PriceSeen:
        return cls(
            per_hour_usd=number(d.get("per_hour_usd")), per_kwh_usd=number(d.get("per_kwh_usd")),
            source=wire.text(d.get("source")), date=wire.text(d.get("date")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        return emit(_fields(self, self.ORDER), self)


@dataclass(frozen=True)
class RunSummary(Record):
    """One run of a sweep (several process counts in one document)."""

    world_size: int
    distributed: Mapping[str, Any] | None = None
    """The run's process layout (platform: world size, nodes, backend), as recorded."""
    benchmarks: int | None = None
    """Benchmarks it finished."""
    errors: int | None = None
    start_failed: str | None = None
    """Why its processes did not start (then it has no counts)."""

    ORDER = ("world_size", "distributed", "benchmarks", "errors", "start_failed")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunSummary:
        return cls(
            world_size=wire.integer(d.get("world_size")) or 1, distributed=wire.opt_obj(d.get("distributed")),
            benchmarks=wire.integer(d.get("benchmarks")), errors=wire.integer(d.get("errors")),
            start_failed=wire.text(d.get("start_failed")), **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        values = dict(_fields(self, self.ORDER))
        values["distributed"] = dict(self.distributed) if self.distributed is not None else None
        pairs = list(values.items())
        if self.key_order is None:  # built in code: a run's counts, or why it did not start
            pairs = pairs[:4] if self.start_failed is None else [pairs[0], pairs[4]]
        return emit(pairs, self)


@dataclass(frozen=True)
class ABSide(Record):
    """Which side of an interleaved `chipbench ab` a document is, and how many rounds it ran."""

    side: str
    """A or B."""
    python: str
    rounds: int
    max_rounds: int
    min_rounds: int | None
    confidence: float
    """Of each look's intervals (0.95 with one look)."""

    ORDER = ("side", "python", "rounds", "max_rounds", "min_rounds", "confidence")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ABSide:
        return cls(
            side=wire.text(d.get("side")) or "?", python=wire.text(d.get("python")) or "?",
            rounds=wire.integer(d.get("rounds")) or 0, max_rounds=wire.integer(d.get("max_rounds")) or 0,
            min_rounds=wire.integer(d.get("min_rounds")), confidence=number(d.get("confidence")) or 0.95,
            **read(d, cls.ORDER),
        )  # fmt: skip

    def to_json(self) -> JSONObject:
        return emit(_fields(self, self.ORDER), self)
