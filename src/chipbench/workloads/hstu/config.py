"""The HSTU family's configs: the model presets (numbers from `shared/reference.md`), `HSTUConfig`,
`AttentionConfig` and `SequenceEmbeddingConfig`, and `resolve`, which fills empty fields from the preset.
No torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chipbench.core.config import check
from chipbench.core.dtypes import DType
from chipbench.core.wire import Overrides
from chipbench.workloads.common import Scaling

Preset = Literal["tiny", "dlrmv3", "recsys-examples"]
AttentionChoice = Literal["auto", "jagged", "padded"]
BackendChoice = Literal["auto", "fbgemm", "torch"]
HistoryDist = Literal["lognormal", "fixed"]
IndexDist = Literal["uniform", "zipf"]

PRESETS: dict[str, Overrides] = {
    "tiny": {
        "items": 10_000,
        "dim": 32,
        "n_layers": 2,
        "n_heads": 2,
        "attn_dim": 16,
        "linear_dim": 16,
        "hidden": 32,
        "avg_history": 24,
        "max_history": 64,
        "candidates": 8,
        "input_dropout": 0.2,
        "linear_dropout": 0.1,
    },
    # MLPerf DLRMv3 (generative-recommenders dlrm_v3/configs.py): 5 layers, 4 heads, QK and linear dims
    # 128 per head, embedding dim 512, preprocessor hidden 256, dropouts 0.2 / 0.1, 10M-row item table
    # (1B for the 1 TB model: --set items=1000000000); batch 32, average history 1,024, 2,048 candidates.
    "dlrmv3": {
        "items": 10_000_000,
        "dim": 512,
        "n_layers": 5,
        "n_heads": 4,
        "attn_dim": 128,
        "linear_dim": 128,
        "hidden": 256,
        "avg_history": 1024,
        "max_history": 2048,
        "candidates": 2048,
        "input_dropout": 0.2,
        "linear_dropout": 0.1,
    },
    # NVIDIA recsys-examples' HSTU benchmark: 8 layers, hidden 1,024, 4 heads of dim 256, histories up to
    # 4,096, 256 candidates. Not published there (our choices): the 10M-row table, the average history
    # (half the longest), the preprocessor / head width (the model width) and the dropouts (DLRMv3's).
    "recsys-examples": {
        "items": 10_000_000,
        "dim": 1024,
        "n_layers": 8,
        "n_heads": 4,
        "attn_dim": 256,
        "linear_dim": 256,
        "hidden": 1024,
        "avg_history": 2048,
        "max_history": 4096,
        "candidates": 256,
        "input_dropout": 0.2,
        "linear_dropout": 0.1,
    },
}

LOGNORMAL_SIGMA = 0.6
"""Spread of log(history length): a long right tail, as real user histories have."""


@dataclass(frozen=True)
class HSTUConfig:
    """An HSTU ranking model (DLRMv3-style), its synthetic users and its optimizers. Zero fields take
    the preset's value."""

    preset: Preset = "dlrmv3"
    """Model and data shape: tiny, dlrmv3 or recsys-examples (numbers in shared/reference.md)."""
    items: int = 0
    """Rows of the item table (0 = preset: 10M; the 1 TB DLRMv3 model has 1B)."""
    max_rows: int = 0
    """Cap on the item table's rows (0 = none); -1 = fit to the device: the largest cap (1, 2 or 5 x
    10^k) whose memory estimate fits, recorded in the result. The shape of the work is unchanged."""
    n_layers: int = 0
    """HSTU layers (0 = preset)."""
    batch_size: int = 32
    """Users per step."""
    avg_history: int = 0
    """Mean history length per user (0 = preset)."""
    max_history: int = 0
    """Longest history (0 = preset); longer draws are clipped to it."""
    candidates: int = 0
    """Candidates ranked per user (0 = preset)."""
    history_dist: HistoryDist = "lognormal"
    """lognormal: log-normal lengths (sigma 0.6, mean avg_history before clipping to [0, max_history]),
    a long tail like real histories; fixed: every user has avg_history."""
    index_dist: IndexDist = "zipf"
    """Item ids: uniform, or Zipf(zipf_alpha) through a fixed random permutation of the rows."""
    zipf_alpha: float = 1.15
    attention: AttentionChoice = "auto"
    """jagged: per user, only the blocks the mask opens; padded: (B, N, N) scores with the mask, the
    public reference's PyTorch path. auto = jagged (recorded with why)."""
    backend: BackendChoice = "auto"
    """fbgemm: the item table on FBGEMM's table-batched kernel (row-wise Adagrad fused into backward) and
    FBGEMM's jagged <-> padded operators; torch: nn.Embedding with sparse gradients and index copies.
    auto = fbgemm where it imports and the device has its kernels (recorded)."""
    relative_bias: bool = False
    """Learned relative position + time bias in every layer (HSTU's optional bias)."""
    dropout: bool = True
    """The preset's input and linear dropout in training (false: none, for exact comparisons)."""
    lr: float = 0.001
    """Learning rate of AdamW (dense part) and row-wise Adagrad (item table)."""
    dtype: DType = "auto"
    """auto: the device's choice (bf16 where it has bf16 units), recorded; bf16 / fp16 autocast the
    dense parts; the item table stays fp32."""
    num_batches: int = 2
    """Distinct batches generated before timing and cycled."""
    scaling: Scaling = "weak"
    """Across processes: weak = batch_size users per rank; strong = batch_size users in all."""

    def __post_init__(self) -> None:
        r = resolve(self)
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.max_rows >= -1, "max_rows must be >= 0 (0 = no cap), or -1 to fit the device")
        check(self.num_batches >= 1, "num_batches must be >= 1")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.zipf_alpha > 0, f"zipf_alpha must be > 0, got {self.zipf_alpha}")
        check(r.items >= 1 and r.n_layers >= 1, "items and n_layers must be >= 1")
        check(r.avg_history >= 0 and r.candidates >= 0, "avg_history and candidates must be >= 0")
        check(
            r.max_history >= r.avg_history,
            f"max_history ({r.max_history}) must be >= avg_history ({r.avg_history})",
        )
        check(r.max_history + r.candidates >= 1, "a user needs at least one token (history or candidate)")
        check(self.scaling in ("weak", "strong"), f"scaling must be weak or strong, got {self.scaling!r}")


