"""Collective microbenchmarks: all_reduce, all_gather, reduce_scatter, all_to_all, broadcast.

They run on the job's default process group (nccl on CUDA, gloo on CPU) under
`chipbench run --nproc-per-node N`, over a message-size sweep, and report bandwidth as NCCL's own
tests (nccl-tests, doc/PERFORMANCE.md) do:

- size S: the whole buffer of all_reduce and broadcast, the gathered output of all_gather, the input
  of reduce_scatter, each rank's send buffer of all_to_all;
- algorithm bandwidth `gbps` = S / t, with t each round's slowest rank (nccl-tests averages the
  ranks' times by default; the slowest is what a synchronous step waits for);
- bus bandwidth `gbps_busbw` = algbw x 2(n-1)/n for all_reduce, (n-1)/n for all_gather,
  reduce_scatter and all_to_all, 1 for broadcast: comparable with the link's peak whatever n is.

Each collective is checked for value once before it is timed (an all_reduce must sum). The timed
buffers hold random values; all_reduce works in place, so its buffer grows by n each step and
saturates at +-inf, which changes neither NCCL's nor gloo's speed (only denormals would, and growth
never makes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chipbench.core.config import check
from chipbench.core.contract import Description, Prepared, RunContext, Work
from chipbench.core.dtypes import BYTES_PER_ELEMENT
from chipbench.core.errors import UsageError
from chipbench.core.registry import Benchmark, register
from chipbench.platform.device import torch_dtype

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
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Element type of the buffers (and of the reduction)."""
    check_values: bool = True
    """Check the collective's result for value once before timing."""

    def __post_init__(self) -> None:
        check(
            self.size_bytes >= BYTES_PER_ELEMENT.get(self.dtype, 4),
            f"size_bytes must be >= one element, got {self.size_bytes}",
        )
        check(self.dtype in BYTES_PER_ELEMENT, f"dtype must be one of {', '.join(BYTES_PER_ELEMENT)}, got {self.dtype!r}")


