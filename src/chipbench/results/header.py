"""A results document, typed: the machine it ran on (`machine_info`), the commit (`commit_info`), the
benchmarks (results.model), and chipbench's run header (`chipbench`: machine id, suite, argv, environment,
ceilings, price, errors, interruption, timings, the runs of a sweep).

`ResultsDocument.from_json` is the one place a checked file becomes typed (`files.load_typed`), and
`ResultsDocument.to_json` the one place a document becomes JSON again (`files.save` writes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chipbench.results.wire import JSONObject, Record, emit


@dataclass(frozen=True)
class CpuInfo(Record):
    """pytest-benchmark's CPU description."""

    brand_raw: str | None = None
    """The CPU model name."""
    arch: str | None = None
    count: int | None = None
    """Logical cores."""


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

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("machine_info.device.count must be >= 1")


@dataclass(frozen=True)
class HostAllocator(Record):
    """The host memory allocator and whether chipbench fixed its thresholds (platform.allocator)."""

    allocator: str
    tuned: bool | None = None
    mmap_threshold_bytes: int | None = None
    trim_threshold_bytes: int | None = None

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


@dataclass(frozen=True)
class CeilingsSeen(Record):
    """The measured ceilings a run used (platform.ceilings.Ceilings as stored); absent rates: none measured."""

    matmul_tflops: Mapping[str, float] = field(default_factory=dict)
    """Dense matmul TFLOP/s per dtype."""
    copy_gbps: float | None = None
    """Device memory bandwidth (bytes read + written)."""
    measured_at: str | None = None
    disturbed: str | None = None
    """Why the machine was disturbed when these were measured (`calibrate --allow-busy`): the ceilings
    are low, and every share of them high; None: measured quiet (or before this was recorded)."""

    OMIT_NONE = ("disturbed",)


@dataclass(frozen=True)
class PriceSeen(Record):
    """What the machine cost, as the user said (core.price.Price as stored)."""

    per_hour_usd: float | None = None
    per_kwh_usd: float | None = None
    source: str | None = None
    date: str | None = None


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

    ABSENT: ClassVar[Mapping[str, Any]] = {"world_size": 1}
    OMIT_NONE = ("start_failed",)

    def to_json(self) -> JSONObject:
        """A run that did not start has no layout and no counts: its size and why, as it always was."""
        if self.key_order is None and self.start_failed is not None:
            return emit([("world_size", self.world_size), ("start_failed", self.start_failed)], self)
        return super().to_json()


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

    ABSENT: ClassVar[Mapping[str, Any]] = {"confidence": 0.95}


@dataclass(frozen=True)
class ProbePass(Record):
    """One pass of the host probe (at the run's start or its end): the rates its two cases ran at."""

    matmul_gflops: float | None = None
    """The probe's matmul, GFLOP/s (its median step); None: the case failed."""
    copy_gbps: float | None = None
    """The probe's copy, GB/s read + written (its median step); None: the case failed."""
    disturbed: bool | None = None
    """Another process held the cores while it was measured (what makes a host slow for a while)."""

    OMIT_NONE = ("disturbed",)


@dataclass(frozen=True)
class HostProbe(Record):
    """The run's own drift reference: a short `calib.matmul` and `calib.copy` on the run's device at its
    start and its end (execution.probe). The same probe of two runs tells how much the host itself moved
    between them (gate.drift), beside what the cases moved."""

    matmul: str
    """The matmul's case name (its sizes and dtype)."""
    copy: str
    """The copy's case name."""
    version_hashes: tuple[str, ...] = ()
    """The two cases' version hashes: probes compare only where both agree."""
    budget_s: float = 0.0
    """Each measurement's timed-round budget."""
    start: ProbePass | None = None
    """Before the first case; None: it failed."""
    end: ProbePass | None = None
    """After the last case; None: it failed, or the run was interrupted."""
    wall_s: float | None = None
    """The seconds both passes took, set-up included (what the probe added to the run)."""

    def describe(self) -> str:
        """One line: `host probe: matmul 131 GFLOP/s, copy 29.1 GB/s (start); 128, 28.7 (end); 0.9 s`."""
        parts = []
        for when, p in (("start", self.start), ("end", self.end)):
            if p is None:
                continue
            mm = f"{p.matmul_gflops:.4g} GFLOP/s" if p.matmul_gflops is not None else "failed"
            cp = f"{p.copy_gbps:.4g} GB/s" if p.copy_gbps is not None else "failed"
            busy = ", disturbed" if p.disturbed else ""
            parts.append(f"{when}: matmul {mm}, copy {cp}{busy}")
        took = f" ({self.wall_s:.1f} s)" if self.wall_s is not None else ""
        return f"host probe{took}: " + ("; ".join(parts) if parts else "no figure (both passes failed)")
