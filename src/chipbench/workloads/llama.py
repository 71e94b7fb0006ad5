"""Llama-style training workloads: the whole training step, prefill forward, and microbenchmarks at the
exact shapes of a Llama flavor (projections, attention, RMSNorm, RoPE, SwiGLU, cross-entropy, AdamW).

Every config takes `flavor` (a row of FLAVORS) and the model fields of the reference table; a model
field left at None comes from the flavor, so `--set flavor=llama3-8b --set n_layers=2` runs two
layers at Llama 3 8B's exact shapes. The model itself lives in chipbench.models.llama.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from chipbench.bench import Benchmark, Prepared, RunContext, Work, register
from chipbench.config import check
from chipbench.errors import UsageError
from chipbench.hardware import torch_dtype

DType = Literal["auto", "fp32", "bf16", "fp16"]
FlavorName = Literal[
    "tiny", "debug", "llama2-7b", "llama3.2-1b", "llama3.2-3b", "llama3-8b", "llama3-70b", "llama3.1-405b"
]
FlopConvention = Literal["torchtitan", "causal_halved"]
AdamwImpl = Literal["auto", "fused", "foreach"]
Parallel = Literal["fsdp2", "ddp"]
Scaling = Literal["weak", "strong"]
_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}

# One row per flavor. seq_len and batch_size are the defaults for whole-model runs at that flavor.
FLAVORS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=256, multiple_of=32,
        ffn_dim_multiplier=None, rope_theta=10000.0, tie_embeddings=False, seq_len=64, batch_size=4,
    ),
    "debug": dict(  # torchtitan's debug model
        dim=256, n_layers=6, n_heads=16, n_kv_heads=16, vocab_size=2048, multiple_of=256,
        ffn_dim_multiplier=None, rope_theta=500000.0, tie_embeddings=False, seq_len=256, batch_size=8,
    ),
    "llama2-7b": dict(
        dim=4096, n_layers=32, n_heads=32, n_kv_heads=32, vocab_size=32000, multiple_of=256,
        ffn_dim_multiplier=None, rope_theta=10000.0, tie_embeddings=False, seq_len=4096, batch_size=1,
    ),
    "llama3.2-1b": dict(
        dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, vocab_size=128256, multiple_of=256,
        ffn_dim_multiplier=1.5, rope_theta=500000.0, tie_embeddings=True, seq_len=8192, batch_size=1,
    ),
    "llama3.2-3b": dict(
        dim=3072, n_layers=28, n_heads=24, n_kv_heads=8, vocab_size=128256, multiple_of=256,
        ffn_dim_multiplier=1.0, rope_theta=500000.0, tie_embeddings=True, seq_len=8192, batch_size=1,
    ),
    "llama3-8b": dict(
        dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, vocab_size=128256, multiple_of=1024,
        ffn_dim_multiplier=1.3, rope_theta=500000.0, tie_embeddings=False, seq_len=8192, batch_size=1,
    ),
    "llama3-70b": dict(
        dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, vocab_size=128256, multiple_of=4096,
        ffn_dim_multiplier=1.3, rope_theta=500000.0, tie_embeddings=False, seq_len=8192, batch_size=1,
    ),
    "llama3.1-405b": dict(
        dim=16384, n_layers=126, n_heads=128, n_kv_heads=8, vocab_size=128256, multiple_of=4096,
        ffn_dim_multiplier=1.2, rope_theta=500000.0, tie_embeddings=False, seq_len=8192, batch_size=1,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """A flavor with every override applied: concrete model fields plus seq_len and batch_size."""

    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    multiple_of: int
    ffn_dim_multiplier: float | None
    rope_theta: float
    tie_embeddings: bool
    seq_len: int
    batch_size: int

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_hidden(self) -> int:
        hidden = int(2 * (4 * self.dim) / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)

    @property
    def tokens(self) -> int:
        return self.seq_len * self.batch_size

    def model_args(self) -> Any:
        from chipbench.models.llama import ModelArgs

        return ModelArgs(
            dim=self.dim,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            n_kv_heads=self.n_kv_heads,
            vocab_size=self.vocab_size,
            multiple_of=self.multiple_of,
            ffn_dim_multiplier=self.ffn_dim_multiplier,
            rope_theta=self.rope_theta,
            tie_embeddings=self.tie_embeddings,
            max_seq_len=self.seq_len,
        )


@dataclass(frozen=True)
class LlamaShapeConfig:
    """Model shape: a flavor, and per-field overrides (None = the flavor's value)."""

    flavor: FlavorName = "debug"
    """Row of the flavor table: tiny, debug, llama2-7b, llama3.2-1b, llama3.2-3b, llama3-8b, llama3-70b, llama3.1-405b."""
    dim: int | None = None
    """Model (residual stream) width."""
    n_layers: int | None = None
    """Transformer blocks; large flavors run as a few layers at their exact shapes (e.g. 2)."""
    n_heads: int | None = None
    """Query heads."""
    n_kv_heads: int | None = None
    """Key/value heads (grouped-query attention when fewer than n_heads)."""
    vocab_size: int | None = None
    """Vocabulary size."""
    multiple_of: int | None = None
    """FFN hidden size is rounded up to a multiple of this."""
    ffn_dim_multiplier: float | None = None
    """Multiplier on int(8*dim/3) before rounding (None = the flavor's; 1.0 = no multiplier)."""
    rope_theta: float | None = None
    """RoPE base."""
    tie_embeddings: bool | None = None
    """Share the input embedding with the output head."""
    seq_len: int | None = None
    """Tokens per sequence."""
    batch_size: int | None = None
    """Sequences per step."""
    dtype: DType = "auto"
    """auto, fp32, bf16 (autocast, fp32 master weights), fp16 (autocast + loss scaling)."""

    def __post_init__(self) -> None:
        s = self.shape()
        for name in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of", "seq_len"):
            check(getattr(s, name) > 0, f"{name} must be positive, got {getattr(s, name)}")
        check(s.batch_size > 0, f"batch_size must be positive, got {s.batch_size}")
        check(s.dim % s.n_heads == 0, f"dim {s.dim} must be a multiple of n_heads {s.n_heads}")
        check(s.head_dim % 2 == 0, f"head dim {s.head_dim} (dim / n_heads) must be even for RoPE")
        check(
            s.n_heads % s.n_kv_heads == 0,
            f"n_heads {s.n_heads} must be a multiple of n_kv_heads {s.n_kv_heads}",
        )
        check(s.rope_theta > 0, "rope_theta must be positive")
        check(s.ffn_dim_multiplier is None or s.ffn_dim_multiplier > 0, "ffn_dim_multiplier must be positive")

    def shape(self) -> Shape:
        row = FLAVORS[self.flavor]
        vals = {k: getattr(self, k) if getattr(self, k) is not None else row[k] for k in row}
        return Shape(**vals)


@dataclass(frozen=True)
class LlamaConfig(LlamaShapeConfig):
    """A whole Llama training (or prefill) step at a flavor's shapes, on random tokens."""

    compile: bool = False
    """torch.compile the model (the first step, which compiles, is reported apart)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass."""
    flop_convention: FlopConvention = "torchtitan"
    """torchtitan: 6*N_matmul + 12*L*H*D*T per token; causal_halved: attention term halved (Megatron)."""
    lr: float = 3e-4
    """AdamW learning rate (betas 0.9, 0.95, weight decay 0.1, gradient clipping at norm 1.0)."""
    adamw_impl: AdamwImpl = "auto"
    """AdamW kernels: auto (fused where torch has them: CUDA/ROCm, CPU, MPS, XPU), fused or foreach."""
    parallel: Parallel = "fsdp2"
    """Training over more than one process (ignored on one): fsdp2 (torch fully_shard per transformer
    block, then the root: weights, gradients and AdamW state sharded; bf16/fp16 all-gathers and fp32
    gradient reduce-scatters) or ddp (DistributedDataParallel: replicated, gradients all-reduced)."""
    scaling: Scaling = "weak"
    """weak: batch_size sequences per process (the global batch grows with the processes); strong:
    batch_size is the global batch, split evenly over the processes (must divide by their number)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.lr > 0, "lr must be positive")
        check(self.parallel in ("fsdp2", "ddp"), f"parallel must be fsdp2 or ddp, got {self.parallel!r}")
        check(self.scaling in ("weak", "strong"), f"scaling must be weak or strong, got {self.scaling!r}")


Mode = Literal["fwd", "fwd_bwd"]


@dataclass(frozen=True)
class MicroConfig(LlamaShapeConfig):
    """One piece of a Llama layer at a flavor's exact shapes, on B*T = batch_size*seq_len tokens."""

    flavor: FlavorName = "llama3-8b"
    """Row of the flavor table whose shapes are used."""
    mode: Mode = "fwd_bwd"
    """fwd: forward only; fwd_bwd: forward and backward."""


GemmOp = Literal["qkv", "out", "gate_up", "down", "head"]


@dataclass(frozen=True)
class GemmConfig(MicroConfig):
    """One projection as a matrix product (B*T, in) x (in, out)."""

    op: GemmOp = "qkv"
    """qkv (fused q/k/v), out (attention output), gate_up (fused w1/w3), down (w2), head (output head)."""


@dataclass(frozen=True)
class AttentionConfig(MicroConfig):
    """Causal grouped-query SDPA at the flavor's heads and head dim."""

    flop_convention: FlopConvention = "torchtitan"
    """torchtitan: causal not halved (4*B*H*T^2*D forward); causal_halved: half of that."""


@dataclass(frozen=True)
class CrossEntropyConfig(MicroConfig):
    """Cross-entropy over the vocabulary, computed in fp32 as autocast does."""

    seq_len: int | None = 2048
    """Tokens per sequence (logits are B*T x vocab_size)."""


@dataclass(frozen=True)
class AdamwConfig(MicroConfig):
    """AdamW step over one transformer block's parameters (random gradients)."""

    dtype: DType = "fp32"
    """Parameter, gradient and state dtype (fp32 = master weights under mixed precision)."""
    adamw_impl: AdamwImpl = "auto"
    """AdamW kernels: auto (fused where torch has them: CUDA/ROCm, CPU, MPS, XPU), fused or foreach."""


# ------------------------------------------------------------------------------ shared helpers


def _act_bytes(dtype: str) -> int:
    return _BYTES.get(dtype, 4)


def _flop_convention_text(conv: str, training: bool = True) -> str:
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


def _activation_bytes(s: Shape, dtype: str, checkpointing: bool, training: bool) -> int:
    """Rough bytes of activations: what backward keeps per layer, plus the logits and their gradient."""
    b = _act_bytes(dtype)
    kv = s.n_kv_heads * s.head_dim
    per_token_layer = b * (8 * s.dim + 3 * kv + 4 * s.ffn_hidden) + 4 * s.dim  # + fp32 residual
    logits = s.tokens * s.vocab_size * (b + 8)  # logits, fp32 log-softmax, gradient
    if not training:
        return s.tokens * per_token_layer + s.tokens * s.vocab_size * (b + 4)
    if checkpointing:
        return s.tokens * (s.n_layers * 4 * s.dim + per_token_layer) + logits
    return s.tokens * s.n_layers * per_token_layer + logits


def _meta_model(s: Shape) -> Any:
    import torch

    from chipbench.models.llama import Transformer

    with torch.device("meta"):
        return Transformer(s.model_args())


def batch_layout(cfg: LlamaConfig, world_size: int) -> tuple[int, int]:
    """(per-process batch, global batch) in sequences: weak scaling runs batch_size on every process;
    strong scaling splits a global batch_size evenly over them."""
    b = cfg.shape().batch_size
    if cfg.scaling == "weak" or world_size <= 1:
        return b, b * max(world_size, 1)
    if b % world_size:
        raise UsageError(
            f"scaling=strong splits the global batch_size={b} over {world_size} processes: "
            f"batch_size must be a multiple of {world_size} (or use scaling=weak: batch_size per process)"
        )
    return b // world_size, b


def _random_tokens(s: Shape, ctx: RunContext, extra: int = 1, global_batch: int | None = None) -> Any:
    """This process's rows of the global token batch (B, T + extra): every rank draws the same global
    batch from the run seed and keeps rows [rank * B, (rank + 1) * B), so one process and N processes
    see the same data. `s.batch_size` is the per-process batch B; global_batch defaults to it."""
    import torch

    rows = global_batch or s.batch_size
    gen = torch.Generator(device="cpu").manual_seed(ctx.seed)
    tokens = torch.randint(0, s.vocab_size, (rows, s.seq_len + extra), generator=gen)
    if rows != s.batch_size:
        tokens = tokens[ctx.rank * s.batch_size : (ctx.rank + 1) * s.batch_size].contiguous()
    return tokens.to(ctx.torch_device)


def _rank_shape(cfg: LlamaConfig, ctx: RunContext) -> tuple[Shape, int]:
    """(shape with this process's batch, global batch)."""
    import dataclasses

    per_rank, global_batch = batch_layout(cfg, ctx.world_size)
    return dataclasses.replace(cfg.shape(), batch_size=per_rank), global_batch


def _layout_info(cfg: LlamaConfig, ctx: RunContext, parallelism: str) -> dict[str, Any]:
    per_rank, global_batch = batch_layout(cfg, ctx.world_size)
    return {
        "parallelism": parallelism,
        "world_size": ctx.world_size,
        "scaling": cfg.scaling,
        "per_rank_batch_size": per_rank,
        "global_batch_size": global_batch,
    }


def _randn(shape: tuple[int, ...], dtype: str, ctx: RunContext, gen: Any, scale: float = 1.0) -> Any:
    import torch

    return (torch.randn(shape, generator=gen) * scale).to(device=ctx.torch_device, dtype=torch_dtype(dtype))


def _gen(ctx: RunContext) -> Any:
    import torch

    return torch.Generator(device="cpu").manual_seed(ctx.seed)


def _device_type(ctx: RunContext) -> str:
    return "cuda" if ctx.device in ("cuda", "rocm") else ctx.device


def _adamw_impl(requested: str, dev_type: str) -> str:
    """auto: fused where torch has fused AdamW kernels. On the 2-core CPU the fused step over 57M
    parameters took about 50 ms against about 590 ms for foreach."""
    if requested != "auto":
        return requested
    return "fused" if dev_type in ("cuda", "cpu", "mps", "xpu") else "foreach"


def _adamw_kwargs(impl: str) -> dict[str, Any]:
    return {"fused": True} if impl == "fused" else {"foreach": True}


# ------------------------------------------------------------------------------- training step


def _train_describe(cfg: LlamaConfig) -> dict[str, Any]:
    from chipbench.models.llama import count_params, flops_per_token, matmul_params

    s = cfg.shape()
    model = _meta_model(s)
    n = count_params(model)
    a = s.model_args()
    fpt = flops_per_token(a, s.seq_len, cfg.flop_convention)
    weights = 4 * n  # fp32 master weights
    state = 4 * n + 8 * n  # gradients + AdamW exp_avg, exp_avg_sq
    cast = 2 * n if cfg.dtype in ("bf16", "fp16") else 0  # autocast's low-precision weight copies
    act = _activation_bytes(s, cfg.dtype, cfg.activation_checkpointing, training=True)
    return {
        "parameters": n,
        "matmul_parameters": matmul_params(a),
        "ffn_hidden": s.ffn_hidden,
        "head_dim": s.head_dim,
        "shape": s.__dict__,
        "flops_per_token": fpt,
        "flops_per_step": fpt * s.tokens,
        "flop_convention": _flop_convention_text(cfg.flop_convention),
        "tokens_per_step": s.tokens,
        "memory_bytes_estimate": weights + state + cast + act,
        "memory_breakdown": {
            "weights": weights,
            "grads_and_adamw": state,
            "autocast_copies": cast,
            "activations": act,
        },
    }


def _train_plan(cfg: LlamaConfig, world_size: int, kind: str) -> dict[str, Any]:
    """Layout over `world_size` processes and a rough per-process memory estimate, without allocating."""
    import dataclasses

    from chipbench.models.llama import count_params

    per_rank, global_batch = batch_layout(cfg, world_size)
    s = dataclasses.replace(cfg.shape(), batch_size=per_rank)
    model = _meta_model(s)
    n = count_params(model)
    block = sum(p.numel() for p in model.layers[0].parameters())
    root = n - s.n_layers * block  # embedding, final norm, output head (one matrix when tied)
    low = 2 if cfg.dtype in ("bf16", "fp16") else 4
    act = _activation_bytes(s, cfg.dtype, cfg.activation_checkpointing, training=True)
    distributed = world_size > 1
    parallelism = cfg.parallel if distributed else "none"
    if parallelism == "fsdp2":
        breakdown = {
            "sharded_weights_grads_adamw": 16 * n // world_size,  # fp32 weights, grads, exp_avg, exp_avg_sq
            # The root's weights stay gathered through the forward; the running and the prefetched block.
            "gathered_weights": low * (root + 2 * block),
            "unsharded_block_grads": (low + (4 if low != 4 else 0)) * block,  # + fp32 copy to reduce
            "activations": act,
        }
        precision = (
            f"MixedPrecisionPolicy(param_dtype={cfg.dtype}, reduce_dtype=fp32) + {cfg.dtype} autocast"
            if low == 2
            else "fp32"
        )
    else:
        breakdown = {
            "weights": 4 * n,
            "grads_and_adamw": 12 * n,
            **({"ddp_gradient_buckets": 4 * n} if distributed else {}),
            "autocast_copies": 2 * n if low == 2 else 0,
            "activations": act,
        }
        precision = f"{cfg.dtype} autocast, fp32 master weights" if low == 2 else "fp32"
    out: dict[str, Any] = {
        "parallelism": parallelism,
        "world_size": world_size,
        "device": kind,
        "scaling": cfg.scaling,
        "per_rank_batch_size": per_rank,
        "global_batch_size": global_batch,
        "tokens_per_rank_step": per_rank * s.seq_len,
        "global_tokens_per_step": global_batch * s.seq_len,
        "mixed_precision": precision,
        "memory_bytes_per_rank_estimate": sum(breakdown.values()),
        "memory_breakdown_per_rank": breakdown,
    }
    if parallelism == "fsdp2":
        out["fsdp_units"] = f"{s.n_layers} blocks + root"
        out["setup_peak_bytes_per_rank"] = 4 * n
        out["init"] = (
            f"{_INIT_TEXT['full']} (peak {4 * n / 2**30:.2f} GiB of fp32 weights per rank at set-up) "
            f"when that fits in half the free memory; otherwise {_INIT_TEXT['meta'].split(' (')[0]}"
        )
    return out


def _mesh_device_type(ctx: RunContext) -> str:
    return "cuda" if ctx.device in ("cuda", "rocm") else ctx.device


_INIT_TEXT = {
    "full": "every rank builds the whole model from the run seed (the weights of a one-process run), then shards it",
    "meta": "built on the meta device, sharded, then each rank initializes its own shards (the whole "
    "fp32 model would not fit in half the free memory; weights differ from a one-process run)",
}


def _init_mode(cfg: LlamaConfig, ctx: RunContext) -> str:
    """full: build the whole fp32 model on every rank, then shard it (same weights as one process).
    meta: under FSDP2 when the whole fp32 model would take more than half the free memory."""
    if not (ctx.distributed and cfg.parallel == "fsdp2" and ctx.free_memory_bytes):
        return "full"
    from chipbench.models.llama import count_params

    full = 4 * count_params(_meta_model(cfg.shape()))
    return "full" if 2 * full <= ctx.free_memory_bytes else "meta"


def _parallelize(model: Any, cfg: LlamaConfig, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
    """Wrap the (fully built, identically initialized) model for ctx.world_size processes: FSDP2
    (fully_shard per transformer block, then the root) or DDP. Returns (module to train, info)."""
    import torch

    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.dtype)
    if cfg.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        dev = torch.device(ctx.torch_device)
        ids = [dev] if dev.type in ("cuda", "xpu") and dev.index is not None else None
        wrapped = DistributedDataParallel(model, device_ids=ids)
        amp = f"{cfg.dtype} autocast over " if low is not None else ""
        return wrapped, {"mixed_precision": f"{amp}fp32 replicas, gradients all-reduced in fp32"}

    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(_mesh_device_type(ctx), (ctx.world_size,))
    if low is not None:
        # Weights all-gathered in the low dtype (no autocast copies of them), gradients reduced in fp32
        # into fp32 sharded master weights; autocast stays on around the forward and the loss, so the
        # ops autocast runs in fp32 (softmax, cross-entropy) do so as with one process.
        mp = MixedPrecisionPolicy(param_dtype=low, reduce_dtype=torch.float32)
        name = {"bf16": "bf16", "fp16": "fp16"}[cfg.dtype]
        precision = f"FSDP2 MixedPrecisionPolicy(param_dtype={name}, reduce_dtype=fp32) + {name} autocast"
    else:
        mp = MixedPrecisionPolicy()
        precision = "fp32 (all-gather and reduce-scatter in fp32)"
    layers = list(model.layers)
    for i, layer in enumerate(layers):
        # The last block is not resharded after the forward: the backward starts with it (torchtitan).
        fully_shard(layer, mesh=mesh, mp_policy=mp, reshard_after_forward=i < len(layers) - 1)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model, {"mixed_precision": precision, "fsdp_units": len(layers) + 1}


def make_trainer(cfg: LlamaConfig, ctx: RunContext) -> tuple[Any, Any, dict[str, Any]]:
    """(model, train(inputs, targets) -> loss, info): one optimizer step per call.

    Over more than one process (ctx.distributed, default process group already initialized), every
    rank builds the same model from the run seed (so every rank, and a one-process run, start from
    the same weights), then it is sharded (cfg.parallel=fsdp2) or replicated (ddp); the returned loss
    is this rank's, over its own rows. Under FSDP2, when the whole fp32 model would not fit in half
    the free memory, it is built on the meta device instead and each rank initializes its shards.
    A fall-back from fused AdamW, taken on the first step, is added to `info` then."""
    import contextlib
    import warnings

    import torch
    import torch.nn.functional as F

    from chipbench.models.llama import Transformer

    s = cfg.shape()
    dev_type = _device_type(ctx)
    init = _init_mode(cfg, ctx)
    torch.manual_seed(ctx.seed)
    with torch.device("meta" if init == "meta" else ctx.torch_device):
        model = Transformer(s.model_args(), activation_checkpointing=cfg.activation_checkpointing)
    model.train()
    par_info: dict[str, Any] = {}
    if ctx.distributed:
        model, par_info = _parallelize(model, cfg, ctx)
        par_info["init"] = _INIT_TEXT[init]
    if init == "meta":
        model.to_empty(device=ctx.torch_device)  # this rank's shards only
        model.reset_rope(ctx.torch_device)
        # Each rank draws its own shards (CUDA: DTensor's RNG tracker, from rank 0's state).
        torch.manual_seed(ctx.seed + ctx.rank)
        with warnings.catch_warnings():  # "DTensor random operators may not have complete support on cpu"
            warnings.filterwarnings("ignore", message="DTensor random operators")
            model.init_weights()
    impl = _adamw_impl(cfg.adamw_impl, dev_type)
    params = list(model.parameters())  # after sharding: DTensors under FSDP2

    def adamw(impl: str) -> Any:
        return torch.optim.AdamW(
            params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1, **_adamw_kwargs(impl)
        )

    opt = adamw(impl)
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.dtype)
    scaler = torch.amp.GradScaler(dev_type) if cfg.dtype == "fp16" else None
    fwd = torch.compile(model) if cfg.compile else model
    info: dict[str, Any] = {}
    state = {"first": True}

    def autocast() -> Any:
        return torch.autocast(dev_type, dtype=low) if low is not None else contextlib.nullcontext()

    def opt_step() -> None:
        nonlocal opt
        try:
            if scaler is None:
                opt.step()
            else:
                scaler.step(opt)
        except (RuntimeError, NotImplementedError) as exc:
            if not (state["first"] and ctx.distributed and impl == "fused"):
                raise
            # Fused AdamW over sharded (DTensor) parameters needs a torch with the kernel's sharding
            # rule; without one, the first step falls back to foreach, and the fall-back is recorded.
            opt = adamw("foreach")
            info["optimizer"] = "AdamW foreach"
            info["optimizer_fallback"] = f"fused AdamW failed on sharded parameters: {str(exc)[:300]}"
            if scaler is None:
                opt.step()  # (under GradScaler this one step is skipped: its gradients were unscaled)
        state["first"] = False

    def train(inputs: Any, targets: Any) -> Any:
        with autocast():
            logits = fwd(inputs)  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            # Under FSDP2 the gradients are DTensor shards: the norm is the global one.
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            opt_step()
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            opt_step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    info.update(
        {
            "optimizer": f"AdamW {impl}",
            "precision": {
                "fp32": "fp32",
                "bf16": "bf16 autocast, fp32 master weights",
                "fp16": "fp16 autocast, fp32 master weights, GradScaler",
            }[cfg.dtype],
            **par_info,
        }
    )
    return model, train, info


