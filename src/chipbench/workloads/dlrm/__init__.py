"""DLRM-style ranking workloads: a training step, inference, and the pieces a step decomposes into.

The model lives in `chipbench.models.dlrm` (TorchRec + FBGEMM backend, or plain PyTorch). This package:
`config` (presets from `shared/reference.md`), `accounting` (FLOPs, bytes, memory, describe, fit: no
torch), `data` (the synthetic batches), `backend` (backend choice, sharding checks, huge pages), `plan`
(the layout over processes) and `setup` (what is timed). Importing it registers the benchmarks and imports
no torch. Conventions of the figures: `accounting`.
"""

from __future__ import annotations

from chipbench.core.registry import Family, grid, suites
from chipbench.workloads.dlrm.accounting import (
    FIT_SHARE,
    arithmetic,
    describe,
    describe_interaction,
    describe_mlp,
    fit,
)
from chipbench.workloads.dlrm.backend import check_hugepages, choose_backend, place_tables
from chipbench.workloads.dlrm.config import (
    LIST_A,
    PRESETS,
    DLRMConfig,
    EmbeddingConfig,
    Resolved,
    resolve,
    resolved_fields,
)
from chipbench.workloads.dlrm.data import make_batches, zipf_ranks
from chipbench.workloads.dlrm.plan import plan as plan_layout
from chipbench.workloads.dlrm.setup import (
    build_model,
    embedding_setup,
    inference_setup,
    interaction_setup,
    mlp_setup,
    model_spec,
    train_setup,
)

__all__ = [
    "EMBEDDING",
    "FIT_SHARE",
    "INFERENCE",
    "INTERACTION",
    "LIST_A",
    "MLP",
    "PRESETS",
    "TIMED",
    "TRAIN_STEP",
    "DLRMConfig",
    "EmbeddingConfig",
    "Resolved",
    "arithmetic",
    "build_model",
    "check_hugepages",
    "choose_backend",
    "describe",
    "fit",
    "make_batches",
    "model_spec",
    "place_tables",
    "resolve",
    "train_setup",
    "zipf_ranks",
]

TIMED = (
    "chipbench.workloads.dlrm.data",
    "chipbench.workloads.dlrm.backend",
    "chipbench.workloads.common",
    "chipbench.models.dlrm",
    "chipbench.models.dlrm_embeddings",
    "chipbench.models.dlrm_sharding",
    "chipbench.platform.hugepages",
)
"""The modules whose code the steps run besides `setup` (in the version hash with it); describe, plan,
accounting and config are not: changing them keeps every baseline."""

# dtype=auto means fp32 for DLRM on CPUs (DLRM's reference recipes train in fp32; `--dtype` still
# overrides): bf16 autocast made the small DLRM matmuls 5-50x slower on the development CPU, although
# that CPU reports avx512_bf16 and runs large bf16 matmuls faster than fp32.
_AUTO_DTYPE = {"cpu": "fp32"}
_TINY = {"preset": "tiny", "batch_size": 256}
_DEFAULT = [
    {"preset": "kaggle", "max_rows": -1, "batch_size": 2048},
    {"preset": "model1", "max_rows": -1, "batch_size": 512},
    {"preset": "dcnv2", "max_rows": -1, "batch_size": 256},
]
_FWD_BWD = ("fwd", "fwd_bwd")

_DLRM = Family(
    "dlrm",
    describe=describe,
    timed=TIMED,
    fit=fit,
    plan=plan_layout,
    auto_dtype=_AUTO_DTYPE,
    resolved=resolved_fields,
)

TRAIN_STEP = _DLRM.add(
    "train_step", DLRMConfig, train_setup,
    "DLRM training step: forward, BCE, backward, sparse embedding + dense optimizers.",
    suites(
        [_TINY],
        _DEFAULT,
        [
            *_DEFAULT,
            *grid(_DEFAULT, backend=("torch",)),
            {"preset": "terabyte", "max_rows": 2_000_000, "batch_size": 2048},
        ],
    ),
)  # fmt: skip

INFERENCE = _DLRM.add(
    "inference", DLRMConfig, inference_setup,
    "DLRM forward in eval mode (latency percentiles and samples/s at batch_size).",
    suites([_TINY], _DEFAULT, grid(_DEFAULT, batch_size=(64, 512, 4096))),
)  # fmt: skip

EMBEDDING = _DLRM.add(
    "embedding", EmbeddingConfig, embedding_setup,
    "Embedding-bag lookup alone (mode=fwd|fwd_bwd); GB/s in FBGEMM's and the full accounting.",
    suites(
        grid(_TINY, mode=_FWD_BWD),
        grid(_DEFAULT, mode=_FWD_BWD),
        grid(_DEFAULT, mode=_FWD_BWD, backend=("torchrec", "torch")),
    ),
)  # fmt: skip

# The dense parts alone have no layout over processes to show.
MLP = _DLRM.add(
    "mlp", DLRMConfig, mlp_setup, "Bottom + top MLPs forward + backward (dense TFLOP/s).",
    suites([_TINY], _DEFAULT, _DEFAULT), describe=describe_mlp, plan=None,
)  # fmt: skip

INTERACTION = _DLRM.add(
    "interaction", DLRMConfig, interaction_setup,
    "Feature interaction (dot or DCNv2 cross layers) forward + backward.",
    suites([_TINY, {**_TINY, "interaction": "dcn"}], _DEFAULT, _DEFAULT),
    describe=describe_interaction, plan=None,
)  # fmt: skip
