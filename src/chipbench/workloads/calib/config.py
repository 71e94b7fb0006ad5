"""The ceiling microbenchmarks' configs and what they cost: a dense matmul and a large device copy."""

from __future__ import annotations

from dataclasses import dataclass

from chipbench.core.config import check
from chipbench.core.contract import Description
from chipbench.core.dtypes import DType, bytes_per_element


@dataclass(frozen=True)
class MatmulConfig:
    """C = A @ B with A (m, k) and B (k, n), random normal inputs."""

    m: int = 2048
    """Rows of A and C."""
    n: int = 2048
    """Columns of B and C."""
    k: int = 2048
    """Inner dimension."""
    dtype: DType = "auto"
    """Operand dtype; auto picks what the device runs well."""
    buffers: int = 2
    """Input pairs rotated between steps so repeated steps do not measure a warm cache alone."""

    def __post_init__(self) -> None:
        check(min(self.m, self.n, self.k) > 0, "m, n, k must be positive")
        check(self.buffers >= 1, "buffers must be >= 1")


def matmul_describe(cfg: MatmulConfig) -> Description:
    b = bytes_per_element(cfg.dtype)
    return Description(
        memory_bytes_estimate=b * (cfg.buffers * (cfg.m * cfg.k + cfg.k * cfg.n) + cfg.m * cfg.n),
        facts={"flops_per_step": 2.0 * cfg.m * cfg.n * cfg.k},
    )


@dataclass(frozen=True)
class CopyConfig:
    """dst.copy_(src) over a large buffer: memory bandwidth counting bytes read + written."""

    size_mib: int = 512
    """Size of the source buffer in MiB."""
    dtype: DType = "fp32"
    """Element type (does not change the bytes moved)."""

    def __post_init__(self) -> None:
        check(self.size_mib > 0, "size_mib must be positive")


def copy_describe(cfg: CopyConfig) -> Description:
    nbytes = cfg.size_mib * 2**20
    return Description(memory_bytes_estimate=2 * nbytes, facts={"bytes_per_step": 2.0 * nbytes})
