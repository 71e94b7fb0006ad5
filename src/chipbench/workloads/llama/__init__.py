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

from chipbench.core.registry import Benchmark, register
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

TRAIN_STEP = register(
    Benchmark(
        name="llama.train_step",
        doc="Llama training step (forward, cross-entropy, backward, clip, AdamW): tokens/s, TFLOP/s, MFU.",
        config_cls=LlamaConfig,
        setup=train_setup,
        describe=train_describe,
        plan=train_plan,
        timed=(*TIMED, _BATCH, _OPTIMIZER),
        suites={
            "smoke": [_TINY],
            # A llama3-8b block trains at about 4 s a step on the 2-core CPU (AdamW and gradients over
            # 218M parameters dominate): it runs in the full suite; the default suite covers its shapes
            # with the forward pass and the microbenchmarks.
            "default": [{"flavor": "debug"}],
            "full": [
                {"flavor": "debug"},
                _8B_LAYER,
                {"flavor": "llama3-8b", "n_layers": 2, "seq_len": 2048},
                {"flavor": "llama3-70b", "n_layers": 1, "seq_len": 2048},
                {"flavor": "llama3.1-405b", "n_layers": 1, "seq_len": 2048},
            ],
        },
    )
)

FORWARD = register(
    Benchmark(
        name="llama.forward",
        doc="Llama prefill forward (inference, no gradients): tokens/s, TFLOP/s, MFU.",
        config_cls=LlamaConfig,
        setup=forward_setup,
        describe=forward_describe,
        plan=forward_plan,
        timed=(*TIMED, _BATCH),
        suites={
            "smoke": [_TINY],
            "default": [{"flavor": "debug"}, {**_8B_LAYER, "seq_len": 256}],
            "full": [{"flavor": "debug"}, {"flavor": "llama3-8b", "n_layers": 2}],
        },
    )
)

GEMM = register(
    Benchmark(
        name="llama.gemm",
        doc="One Llama projection (qkv, out, gate_up, down, head) as a matrix product at the flavor's shapes.",
        config_cls=GemmConfig,
        setup=gemm_setup,
        describe=gemm_describe,
        timed=TIMED,
        suites={
            "smoke": [{**_TINY_MICRO, "op": "gate_up"}],
            "default": [
                {**_8B, "op": op, "seq_len": 32 if op == "head" else 128}
                for op in ("qkv", "out", "gate_up", "down", "head")
            ],
            "full": [
                {"flavor": f, "op": op, "seq_len": 4096, "mode": m}
                for f in ("llama3-8b", "llama3-70b", "llama3.1-405b")
                for op in ("qkv", "out", "gate_up", "down", "head")
                for m in ("fwd", "fwd_bwd")
            ],
        },
    )
)

ATTENTION = register(
    Benchmark(
        name="llama.attention",
        doc="Causal grouped-query scaled_dot_product_attention at the flavor's heads, over seq_len.",
        config_cls=AttentionConfig,
        setup=attention_setup,
        describe=attention_describe,
        timed=TIMED,
        suites={
            "smoke": [_TINY_MICRO],
            "default": [{**_8B, "seq_len": t} for t in (256, 512)],
            "full": [
                {"flavor": f, "seq_len": t, "mode": m}
                for f in ("llama3-8b", "llama3-70b", "llama3.1-405b")
                for t in (1024, 2048, 4096, 8192)
                for m in ("fwd", "fwd_bwd")
            ],
        },
    )
)

RMSNORM = register(
    Benchmark(
        name="llama.rmsnorm",
        doc="RMSNorm (F.rms_norm) over (B*T, dim): GB/s.",
        config_cls=RmsnormConfig,
        setup=rmsnorm_setup,
        describe=elementwise_describe(RMSNORM_PASSES),
        timed=TIMED,
        suites={
            "smoke": [_TINY_MICRO],
            "default": [{**_8B, "seq_len": 2048}],
            "full": [
                {"flavor": f, "mode": m} for f in ("llama3-8b", "llama3.1-405b") for m in ("fwd", "fwd_bwd")
            ],
        },
    )
)

ROPE = register(
    Benchmark(
        name="llama.rope",
        doc="Rotary embedding of q and k at the flavor's heads: GB/s.",
        config_cls=RopeConfig,
        setup=rope_setup,
        describe=elementwise_describe(ROPE_PASSES),
        timed=TIMED,
        suites={
            "smoke": [_TINY_MICRO],
            "default": [{**_8B, "seq_len": 1024}],
            "full": [
                {"flavor": f, "mode": m} for f in ("llama3-8b", "llama3.1-405b") for m in ("fwd", "fwd_bwd")
            ],
        },
    )
)

SWIGLU = register(
    Benchmark(
        name="llama.swiglu",
        doc="SwiGLU activation silu(gate) * up at the flavor's FFN hidden size: GB/s.",
        config_cls=SwigluConfig,
        setup=swiglu_setup,
        describe=elementwise_describe(SWIGLU_PASSES),
        timed=TIMED,
        suites={
            "smoke": [_TINY_MICRO],
            "default": [{**_8B, "seq_len": 512}],
            "full": [
                {"flavor": f, "mode": m} for f in ("llama3-8b", "llama3.1-405b") for m in ("fwd", "fwd_bwd")
            ],
        },
    )
)

CROSS_ENTROPY = register(
    Benchmark(
        name="llama.cross_entropy",
        doc="Cross-entropy over the vocabulary (128256 for Llama 3), fp32 as autocast runs it: GB/s.",
        config_cls=CrossEntropyConfig,
        setup=cross_entropy_setup,
        describe=elementwise_describe(CE_PASSES),
        timed=TIMED,
        suites={
            "smoke": [_TINY_MICRO],
            "default": [{**_8B, "seq_len": 256}],
            "full": [{**_8B, "seq_len": 8192, "mode": m} for m in ("fwd", "fwd_bwd")],
        },
    )
)

ADAMW = register(
    Benchmark(
        name="llama.adamw",
        doc="AdamW step over one transformer block's parameters at the flavor's shapes: GB/s.",
        config_cls=AdamwConfig,
        setup=adamw_setup,
        describe=adamw_describe,
        timed=(*TIMED, _OPTIMIZER),
        suites={
            "smoke": [{"flavor": "tiny"}],
            "default": [{"flavor": "llama3-8b"}],
            "full": [{"flavor": f} for f in ("llama3-8b", "llama3-70b")],
        },
    )
)
