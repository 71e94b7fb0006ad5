"""What `chipbench describe` tells of each Llama benchmark without allocating: parameters, FLOPs or bytes
per step, conventions, and the memory one process needs. The whole model is counted on the meta device
(torch is imported inside the functions that do)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chipbench.core.contract import Description
from chipbench.core.dtypes import bytes_per_element
from chipbench.core.wire import Info
from chipbench.workloads.llama.accounting import (
    ADAMW_PASSES,
    activation_bytes,
    attention_flops,
    elementwise_bytes,
    flop_convention_text,
    gemm_dims,
    gemm_flops,
    layer_numel,
    math_attention_bytes,
)
from chipbench.workloads.llama.config import (
    AdamwConfig,
    AttentionConfig,
    GemmConfig,
    LlamaConfig,
    MicroConfig,
    Shape,
)


def meta_model(s: Shape) -> Any:
    """The whole Transformer of shape `s` on the meta device: its parameters, no storage."""
    import torch

    from chipbench.models.llama import Transformer

    with torch.device("meta"):
        return Transformer(s.model_args())


def parameter_count(s: Shape) -> int:
    """Unique parameters of the whole model of shape `s` (a tied head counted once)."""
    from chipbench.models.llama import count_params

    return int(count_params(meta_model(s)))


def train_describe(cfg: LlamaConfig) -> Description:
    from chipbench.models.llama import flops_per_token, matmul_params

    s = cfg.shape()
    n = parameter_count(s)
    a = s.model_args()
    fpt = flops_per_token(a, s.seq_len, cfg.flop_convention)
    weights = 4 * n  # fp32 master weights
    state = 4 * n + 8 * n  # gradients + AdamW exp_avg, exp_avg_sq
    cast = 2 * n if cfg.dtype in ("bf16", "fp16") else 0  # autocast's low-precision weight copies
    act = activation_bytes(s, cfg.dtype, cfg.activation_checkpointing, training=True)
    return Description(
        memory_bytes_estimate=weights + state + cast + act,
        facts={
            "parameters": n,
            "matmul_parameters": matmul_params(a),
            "ffn_hidden": s.ffn_hidden,
            "head_dim": s.head_dim,
            "shape": s.__dict__,
            "flops_per_token": fpt,
            "flops_per_step": fpt * s.tokens,
            "flop_convention": flop_convention_text(cfg.flop_convention),
            "tokens_per_step": s.tokens,
            "memory_breakdown": {
                "weights": weights,
                "grads_and_adamw": state,
                "autocast_copies": cast,
                "activations": act,
            },
        },
    )


def forward_describe(cfg: LlamaConfig) -> Description:
    from chipbench.models.llama import flops_per_token

    s = cfg.shape()
    n = parameter_count(s)
    fpt = flops_per_token(s.model_args(), s.seq_len, cfg.flop_convention, training=False)
    weights = bytes_per_element(cfg.dtype) * n
    act = activation_bytes(s, cfg.dtype, False, training=False)
    return Description(
        memory_bytes_estimate=weights + act,
        facts={
            "parameters": n,
            "flops_per_token": fpt,
            "flops_per_step": fpt * s.tokens,
            "flop_convention": flop_convention_text(cfg.flop_convention, training=False),
            "tokens_per_step": s.tokens,
        },
    )


def gemm_describe(cfg: GemmConfig) -> Description:
    m, k, n = gemm_dims(cfg)
    b = bytes_per_element(cfg.dtype)
    return Description(
        memory_bytes_estimate=b * (m * k + k * n + m * n) * (1 if cfg.mode == "fwd" else 2),
        facts={"m_k_n": [m, k, n], "flops_per_step": gemm_flops(cfg)},
    )


def attention_describe(cfg: AttentionConfig) -> Description:
    s = cfg.shape()
    b = bytes_per_element(cfg.dtype)
    qkvo = b * s.tokens * s.head_dim * (2 * s.n_heads + 2 * s.n_kv_heads)
    scores = math_attention_bytes(s, cfg.dtype, training=cfg.mode == "fwd_bwd")
    facts: Info = {"flops_per_step": attention_flops(cfg)}
    if scores:
        facts["score_matrix_bytes"] = scores
        facts["note"] = "fp32 grouped-query attention: SDPA's math path builds the B x H x T^2 scores on GPUs"
    return Description(memory_bytes_estimate=qkvo * (1 if cfg.mode == "fwd" else 3) + scores, facts=facts)


def elementwise_describe(passes: tuple[int, int]) -> Callable[[MicroConfig], Description]:
    """describe() for a memory-bound op touching its elements `passes` (fwd, fwd_bwd) times."""

    def describe(cfg: MicroConfig) -> Description:
        nbytes = elementwise_bytes(cfg, passes)
        return Description(memory_bytes_estimate=2 * nbytes, facts={"bytes_per_step": nbytes})

    return describe


def adamw_describe(cfg: AdamwConfig) -> Description:
    n = layer_numel(cfg.shape())
    b = bytes_per_element(cfg.dtype)
    return Description(
        memory_bytes_estimate=4 * b * n,
        facts={"parameters": n, "bytes_per_step": ADAMW_PASSES * b * n},
    )
