"""The DLRM family's configs: the model presets (numbers from `shared/reference.md`), `DLRMConfig` and
`EmbeddingConfig`, and `resolve`, which fills a config's empty fields from its preset. No torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chipbench.core.config import check
from chipbench.core.dtypes import DType
from chipbench.core.wire import Overrides
from chipbench.workloads.common import Scaling

Preset = Literal["tiny", "kaggle", "terabyte", "model1", "dcnv2"]
Sharding = Literal["auto", "table_wise", "row_wise", "column_wise", "table_row_wise", "data_parallel"]
SHARDINGS = ("auto", "table_wise", "row_wise", "column_wise", "table_row_wise", "data_parallel")
BackendChoice = Literal["auto", "torchrec", "torch", "hybrid"]
"""What a config asks for; auto is resolved by `backend.choose_backend`."""
Backend = Literal["torchrec", "torch", "hybrid"]
"""What a run uses (chipbench.models.dlrm.Backend)."""
Interaction = Literal["dot", "dcn"]
EmbeddingOptimizer = Literal["sgd", "adagrad", "rowwise_adagrad"]
DenseOptimizer = Literal["sgd", "adagrad", "adam"]
Pooling = Literal["fixed", "normal"]
IndexDist = Literal["uniform", "zipf"]
HugePages = Literal["auto", "on", "off"]

# Criteo Kaggle, Criteo Terabyte, MLPerf DLRMv2 (40M cap) cardinalities and DLRMv2 multi-hot sizes.
LIST_A = (1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
          5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572)  # fmt: skip
LIST_B = (45833188, 36746, 17245, 7413, 20243, 3, 7114, 1441, 62, 29275261, 1572176, 345138, 10, 2209,
          11267, 128, 4, 974, 14, 48937457, 11316796, 40094537, 452104, 12606, 104, 35)  # fmt: skip
LIST_C = (40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10, 2209,
          11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36)  # fmt: skip
LIST_D = (3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1)


def _preset(
    rows: tuple[int, ...],
    dim: int,
    lookups: tuple[int, ...],
    bottom: tuple[int, ...],
    top: tuple[int, ...],
    interaction: Interaction = "dot",
    **dcn: int,
) -> Overrides:
    """A preset's fields: tables' rows, embedding dim, lookups per table, the MLPs, the interaction."""
    return {"rows": rows, "embedding_dim": dim, "lookups": lookups, "bottom_mlp": bottom, "top_mlp": top,
            "interaction": interaction, **dcn}  # fmt: skip


PRESETS: dict[str, Overrides] = {
    "tiny": _preset((1000, 500, 2000, 100), 16, (1, 2, 4, 3), (13, 64, 16), (64, 32, 1), dcn_layers=2, dcn_rank=16),
    "kaggle": _preset(LIST_A, 16, (1,), (13, 512, 256, 64, 16), (512, 256, 1)),
    "terabyte": _preset(LIST_B, 64, (1,), (13, 512, 256, 64), (512, 512, 256, 1)),
    "model1": _preset((1_000_000,) * 8, 64, (100,), (13, 512, 512, 64), (1024, 1024, 1024, 1)),
    "dcnv2": _preset(LIST_C, 128, LIST_D, (13, 512, 256, 128), (1024, 1024, 512, 256, 1), "dcn", dcn_layers=3, dcn_rank=512),
}  # fmt: skip
_DCN_DEFAULTS = {"dcn_layers": 3, "dcn_rank": 512}


@dataclass(frozen=True)
class DLRMConfig:
    """A DLRM-style ranking model, its synthetic data and its optimizers. Empty / 0 / `preset` fields
    take the preset's value."""

    preset: Preset = "kaggle"
    """Model shape: tiny, kaggle, terabyte, model1 or dcnv2 (numbers in shared/reference.md)."""
    rows: tuple[int, ...] = ()
    """Rows per table; one value applies to every table of the preset; empty = preset."""
    max_rows: int = 0
    """Cap on every table's rows (0 = no cap): a large preset on a small device, same shape of work.
    -1 = fit to the device: before running, the largest cap (rounded down to 1, 2 or 5 x 10^k) whose
    memory estimate stays within FIT_SHARE of free memory; the cap used is recorded in the result."""
    embedding_dim: int = 0
    """Embedding dimension (0 = preset)."""
    lookups: tuple[int, ...] = ()
    """Ids per table per sample (mean when pooling=normal); one value or one per table; empty = preset."""
    pooling: Pooling = "fixed"
    """fixed: exactly `lookups` ids per bag; normal: round(N(L, L/2)) clipped to at least 1."""
    bottom_mlp: tuple[int, ...] = ()
    """Bottom MLP sizes starting with the number of dense features, e.g. 13-512-256-64 (empty = preset)."""
    top_mlp: tuple[int, ...] = ()
    """Top MLP sizes after the interaction, ending in 1, e.g. 512-256-1 (empty = preset)."""
    interaction: Literal["preset", "dot", "dcn"] = "preset"
    """dot (DLRM) or dcn (DCNv2 low-rank cross network)."""
    dcn_layers: int = 0
    """Cross layers of the DCN interaction (0 = preset, else 3)."""
    dcn_rank: int = 0
    """Rank of the low-rank cross layers (0 = preset, else 512)."""
    batch_size: int = 2048
    """Samples per step."""
    index_dist: IndexDist = "zipf"
    """Id distribution: uniform, or Zipf(zipf_alpha) mapped through a fixed random permutation of rows."""
    zipf_alpha: float = 1.15
    """Zipf exponent (1.15 is FBGEMM's suggestion for training, 1.09 for inference)."""
    embedding_optimizer: EmbeddingOptimizer = "adagrad"
    """Applied sparsely: fused into backward (torchrec) or on sparse gradients (torch)."""
    dense_optimizer: DenseOptimizer = "adagrad"
    """Optimizer of the MLPs and the interaction."""
    lr: float = 0.005
    """Learning rate of both optimizers (MLPerf DLRMv2 uses Adagrad at 0.005)."""
    backend: BackendChoice = "auto"
    """torchrec (FBGEMM fused kernels), torch (nn.EmbeddingBag, sparse grads), hybrid (CPU + SGD: torch
    embedding_bag forward, exact SGD by index_add_ on FBGEMM's tables, TorchRec dense modules); auto picks
    and records."""
    dtype: DType = "auto"
    """auto: fp32 on CPUs (bf16 autocast slowed DLRM's small matmuls there), the device's choice
    elsewhere (bf16 autocast on GPUs with bf16 units); the value used is in the result's config.
    bf16 / fp16 autocast the dense parts; embeddings stay fp32."""
    num_batches: int = 4
    """Distinct batches generated before timing and cycled, so caches do not flatter the figures."""
    sharding: Sharding = "auto"
    """Across processes with backend torchrec: how DistributedModelParallel lays the tables out. auto =
    TorchRec's planner decides per table; a type forces it on every table (ParameterConstraints). TorchRec
    shards table_wise, column_wise and data_parallel on CPU; row_wise and table_row_wise need CUDA."""
    hugepages: HugePages = "auto"
    """CPU tables (weights and per-row optimizer state) on 2 MiB transparent huge pages, advised and
    moved onto them after construction (same addresses, same values): fewer TLB misses on random rows. auto = where Linux offers
    THP; on = required (error if not); off = the allocator's 4 KiB pages, as the DLRM reference
    implementation runs. Other devices: not applicable (recorded)."""
    scaling: Scaling = "weak"
    """Across processes: weak = batch_size is per rank (the global batch grows with the world size);
    strong = batch_size is the global batch, each rank takes batch_size / world_size of it."""

    def __post_init__(self) -> None:
        r = resolve(self)
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.max_rows >= -1, "max_rows must be >= 0 (0 = no cap), or -1 to fit the device")
        check(self.num_batches >= 1, "num_batches must be >= 1")
        check(
            self.sharding in SHARDINGS,
            f"sharding must be one of {', '.join(SHARDINGS)}, got {self.sharding!r}",
        )
        check(self.scaling in ("weak", "strong"), f"scaling must be weak or strong, got {self.scaling!r}")
        check(
            self.hugepages in ("auto", "on", "off"),
            f"hugepages must be auto, on or off, got {self.hugepages!r}",
        )
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.zipf_alpha > 0, f"zipf_alpha must be > 0, got {self.zipf_alpha}")
        check(len(r.rows) >= 1 and min(r.rows) >= 1, "rows must be positive")
        check(r.embedding_dim >= 1, "embedding_dim must be >= 1")
        check(
            len(self.lookups) in (0, 1, len(r.rows)),
            f"lookups needs 1 or {len(r.rows)} values (one per table), got {len(self.lookups)}",
        )
        check(min(r.lookups) >= 1, "lookups must be >= 1")
        check(len(r.bottom_mlp) >= 2 and min(r.bottom_mlp) >= 1, "bottom_mlp needs >= 2 positive sizes")
        check(len(r.top_mlp) >= 2 and min(r.top_mlp) >= 1, "top_mlp needs >= 2 positive sizes")
        check(r.top_mlp[-1] == 1, f"top_mlp must end in 1 (one logit), got {r.top_mlp[-1]}")
        check(r.dcn_layers >= 1 and r.dcn_rank >= 1, "dcn_layers and dcn_rank must be >= 1")
        if r.interaction == "dot":
            check(
                r.bottom_mlp[-1] == r.embedding_dim,
                f"dot interaction needs bottom_mlp to end at embedding_dim ({r.embedding_dim}), "
                f"got {r.bottom_mlp[-1]}",
            )
        else:
            check(
                r.bottom_mlp[-1] == r.embedding_dim,
                "dcn interaction stacks the dense vector with the embeddings: bottom_mlp must end at embedding_dim",
            )


