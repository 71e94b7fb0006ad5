"""What an HSTU step does, counted without torch and without allocating: parameters, FLOPs (for the very
history lengths a run draws: `data.history_lengths` is pure Python), bytes, the memory estimate,
`describe` and `fit`.

Conventions stated in every result:
- FLOPs: 2 per multiply-add of every matrix product (preprocessor, UVQK and output projections, attention
  q k^T and w v, task head); attention counted over the valid pairs only (the mask's open pairs:
  h(h+1)/2 + c(h+1) per user and head); layer norms, SiLU, the mask and the bias not counted; training =
  3x forward. The pairs each path computes (padding and masked pairs included) are recorded beside it.
- embedding bytes: FBGEMM's TBE accounting, fp32 output + weight rows read per looked-up token; backward
  counted as 2x forward.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from chipbench.core.contract import Description
from chipbench.core.wire import Overrides
from chipbench.workloads.dlrm.accounting import nice_floor
from chipbench.workloads.hstu.config import (
    AttentionConfig,
    HSTUConfig,
    Resolved,
    SequenceEmbeddingConfig,
    resolve,
)
from chipbench.workloads.hstu.data import history_lengths

FLOP_CONVENTION = (
    "2 per MAC of every matmul; attention over valid (masked-in) pairs only; norms and SiLU not counted; "
    "training = 3x forward"
)
BYTES_CONVENTION = "FBGEMM TBE: fp32 output + weight rows per token; backward = 2x forward"


def lookup_bytes(dim: int, tokens: float) -> float:
    """The item table's forward bytes for `tokens` lookups (BYTES_CONVENTION): an fp32 output row and a
    weight row per token."""
    return 8.0 * dim * tokens


@dataclass(frozen=True)
class Pairs:
    """Attention pairs of one batch, per head and layer."""

    valid: int
    """Pairs the mask opens."""
    jagged: int
    """Pairs the jagged path computes (h^2 + c h + c per user)."""
    padded: int
    """Pairs the padded path computes (B N^2)."""


def pairs(history: tuple[int, ...], c: int) -> Pairs:
    valid = sum(h * (h + 1) // 2 + c * (h + 1) for h in history)
    jagged = sum(h * h + c * h + c for h in history)
    return Pairs(valid, jagged, len(history) * (max(history, default=0) + c) ** 2)


@dataclass(frozen=True)
class StepCounts:
    """FLOPs (forward) and sizes of one batch."""

    users: int
    tokens: int
    """L: history and candidate tokens."""
    candidates: int
    """K."""
    pairs: Pairs
    preprocessor_flops: float
    projection_flops: float
    """UVQK and output projections, all layers."""
    attention_flops: float
    """Valid pairs, all layers."""
    attention_flops_computed: dict[str, float]
    """What each path's matmuls compute, padding and masked pairs included (jagged adds the diagonal)."""
    head_flops: float

    @property
    def forward_flops(self) -> float:
        return self.preprocessor_flops + self.projection_flops + self.attention_flops + self.head_flops


def step_counts(r: Resolved, history: tuple[int, ...]) -> StepCounts:
    c = r.candidates
    tokens = sum(history) + c * len(history)
    k = c * len(history)
    p = pairs(history, c)
    per_pair = 2.0 * r.n_heads * (r.attn_dim + r.linear_dim) * r.n_layers
    hv = r.n_heads * r.linear_dim
    return StepCounts(
        users=len(history),
        tokens=tokens,
        candidates=k,
        pairs=p,
        preprocessor_flops=tokens * 2.0 * (2 * r.dim * r.hidden + r.hidden * r.dim),
        projection_flops=tokens * 2.0 * r.n_layers * (r.dim * r.uvqk_width + hv * r.dim),
        attention_flops=p.valid * per_pair,
        attention_flops_computed={"jagged": p.jagged * per_pair, "padded": p.padded * per_pair},
        head_flops=k * 2.0 * (r.dim * r.hidden + r.hidden * r.num_tasks),
    )


@dataclass(frozen=True)
class Arithmetic:
    resolved: Resolved
    table_params: int
    dense_params: int
    counts: list[StepCounts]
    """One per synthetic batch (the steps cycle through them)."""
    memory_bytes: float
    breakdown: dict[str, int]

    def mean(self, field: str) -> float:
        return sum(getattr(c, field) for c in self.counts) / len(self.counts)


def dense_params(r: Resolved, relative_bias: bool) -> int:
    c, p, t, hv = r.dim, r.hidden, r.num_tasks, r.n_heads * r.linear_dim
    actions = (2**t + 1) * c
    pre = 2 * c * p + p + p * c + c + 2 * c  # MLP 2C -> P -> C, LayerNorm
    layer = 2 * c + c * r.uvqk_width + r.uvqk_width + 2 * hv + hv * c + c
    if relative_bias:
        layer += r.max_seq_len + 64
    head = 2 * c + c * p + p + p * t + t  # final LayerNorm, MLP C -> P -> T
    return actions + pre + r.n_layers * layer + head


