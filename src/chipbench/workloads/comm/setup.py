"""The collectives' set-up, value check and step (what the version hash covers)."""

from __future__ import annotations

from typing import Any

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.core.dtypes import BYTES_PER_ELEMENT
from chipbench.core.errors import UsageError
from chipbench.platform.device import torch_dtype
from chipbench.workloads.comm.config import BUS_FACTOR_TEXT, CommConfig, bus_factor, element_count


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


def make_setup(op: str) -> Any:
    def setup(cfg: CommConfig, ctx: RunContext) -> Prepared:
        import torch

        if not ctx.distributed:
            raise UsageError(f"comm.{op} needs several processes: run it with --nproc-per-node 2 (or more)")
        n, rank = ctx.world_size, ctx.rank
        dtype = torch_dtype(cfg.dtype)
        count = element_count(cfg, n)
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
