"""Ceiling microbenchmarks: dense matmul and a large device copy.

`chipbench calibrate` runs these through the same engine as every benchmark and stores the results as
this machine's measured ceilings, so every other benchmark can report its share of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipbench.core.config import check
from chipbench.core.contract import Description, Prepared, RunContext, Work
from chipbench.core.dtypes import DType, bytes_per_element
from chipbench.core.registry import Benchmark, register
from chipbench.platform.device import torch_dtype


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


def _matmul_describe(cfg: MatmulConfig) -> Description:
    b = bytes_per_element(cfg.dtype)
    return Description(
        memory_bytes_estimate=b * (cfg.buffers * (cfg.m * cfg.k + cfg.k * cfg.n) + cfg.m * cfg.n),
        facts={"flops_per_step": 2.0 * cfg.m * cfg.n * cfg.k},
    )


def _matmul_setup(cfg: MatmulConfig, ctx: RunContext) -> Prepared:
    import torch

    dt = torch_dtype(cfg.dtype)
    gen = torch.Generator(device="cpu").manual_seed(ctx.seed)
    pairs = [
        (
            torch.randn(cfg.m, cfg.k, generator=gen, dtype=dt).to(ctx.torch_device),
            torch.randn(cfg.k, cfg.n, generator=gen, dtype=dt).to(ctx.torch_device),
        )
        for _ in range(cfg.buffers)
    ]
    out = torch.empty(cfg.m, cfg.n, dtype=dt, device=ctx.torch_device)
    state = {"i": 0}

    def step() -> None:
        a, b = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        torch.mm(a, b, out=out)

    b = bytes_per_element(cfg.dtype)
    return Prepared(
        step=step,
        work=Work(
            flops=2.0 * cfg.m * cfg.n * cfg.k,
            bytes=float(b * (cfg.m * cfg.k + cfg.k * cfg.n + cfg.m * cfg.n)),
            flop_convention="2*m*n*k",
            bytes_convention="A and B read once, C written once",
        ),
        info={"tf32": bool(torch.backends.cuda.matmul.allow_tf32) if ctx.device == "cuda" else False},
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


def _copy_describe(cfg: CopyConfig) -> Description:
    nbytes = cfg.size_mib * 2**20
    return Description(memory_bytes_estimate=2 * nbytes, facts={"bytes_per_step": 2.0 * nbytes})


def _copy_setup(cfg: CopyConfig, ctx: RunContext) -> Prepared:
    import torch

    dt = torch_dtype("fp32" if cfg.dtype == "auto" else cfg.dtype)
    numel = cfg.size_mib * 2**20 // bytes_per_element(cfg.dtype)
    src = torch.rand(numel, dtype=dt, device=ctx.torch_device)  # random, never zeros
    dst = torch.empty_like(src)
    dst.copy_(src)  # touch every page before timing
    nbytes = src.numel() * src.element_size()

    def step() -> None:
        dst.copy_(src)

    return Prepared(
        step=step,
        work=Work(bytes=2.0 * nbytes, bytes_convention="read + write"),
        info={"bytes_per_buffer": nbytes},
    )


MATMUL = register(
    Benchmark(
        name="calib.matmul",
        doc="Dense matrix product on random data (the FLOP/s ceiling).",
        config_cls=MatmulConfig,
        setup=_matmul_setup,
        describe=_matmul_describe,
        suites={
            "smoke": [{"m": 256, "n": 256, "k": 256, "dtype": "fp32"}],
            "default": [{"dtype": "auto"}],
            "full": [{"dtype": d, "m": s, "n": s, "k": s} for d in ("fp32", "bf16") for s in (1024, 4096)],
        },
    )
)

COPY = register(
    Benchmark(
        name="calib.copy",
        doc="Large device-to-device copy (the memory bandwidth ceiling, read + write).",
        config_cls=CopyConfig,
        setup=_copy_setup,
        describe=_copy_describe,
        suites={
            "smoke": [{"size_mib": 16}],
            "default": [{"size_mib": 512}],
            "full": [{"size_mib": 64}, {"size_mib": 1024}],
        },
    )
)