def _train_setup(cfg: LlamaConfig, ctx: RunContext) -> Prepared:
    from chipbench.models.llama import count_params, flops_per_token

    s, global_batch = _rank_shape(cfg, ctx)  # s.batch_size: this process's rows
    model, train, info = make_trainer(cfg, ctx)
    tokens = _random_tokens(s, ctx, global_batch=global_batch)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]  # (B, T) each
    state: dict[str, Any] = {"first_s": None}

    def step() -> Any:
        if state["first_s"] is None:
            t0 = time.perf_counter()
            out = train(inputs, targets)
            out.item()  # waits for the device
            state["first_s"] = time.perf_counter() - t0
            return out
        return train(inputs, targets)

    def after() -> dict[str, Any]:
        key = "compile_first_step_s" if cfg.compile else "first_step_s"
        fallback = (
            {k: info[k] for k in ("optimizer", "optimizer_fallback")} if "optimizer_fallback" in info else {}
        )
        return {key: state["first_s"], **fallback}

    fpt = flops_per_token(s.model_args(), s.seq_len, cfg.flop_convention)
    layout = _layout_info(cfg, ctx, cfg.parallel if ctx.distributed else "none")
    return Prepared(
        step=step,
        work=Work(  # one process's work: its own rows
            flops=fpt * s.tokens,
            tokens=s.tokens,
            samples=s.batch_size,
            model_flops=True,
            flop_convention=_flop_convention_text(cfg.flop_convention),
        ),
        info={
            **info,
            **layout,
            "flavor": cfg.flavor,
            "shape": s.__dict__,
            "parameters": count_params(model),
            "flops_per_token": fpt,
            "compile": cfg.compile,
            "activation_checkpointing": cfg.activation_checkpointing,
        },
        after=after,
    )