def _count(cfg: CommConfig, world: int) -> int:
    """Elements in S, a multiple of the world size so every rank gets an equal chunk."""
    return max(world, (cfg.size_bytes // BYTES_PER_ELEMENT[cfg.dtype]) // world * world)


def _describe(cfg: CommConfig) -> Description:
    # The largest of a collective's buffers is S; with the input or chunk beside it, at most 2S.
    return Description(
        memory_bytes_estimate=2 * cfg.size_bytes,
        facts={
            "size_bytes": cfg.size_bytes,
            "bytes_convention": "nccl-tests: algbw = S / t, busbw = algbw x bus factor",
        },
    )


def _buffers(op: str, count: int, n: int, dtype: Any, device: str, fill: Any) -> tuple[Any, Any]:
    """(input, output) for one collective; output is None for in-place ones."""
    import torch

    chunk = count // n
    if op in ("all_reduce", "broadcast"):
        return fill(count), None
    if op == "all_gather":
        return fill(chunk), torch.empty(count, dtype=dtype, device=device)
    if op == "reduce_scatter":
        return fill(count), torch.empty(chunk, dtype=dtype, device=device)
    if op == "all_to_all":
        return fill(count), torch.empty(count, dtype=dtype, device=device)
    raise ValueError(op)


def _call(op: str, inp: Any, out: Any) -> None:
    import torch.distributed as dist

    if op == "all_reduce":
        dist.all_reduce(inp)
    elif op == "broadcast":
        dist.broadcast(inp, src=0)
    elif op == "all_gather":
        # all_gather_into_tensor is the name every torch since 2.0 has (2.13 deprecates it for
        # all_gather_single, which older images lack).
        getattr(dist, "all_gather_single", dist.all_gather_into_tensor)(out, inp)
    elif op == "reduce_scatter":
        getattr(dist, "reduce_scatter_single", dist.reduce_scatter_tensor)(out, inp)
    elif op == "all_to_all":
        dist.all_to_all_single(out, inp)


def check_collective(op: str, count: int, rank: int, n: int, dtype: Any, device: str) -> None:
    """Run `op` once on rank-dependent small integers and compare with the exact answer."""
    import torch

    chunk = count // n
    base = (torch.arange(count, device=device) % 7 + 1).to(dtype)  # (count,) values 1..7
    tri = n * (n + 1) // 2  # sum over ranks of (rank + 1)
    if op == "all_reduce":
        inp, out = base * (rank + 1), None
        expect = base * tri
    elif op == "broadcast":
        inp, out = (base if rank == 0 else torch.full_like(base, -1)), None
        expect = base
    elif op == "all_gather":
        inp, out = base[:chunk] * (rank + 1), torch.empty(count, dtype=dtype, device=device)
        expect = torch.cat([base[:chunk] * (r + 1) for r in range(n)])
    elif op == "reduce_scatter":
        inp, out = base * (rank + 1), torch.empty(chunk, dtype=dtype, device=device)
        expect = base[rank * chunk : (rank + 1) * chunk] * tri
    elif op == "all_to_all":
        # Rank r sends r*n + j + 1 to rank j, so rank `rank` receives j*n + rank + 1 from each rank j.
        inp = torch.cat(
            [
                torch.full((chunk,), r_j, dtype=dtype, device=device)
                for r_j in range(rank * n + 1, rank * n + n + 1)
            ]
        )
        out = torch.empty(count, dtype=dtype, device=device)
        expect = torch.cat(
            [torch.full((chunk,), j * n + rank + 1, dtype=dtype, device=device) for j in range(n)]
        )
    else:
        raise ValueError(op)
    _call(op, inp, out)
    got = inp if out is None else out
    tol = 0.0 if dtype == torch.float32 else 1e-2
    if not torch.allclose(got.float(), expect.float(), rtol=tol, atol=0):
        bad = int((got.float() - expect.float()).abs().gt(tol * expect.float().abs()).sum())
        raise RuntimeError(f"{op} gave wrong values on rank {rank}: {bad} of {got.numel()} elements differ")


def _setup(op: str) -> Any:
    def setup(cfg: CommConfig, ctx: RunContext) -> Prepared:
        import torch

        if not ctx.distributed:
            raise UsageError(f"comm.{op} needs several processes: run it with --nproc-per-node 2 (or more)")
        n, rank = ctx.world_size, ctx.rank
        dtype = torch_dtype(cfg.dtype)
        count = _count(cfg, n)
        if cfg.check_values:
            check_collective(op, count, rank, n, dtype, ctx.torch_device)
        gen = torch.Generator(device=ctx.torch_device).manual_seed(ctx.seed * 1000 + rank)

        def fill(k: int) -> Any:
            return torch.randn(k, generator=gen, device=ctx.torch_device, dtype=torch.float32).to(dtype)

        inp, out = _buffers(op, count, n, dtype, ctx.torch_device, fill)
        size = count * BYTES_PER_ELEMENT[cfg.dtype]

        def step() -> None:
            _call(op, inp, out)

        work = Work(
            bytes=float(size),
            bytes_convention=f"collective algbw: S / t, S = {size} bytes (nccl-tests)",
            extra_bytes={"busbw": size * bus_factor(op, n)},
        )
        info = {
            "collective": op,
            "size_bytes_used": size,
            "elements": count,
            "world_size": n,
            "backend": ctx.dist_backend,
            "bus_factor": f"{BUS_FACTOR_TEXT[op]} = {bus_factor(op, n):.4g}",
            "values_checked": cfg.check_values,
        }
        return Prepared(step=step, work=work, info=info)

    return setup


_KIB = 1 << 10
SMOKE_SIZES = (4 * _KIB, 1 << 20)
DEFAULT_SIZES = tuple(_KIB * 8**i for i in range(7))  # 1 KiB .. 256 MiB, x8 apart
FULL_SIZES = tuple(_KIB * 4**i for i in range(11))  # 1 KiB .. 1 GiB, x4 apart

for _op in OPS:
    register(
        Benchmark(
            name=f"comm.{_op}",
            doc=f"torch.distributed {_op} over the job's processes; algorithm and bus bandwidth (nccl-tests).",
            config_cls=CommConfig,
            setup=_setup(_op),
            describe=_describe,
            suites={
                "smoke": [{"size_bytes": s} for s in SMOKE_SIZES],
                "default": [{"size_bytes": s} for s in DEFAULT_SIZES],
                "full": [{"size_bytes": s} for s in FULL_SIZES],
            },
            needs_world=2,
        )
    )