@dataclass(frozen=True)
class EmbeddingConfig(DLRMConfig):
    """The embedding lookup alone (all tables of the preset)."""

    mode: Literal["fwd", "fwd_bwd"] = "fwd_bwd"
    """fwd: pooled lookup only; fwd_bwd: lookup, backward and the (sparse / fused) optimizer update."""


@dataclass(frozen=True)
class Resolved:
    """A config's model and data shape with the preset's values filled in and the row cap applied."""

    rows: tuple[int, ...]
    """Rows per table, capped by max_rows (when > 0)."""
    rows_uncapped: tuple[int, ...]
    """Rows per table before the cap."""
    embedding_dim: int
    lookups: tuple[int, ...]
    """Ids per bag, one value per table."""
    bottom_mlp: tuple[int, ...]
    top_mlp: tuple[int, ...]
    interaction: Interaction
    dcn_layers: int
    dcn_rank: int

    @property
    def num_tables(self) -> int:
        return len(self.rows)

    @property
    def interaction_width(self) -> int:
        """Width of the interaction's output (the top MLP's input): D + (F+1)F/2 (dot), (F+1)D (dcn)."""
        f, d = self.num_tables, self.embedding_dim
        return d + (f + 1) * f // 2 if self.interaction == "dot" else (f + 1) * d