# ------------------------------------------------------------------------------ prefill forward


def _forward_describe(cfg: LlamaConfig) -> dict[str, Any]:
    from chipbench.models.llama import count_params, flops_per_token

    s = cfg.shape()
    n = count_params(_meta_model(s))
    fpt = flops_per_token(s.model_args(), s.seq_len, cfg.flop_convention, training=False)
    weights = _act_bytes(cfg.dtype) * n
    act = _activation_bytes(s, cfg.dtype, False, training=False)
    return {
        "parameters": n,
        "flops_per_token": fpt,
        "flops_per_step": fpt * s.tokens,
        "flop_convention": _flop_convention_text(cfg.flop_convention, training=False),
        "tokens_per_step": s.tokens,
        "memory_bytes_estimate": weights + act,
    }


def _forward_plan(cfg: LlamaConfig, world_size: int, kind: str) -> dict[str, Any]:
    """Inference over N processes: each its own rows of the global batch, a whole model each, no
    communication."""
    import dataclasses

    per_rank, global_batch = batch_layout(cfg, world_size)
    d = _forward_describe(dataclasses.replace(cfg, batch_size=per_rank))
    return {
        "parallelism": "none (data parallel without communication: a whole model per process)",
        "world_size": world_size,
        "device": kind,
        "scaling": cfg.scaling,
        "per_rank_batch_size": per_rank,
        "global_batch_size": global_batch,
        "memory_bytes_per_rank_estimate": d["memory_bytes_estimate"],
    }