def arithmetic(cfg: HSTUConfig, seed: int = 0, training: bool = True) -> Arithmetic:
    """Every count `describe`, `fit` and the set-ups' `Work` use, for the batches a run at `seed` draws."""
    r = resolve(cfg)
    path = "padded" if cfg.attention == "padded" else "jagged"
    counts = [step_counts(r, history_lengths(cfg, seed, i)) for i in range(cfg.num_batches)]
    dense = dense_params(r, cfg.relative_bias)
    table = r.items * r.dim
    big = max(counts, key=lambda s: s.tokens)
    # per token and layer, saved for backward: x, norm, uvqk pre/post SiLU, attention out, its norm, u*y
    width = 3 * r.dim + 2 * r.uvqk_width + 3 * r.n_heads * r.linear_dim
    pair_bytes = 4.0 * r.n_heads * (big.pairs.padded if path == "padded" else big.pairs.jagged)
    layers = r.n_layers if training else 1  # inference keeps one layer's activations alive
    activations = layers * (4.0 * big.tokens * width + 3 * pair_bytes) + 4.0 * big.tokens * 4 * r.dim
    if path == "padded":
        activations += big.users * (big.pairs.padded / max(big.users, 1))  # the bool mask
    table_bytes = int(4.0 * (table + r.items))
    data = int(sum(40.0 * s.tokens for s in counts))
    breakdown: dict[str, int]
    if isinstance(cfg, SequenceEmbeddingConfig):  # the table alone: its lookups' output and gradient
        breakdown = {"item_table_and_rowwise_state": table_bytes, "lookups": int(16.0 * big.tokens * r.dim)}
    elif isinstance(cfg, AttentionConfig):  # one layer's attention on q, k, v; no table
        qkv = 4.0 * big.tokens * r.n_heads * (2 * r.attn_dim + 2 * r.linear_dim) * (2 if training else 1)
        breakdown = {"qkv_and_output": int(qkv), "scores": int(3 * pair_bytes if training else pair_bytes)}
    else:
        breakdown = {
            "item_table_and_rowwise_state": table_bytes,
            "dense_weights_grads_adamw": int(4.0 * dense * (4 if training else 1)),
            "activations": int(activations),
            "sparse_grads": int(8.0 * big.tokens * r.dim) if training else 0,
        }
    breakdown["synthetic_batches"] = data
    return Arithmetic(r, table, dense, counts, float(sum(breakdown.values())), breakdown)


def describe(cfg: HSTUConfig) -> Description:
    """Parameters, FLOPs per step (valid pairs, and what each path computes) and memory, at seed 0."""
    a = arithmetic(cfg)
    r = a.resolved
    c0 = a.counts[0]
    timed: dict[str, float] = {}
    if isinstance(cfg, AttentionConfig):
        mult = 3 if cfg.mode == "fwd_bwd" else 1
        timed = {"attention_one_layer_valid_flops_per_step": mult * c0.attention_flops / r.n_layers}
    return Description(
        memory_bytes_estimate=int(a.memory_bytes),
        facts={
            "preset": cfg.preset,
            "items": r.items,
            "items_uncapped": r.items_uncapped,
            "max_rows": cfg.max_rows or None,
            "layers": r.n_layers,
            "heads": r.n_heads,
            "dim": r.dim,
            "attn_dim_per_head": r.attn_dim,
            "linear_dim_per_head": r.linear_dim,
            "hidden": r.hidden,
            "parameters": a.table_params + a.dense_params,
            "item_table_parameters": a.table_params,
            "dense_parameters": a.dense_params,
            "users_per_step": cfg.batch_size,
            "history": {
                "distribution": cfg.history_dist,
                "mean": r.avg_history,
                "max": r.max_history,
                "mean_drawn": sum(history_lengths(cfg, 0, 0)) / max(cfg.batch_size, 1),
            },
            "candidates_per_user": r.candidates,
            "tokens_per_step": c0.tokens,
            "attention_pairs_per_head_and_layer": dataclasses.asdict(c0.pairs),
            "flops_per_step": {
                "forward_valid": c0.forward_flops,
                "training_valid": 3 * c0.forward_flops,
                "attention_forward_valid": c0.attention_flops,
                "attention_forward_computed": c0.attention_flops_computed,
            },
            "flop_convention": FLOP_CONVENTION,
            "memory_breakdown_bytes": a.breakdown,
            **timed,
        },
    )


FIT_SHARE = 0.5
"""Share of free memory a fitted case may take in all (the attention's blocks can outweigh the table)."""
TABLE_SHARE = {"cpu": 0.1, "mps": 0.1}
"""Share the item table may take on CPUs: its set-up stays in seconds (elsewhere: up to FIT_SHARE)."""


def fit(cfg: HSTUConfig, free_bytes: int, kind: str = "cpu") -> Overrides:
    """Overrides that make a `max_rows=-1` case fit (the item table capped; empty for other cases)."""
    if cfg.max_rows != -1:
        return {}
    uncapped = dataclasses.replace(cfg, max_rows=0)
    per_row = 4.0 * (resolve(uncapped).dim + 1)  # fp32 row + its row-wise Adagrad state
    rest = arithmetic(dataclasses.replace(cfg, max_rows=1)).memory_bytes - per_row
    table_budget = min(TABLE_SHARE.get(kind, FIT_SHARE) * free_bytes, FIT_SHARE * free_bytes - rest)
    rows = int(table_budget / per_row)
    if rows >= resolve(uncapped).items:
        return {"max_rows": 0}
    # below 1,000 rows the rest does not fit either: the memory check then says so, in one line
    return {"max_rows": nice_floor(max(rows, 1000))}