def resolve(cfg: DLRMConfig) -> Resolved:
    """The config with preset values filled in and the row cap applied (pure Python, no allocation)."""
    p = PRESETS[cfg.preset]
    rows = tuple(cfg.rows) or tuple(p["rows"])
    if len(cfg.rows) == 1:
        rows = rows * len(p["rows"])
    uncapped = rows
    if cfg.max_rows > 0:  # -1 (fit to the device) is resolved before running; describe shows it uncapped
        rows = tuple(min(n, cfg.max_rows) for n in rows)
    lookups = tuple(cfg.lookups) or tuple(p["lookups"])
    if len(lookups) == 1:
        lookups = lookups * len(rows)
    return Resolved(
        rows=rows,
        rows_uncapped=uncapped,
        embedding_dim=cfg.embedding_dim or p["embedding_dim"],
        lookups=lookups,
        bottom_mlp=tuple(cfg.bottom_mlp) or tuple(p["bottom_mlp"]),
        top_mlp=tuple(cfg.top_mlp) or tuple(p["top_mlp"]),
        interaction=p["interaction"] if cfg.interaction == "preset" else cfg.interaction,
        dcn_layers=cfg.dcn_layers or p.get("dcn_layers", _DCN_DEFAULTS["dcn_layers"]),
        dcn_rank=cfg.dcn_rank or p.get("dcn_rank", _DCN_DEFAULTS["dcn_rank"]),
    )


def resolved_fields(cfg: DLRMConfig) -> Overrides:
    """The values of the fields a config leaves to its preset (`describe`'s config row): rows before
    the cap, the MLPs, the interaction and its sizes."""
    r = resolve(cfg)
    return {"rows": r.rows_uncapped, "embedding_dim": r.embedding_dim, "lookups": r.lookups,
            "bottom_mlp": r.bottom_mlp, "top_mlp": r.top_mlp, "interaction": r.interaction,
            "dcn_layers": r.dcn_layers, "dcn_rank": r.dcn_rank}  # fmt: skip
