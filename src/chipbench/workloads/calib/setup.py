"""The ceiling microbenchmarks' set-ups and steps (what the version hash covers)."""

from __future__ import annotations

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.core.dtypes import bytes_per_element
from chipbench.platform.device import torch_dtype
from chipbench.workloads.calib.config import STREAMS, CopyConfig, MatmulConfig
from chipbench.workloads.common import rotation

ADAMW_TENSORS = 8
"""The adamw probe's buffer, as this many parameters (a model's optimizer steps many tensors at once)."""


def matmul_setup(cfg: MatmulConfig, ctx: RunContext) -> Prepared:
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
    next_pair = rotation(pairs)

    def step() -> None:
        a, b = next_pair()
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


def copy_setup(cfg: CopyConfig, ctx: RunContext) -> Prepared:
    import torch

    dt = torch_dtype("fp32" if cfg.dtype == "auto" else cfg.dtype)
    numel = cfg.size_mib * 2**20 // bytes_per_element(cfg.dtype)
    src = torch.rand(numel, dtype=dt, device=ctx.torch_device)  # random, never zeros
    dst = torch.empty_like(src)
    dst.copy_(src)  # touch every page before timing
    nbytes = src.numel() * src.element_size()
    state = {"sign": 1.0}
    opt = None
    if cfg.kernel == "adamw":
        # The workloads' AdamW settings (weight decay 0.1, betas 0.9/0.95) over several tensors: fused
        # AdamW ran 13% faster so here than on one tensor without weight decay (39.2 against 34.8 GB/s,
        # interleaved), and a ceiling must be the best the kernel attains.
        weights = [torch.nn.Parameter(w) for w in src.chunk(ADAMW_TENSORS)]
        for w, g in zip(weights, dst.chunk(ADAMW_TENSORS), strict=True):
            w.grad = g
        opt = torch.optim.AdamW(weights, lr=1e-6, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
        opt.step()  # the moments allocated (and every page touched) before timing

    def step() -> None:
        if opt is not None:
            opt.step()
        elif cfg.kernel == "copy":
            dst.copy_(src)
        else:
            state["sign"] = -state["sign"]  # +src, -src, ...: the values stay bounded
            dst.add_(src, alpha=0.5 * state["sign"])

    convention = {
        "copy": "read + write",
        "add": "2 reads + 1 write, in place",
        "adamw": "weights, gradients, 2 moments read; weights, 2 moments written (fused AdamW, 8 tensors)",
    }[cfg.kernel]
    return Prepared(
        step=step,
        work=Work(bytes=STREAMS[cfg.kernel] * float(nbytes), bytes_convention=convention),
        info={"bytes_per_buffer": nbytes, "kernel": cfg.kernel},
    )
