"""Arithmetic of the Llama family, without torch: the FLOP conventions, activation bytes, the matrix
products' dimensions and FLOPs, attention FLOPs, the elements and passes of the memory-bound ops, and
one transformer block's parameter shapes.

The whole model's FLOPs per token (`flops_per_token`) and parameter counts live with the model, in
chipbench.models.llama.
"""

from __future__ import annotations

from chipbench.core.dtypes import bytes_per_element
from chipbench.workloads.llama.config import (
    AttentionConfig,
    CrossEntropyConfig,
    GemmConfig,
    MicroConfig,
    RopeConfig,
    Shape,
    SwigluConfig,
)

# Passes over a memory-bound op's tensors, (fwd, fwd_bwd): reads and writes each count once.
RMSNORM_PASSES = (2, 5)  # fwd: read x, write y; bwd: read x, dy, write dx
ROPE_PASSES = (2, 4)  # fwd: read, write q and k; bwd: read dy, write dx
SWIGLU_PASSES = (3, 8)  # counted in units of B*T*ffn_hidden: fwd read gate, up, write y; bwd 5 more
CE_PASSES = (1, 3)  # fwd: read logits; bwd: read logits again, write their gradient

ADAMW_PASSES = 7
"""Per parameter and AdamW step: read p, grad, exp_avg, exp_avg_sq; write p, exp_avg, exp_avg_sq."""


def flop_convention_text(conv: str, training: bool = True) -> str:
    """How a whole-model FLOP count is made, as recorded with the result."""
    if conv == "causal_halved":
        return (
            "causal_halved (Megatron): 6*N_matmul + 6*L*H*D*T per token"
            if training
            else "causal_halved, forward: 2*N_matmul + 2*L*H*D*T per token"
        )
    return (
        "torchtitan: 6*N_matmul + 12*L*H*D*T per token (causal not halved)"
        if training
        else "torchtitan, forward: 2*N_matmul + 4*L*H*D*T per token (causal not halved)"
    )


def math_attention_bytes(s: Shape, dtype: str, training: bool) -> int:
    """Bytes of the full (B, H, T, T) score matrices one attention call builds when SDPA falls back to its
    math path: fp32 with grouped-query heads (the flash kernels take bf16/fp16 only); 0 otherwise.
    Scores and softmax forward, and their gradients in training."""
    if dtype not in ("fp32", "auto") or s.n_kv_heads == s.n_heads:
        return 0
    return s.batch_size * s.n_heads * s.seq_len * s.seq_len * 4 * (4 if training else 2)


def activation_bytes(s: Shape, dtype: str, checkpointing: bool, training: bool) -> int:
    """Rough bytes of activations: what backward keeps per layer, plus the logits and their gradient,
    plus the score matrices of fp32 grouped-query attention (`math_attention_bytes`)."""
    return _activation_bytes(s, dtype, checkpointing, training) + math_attention_bytes(s, dtype, training) * (
        s.n_layers if training and not checkpointing else 1
    )


def _activation_bytes(s: Shape, dtype: str, checkpointing: bool, training: bool) -> int:
    b = bytes_per_element(dtype)
    kv = s.n_kv_heads * s.head_dim
    per_token_layer = b * (8 * s.dim + 3 * kv + 4 * s.ffn_hidden) + 4 * s.dim  # + fp32 residual
    logits = s.tokens * s.vocab_size * (b + 8)  # logits, fp32 log-softmax, gradient
    if not training:
        return s.tokens * per_token_layer + s.tokens * s.vocab_size * (b + 4)
    if checkpointing:
        return s.tokens * (s.n_layers * 4 * s.dim + per_token_layer) + logits
    return s.tokens * s.n_layers * per_token_layer + logits


def gemm_dims(cfg: GemmConfig) -> tuple[int, int, int]:
    """(m, k, n) of the projection `cfg.op` as (B*T, in) x (in, out)."""
    s = cfg.shape()
    hd = s.n_heads * s.head_dim
    k_n = {
        "qkv": (s.dim, (s.n_heads + 2 * s.n_kv_heads) * s.head_dim),
        "out": (hd, s.dim),
        "gate_up": (s.dim, 2 * s.ffn_hidden),
        "down": (s.ffn_hidden, s.dim),
        "head": (s.dim, s.vocab_size),
    }[cfg.op]
    return s.tokens, k_n[0], k_n[1]


def gemm_flops(cfg: GemmConfig) -> float:
    """2*m*k*n forward; three times that with the backward (input and weight gradients)."""
    m, k, n = gemm_dims(cfg)
    return (2.0 if cfg.mode == "fwd" else 6.0) * m * k * n


def attention_flops(cfg: AttentionConfig) -> float:
    """4*B*H*T^2*D forward (halved under causal_halved); three times that with the backward."""
    s = cfg.shape()
    fwd = 4.0 * s.batch_size * s.n_heads * s.seq_len * s.seq_len * s.head_dim
    if cfg.flop_convention == "causal_halved":
        fwd /= 2
    return fwd if cfg.mode == "fwd" else 3 * fwd


def elementwise_numel(cfg: MicroConfig) -> int:
    """Elements a memory-bound op's pass touches: q and k (RoPE), B*T*ffn_hidden (SwiGLU), the logits
    (cross-entropy), B*T*dim (RMSNorm)."""
    s = cfg.shape()
    if isinstance(cfg, RopeConfig):
        return s.tokens * (s.n_heads + s.n_kv_heads) * s.head_dim
    if isinstance(cfg, SwigluConfig):
        return s.tokens * s.ffn_hidden
    if isinstance(cfg, CrossEntropyConfig):
        return s.tokens * s.vocab_size
    return s.tokens * s.dim  # RMSNorm


def elementwise_bytes(cfg: MicroConfig, passes: tuple[int, int]) -> int:
    """Bytes per step of a memory-bound op making `passes` (fwd, fwd_bwd) passes over its elements."""
    return bytes_per_element(cfg.dtype) * elementwise_numel(cfg) * passes[0 if cfg.mode == "fwd" else 1]


def layer_param_shapes(s: Shape) -> list[tuple[int, ...]]:
    """The parameter shapes of one transformer block, as the model stores them."""
    hd = s.head_dim
    return [
        ((s.n_heads + 2 * s.n_kv_heads) * hd, s.dim),  # wqkv
        (s.dim, s.n_heads * hd),  # wo
        (2 * s.ffn_hidden, s.dim),  # w13
        (s.dim, s.ffn_hidden),  # w2
        (s.dim,),  # attention_norm
        (s.dim,),  # ffn_norm
    ]


def layer_numel(s: Shape) -> int:
    """Parameters of one transformer block."""
    total = 0
    for shp in layer_param_shapes(s):
        n = 1
        for d in shp:
            n *= d
        total += n
    return total