def _forward_setup(cfg: LlamaConfig, ctx: RunContext) -> Prepared:
    import torch

    from chipbench.models.llama import Transformer, flops_per_token

    # Over N processes: data parallel without communication, each its own rows of the global batch
    # and a whole copy of the model (`parallel` does not apply to inference).
    s, global_batch = _rank_shape(cfg, ctx)  # s.batch_size: this process's rows
    torch.manual_seed(ctx.seed)
    with torch.device(ctx.torch_device):
        model = Transformer(s.model_args())
    model = model.to(torch_dtype(cfg.dtype)).eval()  # inference: weights in the run dtype
    fwd = torch.compile(model) if cfg.compile else model
    tokens = _random_tokens(s, ctx, extra=0, global_batch=global_batch)  # (B, T)

    @torch.inference_mode()
    def step() -> Any:
        return fwd(tokens)  # (B, T, V)

    fpt = flops_per_token(s.model_args(), s.seq_len, cfg.flop_convention, training=False)
    return Prepared(
        step=step,
        work=Work(
            flops=fpt * s.tokens,
            tokens=s.tokens,
            samples=s.batch_size,
            model_flops=True,
            flop_convention=_flop_convention_text(cfg.flop_convention, training=False),
        ),
        info={
            "flavor": cfg.flavor,
            "shape": s.__dict__,
            "flops_per_token": fpt,
            "compile": cfg.compile,
            **_layout_info(cfg, ctx, "none"),
        },
    )