@dataclass(frozen=True)
class AttentionConfig(HSTUConfig):
    """The jagged HSTU attention alone, one layer's worth: q, k, v in, attention out."""

    mode: Literal["fwd", "fwd_bwd"] = "fwd_bwd"


@dataclass(frozen=True)
class SequenceEmbeddingConfig(HSTUConfig):
    """The item table's sequence lookups alone (every history and candidate token of the batch)."""

    mode: Literal["fwd", "fwd_bwd"] = "fwd_bwd"
    """fwd: lookups; fwd_bwd: lookups, backward and the row-wise Adagrad update."""


@dataclass(frozen=True)
class Resolved:
    """A config's shape with the preset filled in and the row cap applied."""

    items: int
    items_uncapped: int
    dim: int
    n_layers: int
    n_heads: int
    attn_dim: int
    linear_dim: int
    hidden: int
    avg_history: int
    max_history: int
    candidates: int
    input_dropout: float
    linear_dropout: float
    num_tasks: int = 2

    @property
    def max_seq_len(self) -> int:
        return self.max_history + self.candidates

    @property
    def uvqk_width(self) -> int:
        return self.n_heads * (2 * self.linear_dim + 2 * self.attn_dim)


def resolve(cfg: HSTUConfig) -> Resolved:
    p = PRESETS[cfg.preset]
    items = cfg.items or p["items"]
    capped = min(items, cfg.max_rows) if cfg.max_rows > 0 else items
    avg = cfg.avg_history or p["avg_history"]
    return Resolved(
        items=capped,
        items_uncapped=items,
        dim=p["dim"],
        n_layers=cfg.n_layers or p["n_layers"],
        n_heads=p["n_heads"],
        attn_dim=p["attn_dim"],
        linear_dim=p["linear_dim"],
        hidden=p["hidden"],
        avg_history=avg,
        max_history=cfg.max_history or max(p["max_history"], avg),
        candidates=cfg.candidates or p["candidates"],
        input_dropout=p["input_dropout"] if cfg.dropout else 0.0,
        linear_dropout=p["linear_dropout"] if cfg.dropout else 0.0,
    )


def resolved_fields(cfg: HSTUConfig) -> Overrides:
    """The values of the fields a config leaves to its preset (`describe`'s config row)."""
    r = resolve(cfg)
    return {"items": r.items_uncapped, "n_layers": r.n_layers, "avg_history": r.avg_history,
            "max_history": r.max_history, "candidates": r.candidates}  # fmt: skip
