"""The types a workload and the harness exchange: what a step does (`Work`), a benchmark ready to time
(`Prepared`), where it runs (`RunContext`), and what `describe` and `plan` tell without allocating."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chipbench.core.wire import Info


@dataclass(frozen=True)
class Work:
    """What one step does, for derived metrics. None means 'not meaningful for this benchmark'."""

    flops: float | None = None
    """Floating-point operations per step (convention in `flop_convention`)."""
    bytes: float | None = None
    """Bytes moved through device memory per step (convention in `bytes_convention`)."""
    samples: int | None = None
    """Samples (e.g. batch rows) per step, for samples_per_s."""
    tokens: int | None = None
    """Tokens per step, for tokens_per_s."""
    model_flops: bool = False
    """True when `flops` counts a whole model's FLOPs, so the share of peak is reported as MFU too."""
    flop_convention: str | None = None
    bytes_convention: str | None = None
    extra_bytes: dict[str, float] = field(default_factory=dict)
    """Other byte counts per step under other named conventions; each yields `gbps_<name>`."""
    counts: dict[str, float] = field(default_factory=dict)
    """Other things a step processes, by plural name (e.g. candidates); each yields `<name>_per_s`."""


@dataclass
class Prepared:
    """A benchmark ready to time: inputs already generated on the device."""

    step: Callable[[], Any]
    work: Work
    info: Info = field(default_factory=dict)
    """Facts about how it ran (backend chosen, shapes, caps applied); stored in extra_info."""
    after: Callable[[], Info] | None = None
    """Optional extra measurements taken after the timed rounds (e.g. a time breakdown)."""


@dataclass(frozen=True)
class RunContext:
    """Where and how a benchmark runs."""

    device: str
    """Device kind: cpu, cuda, rocm, mps, xpu."""
    torch_device: str
    seed: int = 0
    free_memory_bytes: int | None = None
    rank: int = 0
    """This process's global rank; 0 when not distributed."""
    world_size: int = 1
    """Processes in the default process group (initialized by the caller when > 1)."""
    local_rank: int = 0
    """Rank on this node: picks the accelerator (cuda:<local_rank>)."""
    dist_backend: str | None = None
    """nccl, gloo or xccl when distributed; None otherwise."""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@dataclass(frozen=True)
class Description:
    """What `chipbench describe` shows of one config, computed without allocating."""

    memory_bytes_estimate: int | None
    """Bytes one process needs (checked against free memory before the case runs); None = unknown."""
    facts: Info = field(default_factory=dict)
    """Everything else, for people: parameter counts, FLOPs and bytes per step, conventions."""

    def as_dict(self) -> dict[str, Any]:
        return {**self.facts, "memory_bytes_estimate": self.memory_bytes_estimate}


@dataclass(frozen=True)
class Layout:
    """How a config is laid out over several processes (`describe --nproc-per-node N`)."""

    memory_bytes_per_rank_estimate: int | None
    """Bytes the busiest process needs; None = the one-process estimate applies to every rank."""
    facts: Info = field(default_factory=dict)
    """Parallelism, batch split, sharding plan and the per-rank memory breakdown, for people."""

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.facts)
        if self.memory_bytes_per_rank_estimate is not None:
            out["memory_bytes_per_rank_estimate"] = self.memory_bytes_per_rank_estimate
        return out
