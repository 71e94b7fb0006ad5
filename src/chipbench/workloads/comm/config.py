"""The collectives, their config, and nccl-tests' bus-bandwidth factors."""

from __future__ import annotations

from dataclasses import dataclass

from chipbench.core.config import check
from chipbench.core.contract import Description
from chipbench.core.dtypes import BYTES_PER_ELEMENT, ConcreteDType

OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast")

BUS_FACTOR_TEXT = {
    "all_reduce": "2(n-1)/n",
    "all_gather": "(n-1)/n",
    "reduce_scatter": "(n-1)/n",
    "all_to_all": "(n-1)/n",
    "broadcast": "1",
}


def bus_factor(op: str, n: int) -> float:
    """nccl-tests' correction from algorithm to bus bandwidth for `op` over `n` ranks."""
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    if op == "broadcast":
        return 1.0
    raise ValueError(f"unknown collective {op!r}")


@dataclass(frozen=True)
class CommConfig:
    """One collective at one message size."""

    size_bytes: int = 1 << 20
    """Message size S as nccl-tests counts it (see the module docstring); rounded down to a multiple of
    the element size times the number of ranks."""
    dtype: ConcreteDType = "fp32"
    """Element type of the buffers (and of the reduction)."""
    check_values: bool = True
    """Check the collective's result for value once before timing."""

    def __post_init__(self) -> None:
        check(
            self.size_bytes >= BYTES_PER_ELEMENT.get(self.dtype, 4),
            f"size_bytes must be >= one element, got {self.size_bytes}",
        )
        check(
            self.dtype in BYTES_PER_ELEMENT,
            f"dtype must be one of {', '.join(BYTES_PER_ELEMENT)}, got {self.dtype!r}",
        )


def element_count(cfg: CommConfig, world: int) -> int:
    """Elements in S, a multiple of the world size so every rank gets an equal chunk."""
    return max(world, (cfg.size_bytes // BYTES_PER_ELEMENT[cfg.dtype]) // world * world)


def describe(cfg: CommConfig) -> Description:
    # The largest of a collective's buffers is S; with the input or chunk beside it, at most 2S.
    return Description(
        memory_bytes_estimate=2 * cfg.size_bytes,
        facts={
            "size_bytes": cfg.size_bytes,
            "bytes_convention": "nccl-tests: algbw = S / t, busbw = algbw x bus factor",
        },
    )
