"""Microbenchmarks of the pieces of a Llama layer at a flavor's exact shapes, on random inputs: the
projections as matrix products, causal grouped-query attention, RMSNorm, RoPE, SwiGLU, cross-entropy over
the vocabulary, and AdamW over one block's parameters. Each runs forward only or forward and backward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.core.dtypes import bytes_per_element
from chipbench.platform.device import device_type, torch_dtype
from chipbench.workloads.common import generator
from chipbench.workloads.llama.accounting import (
    ADAMW_PASSES,
    CE_PASSES,
    RMSNORM_PASSES,
    ROPE_PASSES,
    SWIGLU_PASSES,
    attention_flops,
    elementwise_bytes,
    gemm_dims,
    gemm_flops,
    layer_numel,
    layer_param_shapes,
)
from chipbench.workloads.llama.config import (
    AdamwConfig,
    AttentionConfig,
    CrossEntropyConfig,
    GemmConfig,
    MicroConfig,
    RmsnormConfig,
    RopeConfig,
    SwigluConfig,
)
from chipbench.workloads.llama.optimizer import adamw_impl, adamw_kwargs


def _randn(shape: tuple[int, ...], dtype: str, ctx: RunContext, gen: Any, scale: float = 1.0) -> Any:
    import torch

    from chipbench.models import fill  # here, not at the top: the CLI starts without torch

    # Drawn in the run dtype on every core (`fill`), then moved: `gen` is a CPU generator.
    out = fill.normal_(torch.empty(shape, dtype=torch_dtype(dtype)), 0.0, scale, generator=gen)
    return out.to(device=ctx.torch_device)


def _fwd_bwd(fn: Callable[..., Any], inputs: list[Any], mode: str, gen: Any, ctx: RunContext) -> Any:
    """A step running fn(*inputs) (fwd), or fn then the gradient of every input (fwd_bwd: each input is
    made to require grad here)."""
    import torch

    if mode == "fwd":

        def fwd_step() -> Any:
            with torch.no_grad():
                return fn(*inputs)

        return fwd_step
    for t in inputs:
        t.requires_grad_(True)
    with torch.no_grad():
        ref = fn(*inputs)
    grad_out = torch.randn(ref.shape, generator=gen).to(device=ctx.torch_device, dtype=ref.dtype)
    wrt = list(inputs)

    def step() -> Any:
        out = fn(*inputs)
        return torch.autograd.grad(out, wrt, grad_out)

    return step


def _bytes_work(cfg: MicroConfig, passes: tuple[int, int], convention: str) -> Work:
    s = cfg.shape()
    nbytes = elementwise_bytes(cfg, passes)
    return Work(bytes=float(nbytes), tokens=s.tokens, bytes_convention=convention)


def gemm_setup(cfg: GemmConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    m, k, n = gemm_dims(cfg)
    gen = generator(ctx)
    x = _randn((m, k), cfg.dtype, ctx, gen)  # (B*T, in)
    w = _randn((n, k), cfg.dtype, ctx, gen, 0.02)  # (out, in), as nn.Linear stores it
    step = _fwd_bwd(F.linear, [x, w], cfg.mode, gen, ctx)
    return Prepared(
        step=step,
        work=Work(
            flops=gemm_flops(cfg),
            tokens=m,
            flop_convention="2*m*k*n forward; x3 with backward (input and weight gradients)",
        ),
        info={"flavor": cfg.flavor, "op": cfg.op, "m_k_n": [m, k, n], "mode": cfg.mode},
    )


def attention_setup(cfg: AttentionConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    s = cfg.shape()
    B, T, H, K, D = s.batch_size, s.seq_len, s.n_heads, s.n_kv_heads, s.head_dim
    gen = generator(ctx)
    q = _randn((B, H, T, D), cfg.dtype, ctx, gen)  # (B, H, T, D)
    k = _randn((B, K, T, D), cfg.dtype, ctx, gen)  # (B, K, T, D)
    v = _randn((B, K, T, D), cfg.dtype, ctx, gen)  # (B, K, T, D)

    def sdpa(q: Any, k: Any, v: Any) -> Any:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != K)  # (B, H, T, D)

    return Prepared(
        step=_fwd_bwd(sdpa, [q, k, v], cfg.mode, gen, ctx),
        work=Work(
            flops=attention_flops(cfg),
            tokens=s.tokens,
            flop_convention=(
                "4*B*H*T^2*D forward, x3 with backward, "
                + ("causal halved" if cfg.flop_convention == "causal_halved" else "causal not halved")
            ),
        ),
        info={"flavor": cfg.flavor, "shape_bhtd": [B, H, T, D], "n_kv_heads": K, "mode": cfg.mode},
    )


def rmsnorm_setup(cfg: RmsnormConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    s = cfg.shape()
    gen = generator(ctx)
    x = _randn((s.tokens, s.dim), cfg.dtype, ctx, gen)  # (B*T, C)
    w = 1.0 + _randn((s.dim,), cfg.dtype, ctx, gen, 0.1)  # (C,)

    def norm(x: Any, w: Any) -> Any:
        return F.rms_norm(x, (s.dim,), w, 1e-5)  # (B*T, C)

    return Prepared(
        step=_fwd_bwd(norm, [x, w], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, RMSNORM_PASSES, "fwd: read x + write y; bwd: read x, dy + write dx (weight not counted)"
        ),
        info={"flavor": cfg.flavor, "shape": [s.tokens, s.dim], "mode": cfg.mode},
    )


def rope_setup(cfg: RopeConfig, ctx: RunContext) -> Prepared:
    from chipbench.models.llama import apply_rope, rope_cache

    s = cfg.shape()
    B, T, H, K, D = s.batch_size, s.seq_len, s.n_heads, s.n_kv_heads, s.head_dim
    gen = generator(ctx)
    q = _randn((B, T, H, D), cfg.dtype, ctx, gen)  # (B, T, H, D)
    k = _randn((B, T, K, D), cfg.dtype, ctx, gen)  # (B, T, K, D)
    freqs_cis = rope_cache(T, D, s.rope_theta, device=ctx.torch_device)  # (T, D/2) complex

    def rope(q: Any, k: Any) -> Any:
        import torch

        # One output so the backward runs for both: the flattened rotated q and k side by side.
        return torch.cat((apply_rope(q, freqs_cis).flatten(), apply_rope(k, freqs_cis).flatten()))

    return Prepared(
        step=_fwd_bwd(rope, [q, k], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, ROPE_PASSES, "read + write q and k (fwd); read dy + write dx (bwd); tables not counted"
        ),
        info={
            "flavor": cfg.flavor,
            "q": [B, T, H, D],
            "k": [B, T, K, D],
            "mode": cfg.mode,
            "note": "includes one concat of the outputs",
        },
    )


def swiglu_setup(cfg: SwigluConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    s = cfg.shape()
    gen = generator(ctx)
    h = _randn((s.tokens, 2 * s.ffn_hidden), cfg.dtype, ctx, gen)  # (B*T, 2F): fused gate/up output

    def swiglu(h: Any) -> Any:
        gate, up = h.chunk(2, dim=-1)  # (B*T, F) each
        return F.silu(gate) * up  # (B*T, F)

    return Prepared(
        step=_fwd_bwd(swiglu, [h], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, SWIGLU_PASSES, "fwd: read gate, up + write y; bwd: read gate, up, dy + write dgate, dup"
        ),
        info={"flavor": cfg.flavor, "tokens": s.tokens, "ffn_hidden": s.ffn_hidden, "mode": cfg.mode},
    )


def cross_entropy_setup(cfg: CrossEntropyConfig, ctx: RunContext) -> Prepared:
    import torch
    import torch.nn.functional as F

    s = cfg.shape()
    gen = generator(ctx)
    logits = _randn((s.tokens, s.vocab_size), cfg.dtype, ctx, gen)  # (B*T, V)
    targets = torch.randint(0, s.vocab_size, (s.tokens,), generator=gen).to(ctx.torch_device)  # (B*T,)

    def ce(logits: Any) -> Any:
        return F.cross_entropy(logits.float(), targets)  # fp32, as autocast runs it

    return Prepared(
        step=_fwd_bwd(ce, [logits], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, CE_PASSES, "logits in the run dtype: fwd reads them once; bwd reads and writes once"
        ),
        info={"flavor": cfg.flavor, "shape": [s.tokens, s.vocab_size], "mode": cfg.mode},
    )


def adamw_setup(cfg: AdamwConfig, ctx: RunContext) -> Prepared:
    import torch

    s = cfg.shape()
    gen = generator(ctx)
    params = []
    for shp in layer_param_shapes(s):
        p = torch.nn.Parameter(_randn(shp, cfg.dtype, ctx, gen, 0.02))
        p.grad = _randn(shp, cfg.dtype, ctx, gen, 1e-3)
        params.append(p)
    impl = adamw_impl(cfg.adamw_impl, device_type(ctx.device))
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, **adamw_kwargs(impl))
    n = layer_numel(s)
    return Prepared(
        step=opt.step,
        work=Work(
            bytes=float(ADAMW_PASSES * bytes_per_element(cfg.dtype) * n),
            bytes_convention="per parameter: read p, grad, exp_avg, exp_avg_sq; write p, exp_avg, exp_avg_sq",
        ),
        info={
            "flavor": cfg.flavor,
            "parameters": n,
            "optimizer": f"AdamW {impl}",
        },
    )
