"""HSTU generative-recommender workloads (MLPerf DLRMv3's ranking model class): a training step,
inference, the jagged attention alone and the item table's sequence lookups alone.

The model lives in `chipbench.models.hstu`. This package: `config` (presets from `shared/reference.md`),
`accounting` (history lengths, FLOPs, bytes, memory, describe, fit: no torch), `data` (the synthetic
users), `plan` (the layout over processes) and `setup` (what is timed). Importing it registers the
benchmarks and imports no torch.
"""

from __future__ import annotations

from chipbench.core.registry import Family, grid, suites
from chipbench.workloads.hstu.accounting import arithmetic, describe, fit
from chipbench.workloads.hstu.config import (
    PRESETS,
    AttentionConfig,
    HSTUConfig,
    SequenceEmbeddingConfig,
    resolve,
    resolved_fields,
)
from chipbench.workloads.hstu.data import history_lengths
from chipbench.workloads.hstu.plan import plan
from chipbench.workloads.hstu.setup import (
    attention_setup,
    build,
    embedding_setup,
    inference_setup,
    train_setup,
)

__all__ = [
    "ATTENTION",
    "EMBEDDING",
    "INFERENCE",
    "PRESETS",
    "TRAIN_STEP",
    "AttentionConfig",
    "HSTUConfig",
    "SequenceEmbeddingConfig",
    "arithmetic",
    "build",
    "describe",
    "fit",
    "history_lengths",
    "resolve",
    "train_setup",
]

TIMED = (
    "chipbench.workloads.hstu.data",
    "chipbench.workloads.dlrm.data",
    "chipbench.workloads.common",
    "chipbench.models.hstu",
    "chipbench.models.dlrm_embeddings",
)
"""Modules the steps run besides `setup`: describe, plan, accounting and config are not in the hash."""

_TINY = {"preset": "tiny", "batch_size": 8}
_DLRMV3 = {"preset": "dlrmv3", "max_rows": -1, "batch_size": 32}  # the published shapes and batch
# The DLRMv3 shapes (layers, widths, 1,024-long histories, 2,048 candidates per user) at 2 users per step
# instead of 32 in the default suite: a 32-user training step is about 4 TFLOP of valid work, 10 s or more
# on a CPU; the item table fitted to the device. The full suite runs the published batch.
_DEFAULT = [{**_DLRMV3, "batch_size": 2}]
_ATTN = {"preset": "dlrmv3", "batch_size": 4, "items": 1000}
_FWD_BWD = ("fwd", "fwd_bwd")
_FULL = [_DLRMV3, {"preset": "recsys-examples", "max_rows": -1, "batch_size": 8}]

_HSTU = Family("hstu", describe=describe, timed=TIMED, fit=fit, plan=plan, resolved=resolved_fields)

TRAIN_STEP = _HSTU.add(
    "train_step", HSTUConfig, train_setup,
    "HSTU ranking training step: sequence embeddings, HSTU layers, multitask head, backward, "
    "row-wise Adagrad (table) + AdamW (dense).",
    suites([_TINY], _DEFAULT, _FULL),
)  # fmt: skip

INFERENCE = _HSTU.add(
    "inference", HSTUConfig, inference_setup,
    "HSTU ranking forward for a batch of users and their candidates (latency percentiles).",
    suites([_TINY], _DEFAULT, grid(_DLRMV3, batch_size=(1, 8, 32))),
)  # fmt: skip

# The attention alone: independent per rank, no table to fit or lay out.
ATTENTION = _HSTU.add(
    "attention", AttentionConfig, attention_setup,
    "The jagged HSTU attention alone (mode=fwd|fwd_bwd): FLOPs over valid pairs, padding waste.",
    suites(
        # smoke: forward and backward in one case (the default suite splits them)
        [{**_TINY, "mode": "fwd_bwd"}],
        grid({**_ATTN, "batch_size": 2}, mode=_FWD_BWD),
        [
            {**c, "max_history": 2 * c["avg_history"]}
            for c in grid(_ATTN, mode=_FWD_BWD, attention=("jagged", "padded"), avg_history=(256, 1024, 4096))
        ],
    ),
    fit=None, plan=None,
)  # fmt: skip

EMBEDDING = _HSTU.add(
    "embedding", SequenceEmbeddingConfig, embedding_setup,
    "The item table's sequence lookups alone (mode=fwd|fwd_bwd); GB/s in FBGEMM's accounting.",
    suites(
        [{**_TINY, "mode": "fwd_bwd"}],
        grid({**_DLRMV3, "batch_size": 8}, mode=_FWD_BWD),
        grid(_DLRMV3, mode=_FWD_BWD, backend=("fbgemm", "torch")),
    ),
    plan=None,
)  # fmt: skip