# ------------------------------------------------------------------------------ microbenchmarks


def _fwd_bwd(fn: Any, inputs: list[Any], mode: str, gen: Any, ctx: RunContext) -> Any:
    """A step running fn(*inputs) (fwd) or fn then the gradient of every input that requires grad."""
    import torch

    if mode == "fwd":

        def fwd_step() -> Any:
            with torch.no_grad():
                return fn(*inputs)

        return fwd_step
    with torch.no_grad():
        ref = fn(*inputs)
    grad_out = torch.randn(ref.shape, generator=gen).to(device=ctx.torch_device, dtype=ref.dtype)
    wrt = [t for t in inputs if getattr(t, "requires_grad", False)]

    def step() -> Any:
        out = fn(*inputs)
        return torch.autograd.grad(out, wrt, grad_out)

    return step


def _gemm_dims(cfg: GemmConfig) -> tuple[int, int, int]:
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


def _gemm_flops(cfg: GemmConfig) -> float:
    m, k, n = _gemm_dims(cfg)
    return (2.0 if cfg.mode == "fwd" else 6.0) * m * k * n


def _gemm_describe(cfg: GemmConfig) -> dict[str, Any]:
    m, k, n = _gemm_dims(cfg)
    b = _act_bytes(cfg.dtype)
    return {
        "m_k_n": [m, k, n],
        "flops_per_step": _gemm_flops(cfg),
        "memory_bytes_estimate": b * (m * k + k * n + m * n) * (1 if cfg.mode == "fwd" else 2),
    }


