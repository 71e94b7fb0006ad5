"""The Llama family's configs: the flavor table, the shape a flavor and its overrides resolve to, the
whole-model config (training step, prefill forward) and one config per microbenchmark.

Every config takes `flavor` (a row of FLAVORS) and the model fields of the reference table; a model
field left at None comes from the flavor, so `--set flavor=llama3-8b --set n_layers=2` runs two
layers at Llama 3 8B's exact shapes. No torch here: the model is only built in `Shape.model_args`'s
callers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from chipbench.core.config import check
from chipbench.core.dtypes import DType
from chipbench.core.wire import Overrides
from chipbench.workloads.common import Scaling

FlavorName = Literal[
    "tiny", "debug", "llama2-7b", "llama3.2-1b", "llama3.2-3b", "llama3-8b", "llama3-70b", "llama3.1-405b"
]
FlopConvention = Literal["torchtitan", "causal_halved"]
AdamwImpl = Literal["auto", "fused", "foreach"]
Parallel = Literal["fsdp2", "ddp"]
Mode = Literal["fwd", "fwd_bwd"]
GemmOp = Literal["qkv", "out", "gate_up", "down", "head"]

# One row per flavor. seq_len and batch_size are the defaults for whole-model runs at that flavor.
FLAVORS: dict[str, Overrides] = {
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
        """The model's ModelArgs for this shape: the fields both have, by name, and seq_len as max_seq_len
        (imports the model, hence torch, when called)."""
        from chipbench.models.llama import ModelArgs

        both = {f.name for f in dataclasses.fields(self)} & {f.name for f in dataclasses.fields(ModelArgs)}
        return ModelArgs(**{name: getattr(self, name) for name in both}, max_seq_len=self.seq_len)


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

    compile: bool | Literal["auto"] = "auto"
    """torch.compile the step (model and loss; the first step, which compiles, is reported apart).
    auto: compile where the configured step has at least 1e11 model FLOPs (there fusing its elementwise
    passes is worth the compile, about 20-40 s on the 2-core CPU) and a compiler is present; eager below
    (the smoke suite's shapes, most of the default suite's). The choice and why are recorded."""
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
        check(
            isinstance(self.compile, bool) or self.compile == "auto",
            f"compile must be true, false or auto, got {self.compile!r}",
        )
        check(self.parallel in ("fsdp2", "ddp"), f"parallel must be fsdp2 or ddp, got {self.parallel!r}")
        check(self.scaling in ("weak", "strong"), f"scaling must be weak or strong, got {self.scaling!r}")


# ------------------------------------------------------------------------------ microbenchmarks


@dataclass(frozen=True)
class MicroConfig(LlamaShapeConfig):
    """One piece of a Llama layer at a flavor's exact shapes, on B*T = batch_size*seq_len tokens."""

    flavor: FlavorName = "llama3-8b"
    """Row of the flavor table whose shapes are used."""
    mode: Mode = "fwd_bwd"
    """fwd: forward only; fwd_bwd: forward and backward."""


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


@dataclass(frozen=True)
class RmsnormConfig(MicroConfig):
    """F.rms_norm over (B*T, dim) with a weight."""


@dataclass(frozen=True)
class RopeConfig(MicroConfig):
    """Rotary embedding applied to q (B, T, H, D) and k (B, T, K, D)."""


@dataclass(frozen=True)
class SwigluConfig(MicroConfig):
    """silu(gate) * up over (B*T, ffn_hidden), from a fused (B*T, 2*ffn_hidden) projection output."""


def resolved_fields(cfg: Any) -> Overrides:
    """The values of the model fields a config leaves to its flavor (`describe`'s config row)."""
    return dataclasses.asdict(cfg.shape()) if isinstance(cfg, LlamaShapeConfig) else {}
