"""Llama-style training workloads: the whole training step, prefill forward, and microbenchmarks at the
exact shapes of a Llama flavor (projections, attention, RMSNorm, RoPE, SwiGLU, cross-entropy, AdamW).

Every config takes `flavor` (a row of FLAVORS) and the model fields of the reference table; a model
field left at None comes from the flavor, so `--set flavor=llama3-8b --set n_layers=2` runs two
layers at Llama 3 8B's exact shapes. The model itself lives in chipbench.models.llama.

Modules: `config` (flavors and configs), `accounting` (FLOPs, bytes, parameter shapes: arithmetic),
`describe` and `plan` (what describe shows), `batch` (the token batch and its split over processes),
`optimizer` (AdamW kernels), `train` (the training step, FSDP2/DDP), `forward` (prefill), `micro`
(the microbenchmarks). This module only registers the benchmarks; nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chipbench.core.contract import Prepared, RunContext
from chipbench.core.registry import Benchmark, Family, grid, suites
from chipbench.workloads.llama.accounting import CE_PASSES, RMSNORM_PASSES, ROPE_PASSES, SWIGLU_PASSES
from chipbench.workloads.llama.batch import batch_layout
from chipbench.workloads.llama.config import (
    FLAVORS,
    AdamwConfig,
    AttentionConfig,
    CrossEntropyConfig,
    GemmConfig,
    LlamaConfig,
    MicroConfig,
    RmsnormConfig,
    RopeConfig,
    Shape,
    SwigluConfig,
    resolved_fields,
)
from chipbench.workloads.llama.describe import (
    adamw_describe,
    attention_describe,
    elementwise_describe,
    forward_describe,
    gemm_describe,
    train_describe,
)
from chipbench.workloads.llama.forward import forward_setup
from chipbench.workloads.llama.micro import (
    adamw_setup,
    attention_setup,
    cross_entropy_setup,
    gemm_setup,
    rmsnorm_setup,
    rope_setup,
    swiglu_setup,
)
from chipbench.workloads.llama.plan import forward_plan, train_plan
from chipbench.workloads.llama.train import make_trainer, train_setup

__all__ = [
    "FLAVORS",
    "AdamwConfig",
    "AttentionConfig",
    "CrossEntropyConfig",
    "GemmConfig",
    "LlamaConfig",
    "MicroConfig",
    "RmsnormConfig",
    "RopeConfig",
    "Shape",
    "SwigluConfig",
    "batch_layout",
    "make_trainer",
]

TIMED = ("chipbench.workloads.common", "chipbench.models.llama")
"""What every Llama benchmark's step runs besides its set-up's own module."""
_BATCH = "chipbench.workloads.llama.batch"  # the whole-model benchmarks' tokens and batch split
_OPTIMIZER = "chipbench.workloads.llama.optimizer"  # which AdamW kernels run

_TINY = {"flavor": "tiny"}
_TINY_MICRO = {"flavor": "tiny", "seq_len": 64, "batch_size": 4}
_8B = {"flavor": "llama3-8b"}
_8B_LAYER = {"flavor": "llama3-8b", "n_layers": 1, "seq_len": 64, "batch_size": 1, "vocab_size": 2048}

_LLAMA = Family("llama", timed=TIMED, resolved=resolved_fields)
_FWD_BWD = ("fwd", "fwd_bwd")
_BIG = ("llama3-8b", "llama3-70b", "llama3.1-405b")  # the flavors whose shapes the full suite runs
_OPS = ("qkv", "out", "gate_up", "down", "head")

TRAIN_STEP = _LLAMA.add(
    "train_step", LlamaConfig, train_setup,
    "Llama training step (forward, cross-entropy, backward, clip, AdamW): tokens/s, TFLOP/s, MFU.",
    suites(
        [_TINY],
        # A llama3-8b block trains at about 4 s a step on the 2-core CPU (AdamW and gradients over
        # 218M parameters dominate): it runs in the full suite; the default suite covers its shapes
        # with the forward pass and the microbenchmarks.
        [{"flavor": "debug"}],
        [
            {"flavor": "debug"},
            _8B_LAYER,
            {"flavor": "llama3-8b", "n_layers": 2, "seq_len": 2048},
            {"flavor": "llama3-70b", "n_layers": 1, "seq_len": 2048},
            {"flavor": "llama3.1-405b", "n_layers": 1, "seq_len": 2048},
        ],
    ),
    describe=train_describe, plan=train_plan, timed=(*TIMED, _BATCH, _OPTIMIZER),
)  # fmt: skip

FORWARD = _LLAMA.add(
    "forward", LlamaConfig, forward_setup,
    "Llama prefill forward (inference, no gradients): tokens/s, TFLOP/s, MFU.",
    suites(
        [_TINY],
        [{"flavor": "debug"}, {**_8B_LAYER, "seq_len": 256}],
        [{"flavor": "debug"}, {"flavor": "llama3-8b", "n_layers": 2}],
    ),
    describe=forward_describe, plan=forward_plan, timed=(*TIMED, _BATCH),
)  # fmt: skip

GEMM = _LLAMA.add(
    "gemm", GemmConfig, gemm_setup,
    "One Llama projection (qkv, out, gate_up, down, head) as a matrix product at the flavor's shapes.",
    suites(
        [{**_TINY_MICRO, "op": "gate_up"}],
        [{**_8B, "op": op, "seq_len": 32 if op == "head" else 128} for op in _OPS],
        grid(flavor=_BIG, op=_OPS, seq_len=(4096,), mode=_FWD_BWD),
    ),
    describe=gemm_describe,
)  # fmt: skip

ATTENTION = _LLAMA.add(
    "attention", AttentionConfig, attention_setup,
    "Causal grouped-query scaled_dot_product_attention at the flavor's heads, over seq_len.",
    suites(
        [_TINY_MICRO],
        grid(_8B, seq_len=(256, 512)),
        grid(flavor=_BIG, seq_len=(1024, 2048, 4096, 8192), mode=_FWD_BWD),
    ),
    describe=attention_describe,
)  # fmt: skip


def _elementwise(
    name: str,
    config_cls: type[Any],
    setup: Callable[[Any, RunContext], Prepared],
    doc: str,
    passes: tuple[int, int],
    seq_len: int,
) -> Benchmark[Any]:
    """An elementwise microbenchmark (GB/s; it touches its elements `passes` (fwd, fwd_bwd) times): the
    default suite at llama3-8b's shapes over `seq_len` tokens, the full suite at 8B's and 405B's, forward
    and backward."""
    full = grid(flavor=("llama3-8b", "llama3.1-405b"), mode=_FWD_BWD)
    return _LLAMA.add(
        name, config_cls, setup, doc,
        suites([_TINY_MICRO], [{**_8B, "seq_len": seq_len}], full),
        describe=elementwise_describe(passes),
    )  # fmt: skip


RMSNORM = _elementwise(
    "rmsnorm",
    RmsnormConfig,
    rmsnorm_setup,
    "RMSNorm (F.rms_norm) over (B*T, dim): GB/s.",
    RMSNORM_PASSES,
    2048,
)
ROPE = _elementwise(
    "rope",
    RopeConfig,
    rope_setup,
    "Rotary embedding of q and k at the flavor's heads: GB/s.",
    ROPE_PASSES,
    1024,
)
SWIGLU = _elementwise(
    "swiglu", SwigluConfig, swiglu_setup,
    "SwiGLU activation silu(gate) * up at the flavor's FFN hidden size: GB/s.", SWIGLU_PASSES, 512,
)  # fmt: skip

CROSS_ENTROPY = _LLAMA.add(
    "cross_entropy", CrossEntropyConfig, cross_entropy_setup,
    "Cross-entropy over the vocabulary (128256 for Llama 3), fp32 as autocast runs it: GB/s.",
    suites(
        [_TINY_MICRO],
        [{**_8B, "seq_len": 256}],
        grid({**_8B, "seq_len": 8192}, mode=_FWD_BWD),
    ),
    describe=elementwise_describe(CE_PASSES),
)  # fmt: skip

ADAMW = _LLAMA.add(
    "adamw", AdamwConfig, adamw_setup,
    "AdamW step over one transformer block's parameters at the flavor's shapes: GB/s.",
    suites([_TINY], [_8B], grid(flavor=("llama3-8b", "llama3-70b"))),
    describe=adamw_describe, timed=(*TIMED, _OPTIMIZER),
)  # fmt: skip