def _gemm_setup(cfg: GemmConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    m, k, n = _gemm_dims(cfg)
    gen = _gen(ctx)
    x = _randn((m, k), cfg.dtype, ctx, gen)  # (B*T, in)
    w = _randn((n, k), cfg.dtype, ctx, gen, 0.02)  # (out, in), as nn.Linear stores it
    if cfg.mode == "fwd_bwd":
        x.requires_grad_(True)
        w.requires_grad_(True)
    step = _fwd_bwd(F.linear, [x, w], cfg.mode, gen, ctx)
    return Prepared(
        step=step,
        work=Work(
            flops=_gemm_flops(cfg),
            tokens=m,
            flop_convention="2*m*k*n forward; x3 with backward (input and weight gradients)",
        ),
        info={"flavor": cfg.flavor, "op": cfg.op, "m_k_n": [m, k, n], "mode": cfg.mode},
    )


def _attention_flops(cfg: AttentionConfig) -> float:
    s = cfg.shape()
    fwd = 4.0 * s.batch_size * s.n_heads * s.seq_len * s.seq_len * s.head_dim
    if cfg.flop_convention == "causal_halved":
        fwd /= 2
    return fwd if cfg.mode == "fwd" else 3 * fwd


def _attention_describe(cfg: AttentionConfig) -> dict[str, Any]:
    s = cfg.shape()
    b = _act_bytes(cfg.dtype)
    qkvo = b * s.tokens * s.head_dim * (2 * s.n_heads + 2 * s.n_kv_heads)
    return {
        "flops_per_step": _attention_flops(cfg),
        "memory_bytes_estimate": qkvo * (1 if cfg.mode == "fwd" else 3),
    }


def _attention_setup(cfg: AttentionConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    s = cfg.shape()
    B, T, H, K, D = s.batch_size, s.seq_len, s.n_heads, s.n_kv_heads, s.head_dim
    gen = _gen(ctx)
    q = _randn((B, H, T, D), cfg.dtype, ctx, gen)  # (B, H, T, D)
    k = _randn((B, K, T, D), cfg.dtype, ctx, gen)  # (B, K, T, D)
    v = _randn((B, K, T, D), cfg.dtype, ctx, gen)  # (B, K, T, D)
    if cfg.mode == "fwd_bwd":
        for t in (q, k, v):
            t.requires_grad_(True)

    def sdpa(q: Any, k: Any, v: Any) -> Any:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != K)

    return Prepared(
        step=_fwd_bwd(sdpa, [q, k, v], cfg.mode, gen, ctx),
        work=Work(
            flops=_attention_flops(cfg),
            tokens=s.tokens,
            flop_convention=(
                "4*B*H*T^2*D forward, x3 with backward, "
                + ("causal halved" if cfg.flop_convention == "causal_halved" else "causal not halved")
            ),
        ),
        info={"flavor": cfg.flavor, "shape_bhtd": [B, H, T, D], "n_kv_heads": K, "mode": cfg.mode},
    )


def _elementwise_describe(passes: tuple[int, int]) -> Any:
    """describe() for a memory-bound op touching `numel(cfg)` elements `passes` (fwd, fwd_bwd) times."""

    def describe(cfg: MicroConfig) -> dict[str, Any]:
        nbytes = _act_bytes(cfg.dtype) * _numel(cfg) * passes[0 if cfg.mode == "fwd" else 1]
        return {"bytes_per_step": nbytes, "memory_bytes_estimate": 2 * nbytes}

    return describe


def _numel(cfg: MicroConfig) -> int:
    s = cfg.shape()
    name = type(cfg).__name__
    if name == "RopeConfig":
        return s.tokens * (s.n_heads + s.n_kv_heads) * s.head_dim
    if name == "SwigluConfig":
        return s.tokens * s.ffn_hidden
    if name == "CrossEntropyConfig":
        return s.tokens * s.vocab_size
    return s.tokens * s.dim  # RMSNorm


@dataclass(frozen=True)
class RmsnormConfig(MicroConfig):
    """F.rms_norm over (B*T, dim) with a weight."""


@dataclass(frozen=True)
class RopeConfig(MicroConfig):
    """Rotary embedding applied to q (B, T, H, D) and k (B, T, K, D)."""


@dataclass(frozen=True)
class SwigluConfig(MicroConfig):
    """silu(gate) * up over (B*T, ffn_hidden), from a fused (B*T, 2*ffn_hidden) projection output."""


# Passes over the op's tensors, (fwd, fwd_bwd): reads and writes each count once.
_RMSNORM_PASSES = (2, 5)  # fwd: read x, write y; bwd: read x, dy, write dx
_ROPE_PASSES = (2, 4)  # fwd: read, write q and k; bwd: read dy, write dx
_SWIGLU_PASSES = (3, 8)  # counted in units of B*T*ffn_hidden: fwd read gate, up, write y; bwd 5 more
_CE_PASSES = (1, 3)  # fwd: read logits; bwd: read logits again, write their gradient


def _bytes_work(cfg: MicroConfig, passes: tuple[int, int], convention: str) -> Work:
    s = cfg.shape()
    nbytes = _act_bytes(cfg.dtype) * _numel(cfg) * passes[0 if cfg.mode == "fwd" else 1]
    return Work(bytes=float(nbytes), tokens=s.tokens, bytes_convention=convention)


def _rmsnorm_setup(cfg: RmsnormConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    s = cfg.shape()
    gen = _gen(ctx)
    x = _randn((s.tokens, s.dim), cfg.dtype, ctx, gen)  # (B*T, C)
    w = 1.0 + _randn((s.dim,), cfg.dtype, ctx, gen, 0.1)  # (C,)
    if cfg.mode == "fwd_bwd":
        x.requires_grad_(True)
        w.requires_grad_(True)

    def norm(x: Any, w: Any) -> Any:
        return F.rms_norm(x, (s.dim,), w, 1e-5)

    return Prepared(
        step=_fwd_bwd(norm, [x, w], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, _RMSNORM_PASSES, "fwd: read x + write y; bwd: read x, dy + write dx (weight not counted)"
        ),
        info={"flavor": cfg.flavor, "shape": [s.tokens, s.dim], "mode": cfg.mode},
    )


def _rope_setup(cfg: RopeConfig, ctx: RunContext) -> Prepared:
    from chipbench.models.llama import apply_rope, rope_cache

    s = cfg.shape()
    B, T, H, K, D = s.batch_size, s.seq_len, s.n_heads, s.n_kv_heads, s.head_dim
    gen = _gen(ctx)
    q = _randn((B, T, H, D), cfg.dtype, ctx, gen)  # (B, T, H, D)
    k = _randn((B, T, K, D), cfg.dtype, ctx, gen)  # (B, T, K, D)
    freqs_cis = rope_cache(T, D, s.rope_theta, device=ctx.torch_device)  # (T, D/2) complex
    if cfg.mode == "fwd_bwd":
        q.requires_grad_(True)
        k.requires_grad_(True)

    def rope(q: Any, k: Any) -> Any:
        import torch

        # One output so the backward runs for both: the flattened rotated q and k side by side.
        return torch.cat((apply_rope(q, freqs_cis).flatten(), apply_rope(k, freqs_cis).flatten()))

    return Prepared(
        step=_fwd_bwd(rope, [q, k], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, _ROPE_PASSES, "read + write q and k (fwd); read dy + write dx (bwd); tables not counted"
        ),
        info={
            "flavor": cfg.flavor,
            "q": [B, T, H, D],
            "k": [B, T, K, D],
            "mode": cfg.mode,
            "note": "includes one concat of the outputs",
        },
    )


def _swiglu_setup(cfg: SwigluConfig, ctx: RunContext) -> Prepared:
    import torch.nn.functional as F

    s = cfg.shape()
    gen = _gen(ctx)
    h = _randn((s.tokens, 2 * s.ffn_hidden), cfg.dtype, ctx, gen)  # (B*T, 2F): fused gate/up output
    if cfg.mode == "fwd_bwd":
        h.requires_grad_(True)

    def swiglu(h: Any) -> Any:
        gate, up = h.chunk(2, dim=-1)  # (B*T, F) each
        return F.silu(gate) * up  # (B*T, F)

    return Prepared(
        step=_fwd_bwd(swiglu, [h], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, _SWIGLU_PASSES, "fwd: read gate, up + write y; bwd: read gate, up, dy + write dgate, dup"
        ),
        info={"flavor": cfg.flavor, "tokens": s.tokens, "ffn_hidden": s.ffn_hidden, "mode": cfg.mode},
    )


def _ce_setup(cfg: CrossEntropyConfig, ctx: RunContext) -> Prepared:
    import torch
    import torch.nn.functional as F

    s = cfg.shape()
    gen = _gen(ctx)
    logits = _randn((s.tokens, s.vocab_size), cfg.dtype, ctx, gen)  # (B*T, V)
    targets = torch.randint(0, s.vocab_size, (s.tokens,), generator=gen).to(ctx.torch_device)  # (B*T,)
    if cfg.mode == "fwd_bwd":
        logits.requires_grad_(True)

    def ce(logits: Any) -> Any:
        return F.cross_entropy(logits.float(), targets)  # fp32, as autocast runs it

    return Prepared(
        step=_fwd_bwd(ce, [logits], cfg.mode, gen, ctx),
        work=_bytes_work(
            cfg, _CE_PASSES, "logits in the run dtype: fwd reads them once; bwd reads and writes once"
        ),
        info={"flavor": cfg.flavor, "shape": [s.tokens, s.vocab_size], "mode": cfg.mode},
    )


def _layer_param_shapes(s: Shape) -> list[tuple[int, ...]]:
    hd = s.head_dim
    return [
        ((s.n_heads + 2 * s.n_kv_heads) * hd, s.dim),  # wqkv
        (s.dim, s.n_heads * hd),  # wo
        (2 * s.ffn_hidden, s.dim),  # w13
        (s.dim, s.ffn_hidden),  # w2
        (s.dim,),  # attention_norm
        (s.dim,),  # ffn_norm
    ]


def _layer_numel(s: Shape) -> int:
    total = 0
    for shp in _layer_param_shapes(s):
        n = 1
        for d in shp:
            n *= d
        total += n
    return total


def _adamw_describe(cfg: AdamwConfig) -> dict[str, Any]:
    n = _layer_numel(cfg.shape())
    b = _act_bytes(cfg.dtype)
    return {"parameters": n, "bytes_per_step": 7 * b * n, "memory_bytes_estimate": 4 * b * n}


def _adamw_setup(cfg: AdamwConfig, ctx: RunContext) -> Prepared:
    import torch

    s = cfg.shape()
    gen = _gen(ctx)
    params = []
    for shp in _layer_param_shapes(s):
        p = torch.nn.Parameter(_randn(shp, cfg.dtype, ctx, gen, 0.02))
        p.grad = _randn(shp, cfg.dtype, ctx, gen, 1e-3)
        params.append(p)
    impl = _adamw_impl(cfg.adamw_impl, _device_type(ctx))
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, **_adamw_kwargs(impl))
    n = _layer_numel(s)
    return Prepared(
        step=opt.step,
        work=Work(
            bytes=float(7 * _act_bytes(cfg.dtype) * n),
            bytes_convention="per parameter: read p, grad, exp_avg, exp_avg_sq; write p, exp_avg, exp_avg_sq",
        ),
        info={
            "flavor": cfg.flavor,
            "parameters": n,
            "optimizer": f"AdamW {impl}",
        },
    )


# ------------------------------------------------------------------------------ registrations

_TINY = {"flavor": "tiny"}
_TINY_MICRO = {"flavor": "tiny", "seq_len": 64, "batch_size": 4}
_8B = {"flavor": "llama3-8b"}
_8B_LAYER = {"flavor": "llama3-8b", "n_layers": 1, "seq_len": 64, "batch_size": 1, "vocab_size": 2048}

TRAIN_STEP = register(
    Benchmark(
        name="llama.train_step",
        doc="Llama training step (forward, cross-entropy, backward, clip, AdamW): tokens/s, TFLOP/s, MFU.",
        config_cls=LlamaConfig,
        setup=_train_setup,
        describe=_train_describe,
        plan=_train_plan,
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
        setup=_forward_setup,
        describe=_forward_describe,
        plan=_forward_plan,
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
        setup=_gemm_setup,
        describe=_gemm_describe,
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
        setup=_attention_setup,
        describe=_attention_describe,
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
        setup=_rmsnorm_setup,
        describe=_elementwise_describe(_RMSNORM_PASSES),
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
        setup=_rope_setup,
        describe=_elementwise_describe(_ROPE_PASSES),
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
        setup=_swiglu_setup,
        describe=_elementwise_describe(_SWIGLU_PASSES),
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
        setup=_ce_setup,
        describe=_elementwise_describe(_CE_PASSES),
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
        setup=_adamw_setup,
        describe=_adamw_describe,
        suites={
            "smoke": [{"flavor": "tiny"}],
            "default": [{"flavor": "llama3-8b"}],
            "full": [{"flavor": f} for f in ("llama3-8b", "llama3-70b")],
        },
    )
)
