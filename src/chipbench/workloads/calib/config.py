"""The ceiling microbenchmarks' configs and what they cost: a dense matmul and a large device copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


CopyKernel = Literal["copy", "add", "adamw"]
STREAMS = {"copy": 2, "add": 3, "adamw": 7}
"""Buffers of size_mib each kernel reads or writes per step (the bytes it is credited with)."""
BUFFERS = {"copy": 2, "add": 2, "adamw": 4}
"""Buffers of size_mib each kernel holds."""


@dataclass(frozen=True)
class CopyConfig:
    """Memory bandwidth over large buffers, counting the bytes read and written."""

    size_mib: int = 512
    """Size of each buffer in MiB."""
    dtype: DType = "fp32"
    """Element type (does not change the bytes moved)."""
    kernel: CopyKernel = "copy"
    """copy: dst.copy_(src), read + write. add: dst.add_(src) in place, 2 reads + write. adamw: one
    fused AdamW step over a buffer (weights, gradients and both moments read, three written back).
    A copy's destination is also read before it is written (write-allocate), a read not counted; the
    in-place kernels have none, and on CPUs the fused step's four streams draw more of the bandwidth
    than one or two: `chipbench calibrate` runs all three and keeps the best."""

    def __post_init__(self) -> None:
        check(self.size_mib > 0, "size_mib must be positive")
        check(self.kernel in STREAMS, f"kernel must be copy, add or adamw, got {self.kernel!r}")


def copy_describe(cfg: CopyConfig) -> Description:
    nbytes = cfg.size_mib * 2**20
    return Description(
        memory_bytes_estimate=BUFFERS[cfg.kernel] * nbytes,
        facts={"bytes_per_step": STREAMS[cfg.kernel] * float(nbytes)},
    )
