"""DLRM-style ranking workloads: a training step, inference, and the pieces a step decomposes into.

The model lives in `chipbench.models.dlrm` (TorchRec + FBGEMM backend, or plain PyTorch). This module
holds the config (presets from `shared/reference.md`), the synthetic data, the arithmetic `describe`
needs (no allocation, no torch import) and the benchmark registrations.

Conventions stated in every result:
- dense FLOPs: 2 per multiply-add of the MLPs and the interaction (bmm or cross layers); a training step
  counts 3x forward (backward = 2x forward). Embedding pooling is counted in bytes, not FLOPs.
- embedding bytes: FBGEMM's TBE benchmark accounting (fp32 output + weight rows read; backward counted as
  2x forward bytes); `gbps_with_indices_and_optimizer` adds int64 ids, lengths and optimizer state
  read + write.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from chipbench.bench import Benchmark, Prepared, RunContext, Work, register
from chipbench.config import check

DType = Literal["auto", "fp32", "bf16", "fp16"]
Sharding = Literal["auto", "table_wise", "row_wise", "column_wise", "table_row_wise", "data_parallel"]
SHARDINGS = ("auto", "table_wise", "row_wise", "column_wise", "table_row_wise", "data_parallel")
Preset = Literal["tiny", "kaggle", "terabyte", "model1", "dcnv2"]

# Criteo Kaggle, Criteo Terabyte, MLPerf DLRMv2 (40M cap) cardinalities and DLRMv2 multi-hot sizes.
LIST_A = (1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
          5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572)  # fmt: skip
LIST_B = (45833188, 36746, 17245, 7413, 20243, 3, 7114, 1441, 62, 29275261, 1572176, 345138, 10, 2209,
          11267, 128, 4, 974, 14, 48937457, 11316796, 40094537, 452104, 12606, 104, 35)  # fmt: skip
LIST_C = (40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10, 2209,
          11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36)  # fmt: skip
LIST_D = (3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "rows": (1000, 500, 2000, 100),
        "embedding_dim": 16,
        "lookups": (1, 2, 4, 3),
        "bottom_mlp": (13, 64, 16),
        "top_mlp": (64, 32, 1),
        "interaction": "dot",
        "dcn_layers": 2,
        "dcn_rank": 16,
    },
    "kaggle": {
        "rows": LIST_A,
        "embedding_dim": 16,
        "lookups": (1,),
        "bottom_mlp": (13, 512, 256, 64, 16),
        "top_mlp": (512, 256, 1),
        "interaction": "dot",
    },
    "terabyte": {
        "rows": LIST_B,
        "embedding_dim": 64,
        "lookups": (1,),
        "bottom_mlp": (13, 512, 256, 64),
        "top_mlp": (512, 512, 256, 1),
        "interaction": "dot",
    },
    "model1": {
        "rows": (1_000_000,) * 8,
        "embedding_dim": 64,
        "lookups": (100,),
        "bottom_mlp": (13, 512, 512, 64),
        "top_mlp": (1024, 1024, 1024, 1),
        "interaction": "dot",
    },
    "dcnv2": {
        "rows": LIST_C,
        "embedding_dim": 128,
        "lookups": LIST_D,
        "bottom_mlp": (13, 512, 256, 128),
        "top_mlp": (1024, 1024, 512, 256, 1),
        "interaction": "dcn",
        "dcn_layers": 3,
        "dcn_rank": 512,
    },
}
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
    pooling: Literal["fixed", "normal"] = "fixed"
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
    index_dist: Literal["uniform", "zipf"] = "zipf"
    """Id distribution: uniform, or Zipf(zipf_alpha) mapped through a fixed random permutation of rows."""
    zipf_alpha: float = 1.15
    """Zipf exponent (1.15 is FBGEMM's suggestion for training, 1.09 for inference)."""
    embedding_optimizer: Literal["sgd", "adagrad", "rowwise_adagrad"] = "adagrad"
    """Applied sparsely: fused into backward (torchrec) or on sparse gradients (torch)."""
    dense_optimizer: Literal["sgd", "adagrad", "adam"] = "adagrad"
    """Optimizer of the MLPs and the interaction."""
    lr: float = 0.005
    """Learning rate of both optimizers (MLPerf DLRMv2 uses Adagrad at 0.005)."""
    backend: Literal["auto", "torchrec", "torch", "hybrid"] = "auto"
    """torchrec (FBGEMM fused kernels), torch (nn.EmbeddingBag, sparse grads), hybrid (CPU + SGD: torch
    embedding_bag forward, FBGEMM fused SGD backward, TorchRec dense modules); auto picks and records."""
    dtype: DType = "auto"
    """fp32 (auto) for all; bf16 / fp16 autocast the dense parts, embeddings stay fp32."""
    num_batches: int = 4
    """Distinct batches generated before timing and cycled, so caches do not flatter the figures."""
    sharding: Sharding = "auto"
    """Across processes with backend torchrec: how DistributedModelParallel lays the tables out. auto =
    TorchRec's planner decides per table; a type forces it on every table (ParameterConstraints). TorchRec
    shards table_wise, column_wise and data_parallel on CPU; row_wise and table_row_wise need CUDA."""
    hugepages: Literal["auto", "on", "off"] = "auto"
    """CPU tables (weights and per-row optimizer state) on 2 MiB transparent huge pages, advised and
    collapsed in place after construction: fewer TLB misses on random rows. auto = where Linux offers
    THP; on = required (error if not); off = the allocator's 4 KiB pages, as the DLRM reference
    implementation runs. Other devices: not applicable (recorded)."""
    scaling: Literal["weak", "strong"] = "weak"
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
        check(len(r["rows"]) >= 1 and min(r["rows"]) >= 1, "rows must be positive")
        check(r["embedding_dim"] >= 1, "embedding_dim must be >= 1")
        check(
            len(self.lookups) in (0, 1, len(r["rows"])),
            f"lookups needs 1 or {len(r['rows'])} values (one per table), got {len(self.lookups)}",
        )
        check(min(r["lookups"]) >= 1, "lookups must be >= 1")
        check(len(r["bottom_mlp"]) >= 2 and min(r["bottom_mlp"]) >= 1, "bottom_mlp needs >= 2 positive sizes")
        check(len(r["top_mlp"]) >= 2 and min(r["top_mlp"]) >= 1, "top_mlp needs >= 2 positive sizes")
        check(r["top_mlp"][-1] == 1, f"top_mlp must end in 1 (one logit), got {r['top_mlp'][-1]}")
        check(r["dcn_layers"] >= 1 and r["dcn_rank"] >= 1, "dcn_layers and dcn_rank must be >= 1")
        if r["interaction"] == "dot":
            check(
                r["bottom_mlp"][-1] == r["embedding_dim"],
                f"dot interaction needs bottom_mlp to end at embedding_dim ({r['embedding_dim']}), "
                f"got {r['bottom_mlp'][-1]}",
            )
        else:
            check(
                r["bottom_mlp"][-1] == r["embedding_dim"],
                "dcn interaction stacks the dense vector with the embeddings: bottom_mlp must end at embedding_dim",
            )


@dataclass(frozen=True)
class EmbeddingConfig(DLRMConfig):
    """The embedding lookup alone (all tables of the preset)."""

    mode: Literal["fwd", "fwd_bwd"] = "fwd_bwd"
    """fwd: pooled lookup only; fwd_bwd: lookup, backward and the (sparse / fused) optimizer update."""


def resolve(cfg: DLRMConfig) -> dict[str, Any]:
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
    return {
        "rows": rows,
        "rows_uncapped": uncapped,
        "embedding_dim": cfg.embedding_dim or p["embedding_dim"],
        "lookups": lookups,
        "bottom_mlp": tuple(cfg.bottom_mlp) or tuple(p["bottom_mlp"]),
        "top_mlp": tuple(cfg.top_mlp) or tuple(p["top_mlp"]),
        "interaction": p["interaction"] if cfg.interaction == "preset" else cfg.interaction,
        "dcn_layers": cfg.dcn_layers or p.get("dcn_layers", _DCN_DEFAULTS["dcn_layers"]),
        "dcn_rank": cfg.dcn_rank or p.get("dcn_rank", _DCN_DEFAULTS["dcn_rank"]),
    }


# ---------------------------------------------------------------------------------------------------
# Arithmetic (describe): no torch, no allocation


def _mlp_macs(sizes: tuple[int, ...]) -> int:
    return sum(a * b for a, b in itertools.pairwise(sizes))


def _mlp_params(sizes: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def _interaction_width(r: dict[str, Any]) -> int:
    f, d = len(r["rows"]), r["embedding_dim"]
    return d + (f + 1) * f // 2 if r["interaction"] == "dot" else (f + 1) * d


def _interaction_flops(r: dict[str, Any]) -> float:
    """Forward FLOPs per sample of the interaction."""
    f, d = len(r["rows"]), r["embedding_dim"]
    if r["interaction"] == "dot":
        return 2.0 * (f + 1) ** 2 * d  # the full (F+1)x(F+1) bmm, as computed
    n = (f + 1) * d
    return r["dcn_layers"] * (4.0 * n * r["dcn_rank"] + 3.0 * n)


def _arith(cfg: DLRMConfig) -> dict[str, Any]:
    r = resolve(cfg)
    f, d = len(r["rows"]), r["embedding_dim"]
    n = (f + 1) * d
    bottom, top = r["bottom_mlp"], (_interaction_width(r), *r["top_mlp"])
    dcn_params = r["dcn_layers"] * (2 * n * r["dcn_rank"] + n) if r["interaction"] == "dcn" else 0
    dense_params = _mlp_params(bottom) + _mlp_params(top) + dcn_params
    emb_params = sum(r["rows"]) * d
    mlp_fwd = 2.0 * (_mlp_macs(bottom) + _mlp_macs(top))
    inter_fwd = _interaction_flops(r)
    fwd = mlp_fwd + inter_fwd
    ids = sum(r["lookups"])
    # FBGEMM: out_bytes * sum(D) + weight_bytes * sum(D * L), per sample, fp32.
    emb_fwd_bytes = 4.0 * f * d + 4.0 * d * ids
    index_bytes = 8.0 * ids + 8.0 * f  # int64 ids + one length per bag
    opt_bytes = {"sgd": 0.0, "adagrad": 2 * 4.0 * d * ids, "rowwise_adagrad": 2 * 4.0 * ids}[
        cfg.embedding_optimizer
    ]
    emb_state = {"sgd": 0, "adagrad": emb_params, "rowwise_adagrad": sum(r["rows"])}[cfg.embedding_optimizer]
    dense_state = {"sgd": 0, "adagrad": dense_params, "adam": 2 * dense_params}[cfg.dense_optimizer]
    b = cfg.batch_size
    act_width = sum(bottom[1:]) + f * d + n + _interaction_width(r) + sum(top[1:])
    if r["interaction"] == "dcn":
        act_width += r["dcn_layers"] * (3 * n + r["dcn_rank"])
    activations = 4.0 * b * act_width * 3  # saved forward values + their gradients, with slack
    sparse_grads = 4.0 * b * ids * d * 2  # plain-torch sparse gradient values + coalesce copy
    data = cfg.num_batches * b * (4.0 * bottom[0] + 8.0 * ids + 8.0 * f + 4.0)
    weights = 4.0 * (emb_params + dense_params)
    state = 4.0 * (emb_state + dense_state + dense_params)  # + dense gradients
    return {
        "resolved": r,
        "num_tables": f,
        "emb_params": emb_params,
        "dense_params": dense_params,
        "mlp_fwd": mlp_fwd,
        "inter_fwd": inter_fwd,
        "fwd": fwd,
        "ids": ids,
        "emb_fwd_bytes": emb_fwd_bytes,
        "index_bytes": index_bytes,
        "opt_bytes": opt_bytes,
        "memory": weights + state + activations + sparse_grads + data,
        "weights_bytes": weights,
        "state_bytes": state,
        "activation_bytes": activations + sparse_grads,
        "data_bytes": data,
    }


def describe(cfg: DLRMConfig) -> dict[str, Any]:
    a = _arith(cfg)
    r = a["resolved"]
    return {
        "preset": cfg.preset,
        "num_tables": a["num_tables"],
        "rows": list(r["rows"]),
        "rows_sum": sum(r["rows"]),
        "max_rows": cfg.max_rows or None,
        "embedding_dim": r["embedding_dim"],
        "interaction": r["interaction"],
        "interaction_width": _interaction_width(r),
        "parameters": a["emb_params"] + a["dense_params"],
        "embedding_parameters": a["emb_params"],
        "dense_parameters": a["dense_params"],
        "lookups_per_sample": a["ids"],
        "flops_per_sample": {"forward": a["fwd"], "training": 3 * a["fwd"]},
        "flop_convention": "2 per MAC of MLPs + interaction; training = 3x forward",
        "embedding_bytes_per_sample": {
            "forward_fbgemm": a["emb_fwd_bytes"],
            "training_fbgemm": 3 * a["emb_fwd_bytes"],
            "training_with_indices_and_optimizer": 3 * a["emb_fwd_bytes"] + a["index_bytes"] + a["opt_bytes"],
        },
        "memory_bytes_estimate": int(a["memory"]),
        "memory_breakdown_bytes": {
            "weights": int(a["weights_bytes"]),
            "optimizer_state_and_dense_grads": int(a["state_bytes"]),
            "activations_and_sparse_grads": int(a["activation_bytes"]),
            "synthetic_batches": int(a["data_bytes"]),
        },
    }


# ---------------------------------------------------------------------------------------------------
# Backend choice and synthetic data (torch imported inside functions only)


def choose_backend(
    requested: str, device_kind: str, embedding_optimizer: str = "sgd", world_size: int = 1
) -> tuple[str, str]:
    """(backend, why). auto picks, per component, what was measured fastest and correct on the device;
    across processes (world_size > 1) it picks torchrec (DistributedModelParallel) where it imports."""
    from chipbench.errors import UsageError
    from chipbench.models.dlrm import torchrec_available

    if requested == "torch":
        return "torch", "requested with backend=torch"
    ok, why = torchrec_available()
    if requested in ("torchrec", "hybrid"):
        if not ok:
            raise UsageError(f"backend={requested} is not usable here ({why}); use --set backend=torch")
        if requested == "hybrid" and (device_kind != "cpu" or embedding_optimizer != "sgd"):
            raise UsageError("backend=hybrid supports embedding_optimizer=sgd on CPU only")
        if requested == "hybrid" and world_size > 1:
            raise UsageError(
                "backend=hybrid runs in one process; across processes use backend=torchrec or torch"
            )
        return requested, f"requested with backend={requested}"
    if device_kind not in ("cpu", "cuda"):
        return "torch", f"auto: FBGEMM has no kernels for {device_kind}"
    if not ok:
        return "torch", f"auto: {why}"
    if device_kind == "cuda":
        import importlib.metadata as md

        try:
            md.version("fbgemm-gpu-cpu")
            cpu_only = True
        except md.PackageNotFoundError:
            cpu_only = False
        if cpu_only:
            return "torch", "auto: fbgemm-gpu-cpu has no CUDA kernels"
    if world_size > 1:
        return "torchrec", (
            f"auto across {world_size} processes: torchrec imports, so TorchRec's DistributedModelParallel "
            "(tables sharded by its planner, optimizer fused into backward, dense part under DDP)"
        )
    if device_kind == "cpu" and embedding_optimizer == "sgd":
        return "hybrid", (
            "auto on CPU with SGD: torch embedding_bag forward (about 2x FBGEMM's CPU forward here), "
            "exact SGD by index_add_ one table per thread (about 2x FBGEMM's fused CPU SGD kernel here), "
            "weights in FBGEMM's table-batched layout, TorchRec dense modules"
        )
    return "torchrec", "auto: torchrec and FBGEMM import (fused embedding optimizer in backward)"


def zipf_ranks(n: int, count: int, alpha: float, gen: Any, device: Any) -> Any:
    """`count` ranks in [0, n) with P(rank k) ~ (k+1)^-alpha: the floor of a bounded continuous power law
    (inverse CDF), so its rank-frequency log-log slope is -alpha."""
    import torch

    # float64 for exact ranks up to 40M rows; MPS has no float64 (float32 blurs only the coldest ranks)
    fdt = torch.float32 if torch.device(device).type == "mps" else torch.float64
    u = torch.rand(count, generator=gen, device=device, dtype=fdt)
    if abs(alpha - 1.0) < 1e-9:
        x = torch.exp(u * math.log(n + 1.0))
    else:
        a1 = 1.0 - alpha
        x = (1.0 + u * ((n + 1.0) ** a1 - 1.0)) ** (1.0 / a1)
    return (x.floor().long() - 1).clamp_(0, n - 1)


def _row_permutation(n: int, gen: Any, device: Any) -> Any:
    """A fixed random permutation of n rows: randperm up to 16M rows, else a random affine bijection."""
    import torch

    if n <= 1 << 24:
        return torch.randperm(n, generator=gen, device=device)
    a = int(torch.randint(1, n, (1,), generator=gen, device=device).item()) | 1
    while math.gcd(a, n) != 1:
        a += 2
    b = int(torch.randint(0, n, (1,), generator=gen, device=device).item())
    return (a, b)


def make_batches(cfg: DLRMConfig, r: dict[str, Any], device: Any, seed: int, count: int) -> list[Any]:
    """`count` batches (dense, SparseInput, labels), seeded, generated on `device`. Labels come from a
    hidden logistic model over the dense features and a per-row score of every id, so loss can fall."""
    import torch

    from chipbench.models.dlrm import SparseInput

    gen = torch.Generator(device=device).manual_seed(seed)
    b, f = cfg.batch_size, len(r["rows"])
    n_dense = r["bottom_mlp"][0]
    w_dense = torch.randn(n_dense, generator=gen, device=device) / math.sqrt(n_dense)
    w_table = torch.randn(f, generator=gen, device=device) * (2.0 / math.sqrt(f))
    salts = torch.randint(0, 1 << 30, (f,), generator=gen, device=device).tolist()
    perms = [_row_permutation(n, gen, device) if cfg.index_dist == "zipf" else None for n in r["rows"]]
    out = []
    for _ in range(count):
        dense = torch.randn(b, n_dense, generator=gen, device=device)
        logit = dense @ w_dense
        values, lengths = [], []
        for t, (n, lk) in enumerate(zip(r["rows"], r["lookups"], strict=True)):
            if cfg.pooling == "fixed":
                lens = torch.full((b,), lk, dtype=torch.long, device=device)
            else:
                noise = torch.randn(b, generator=gen, device=device)
                lens = (lk + 0.5 * lk * noise).round().clamp_(min=1).long()
            total = int(lens.sum().item())
            if cfg.index_dist == "uniform":
                ids = torch.randint(0, n, (total,), generator=gen, device=device)
            else:
                ranks = zipf_ranks(n, total, cfg.zipf_alpha, gen, device)
                p: Any = perms[t]
                ids = p[ranks] if isinstance(p, torch.Tensor) else (ranks * p[0] + p[1]) % n
            # hidden per-row score in [-1, 1): a hash of the id, averaged over the bag
            h = ((ids * 2654435761 + salts[t]) % (1 << 31)).float().div_(1 << 30).sub_(1.0)
            bag = torch.repeat_interleave(torch.arange(b, device=device), lens)
            score = torch.zeros(b, device=device).index_add_(0, bag, h) / lens.float()
            logit = logit + w_table[t] * score
            values.append(ids)
            lengths.append(lens)
        labels = torch.bernoulli(torch.sigmoid(2.0 * logit), generator=gen)
        sp = SparseInput(torch.cat(values), torch.cat(lengths), b, f)
        out.append((dense, sp, labels))
    return out


def _spec(r: dict[str, Any]) -> Any:
    from chipbench.models.dlrm import ModelSpec

    return ModelSpec(
        rows=r["rows"],
        dim=r["embedding_dim"],
        bottom=r["bottom_mlp"],
        top=r["top_mlp"],
        interaction=r["interaction"],
        dcn_layers=r["dcn_layers"],
        dcn_rank=r["dcn_rank"],
    )


def _autocast(cfg: DLRMConfig, ctx: RunContext) -> Any:
    import contextlib

    import torch

    if cfg.dtype in ("bf16", "fp16"):
        dt = torch.bfloat16 if cfg.dtype == "bf16" else torch.float16
        dev = "cuda" if ctx.device in ("cuda", "rocm") else ctx.torch_device.split(":")[0]
        return lambda: torch.autocast(dev, dtype=dt)
    return contextlib.nullcontext


def _info(
    cfg: DLRMConfig, r: dict[str, Any], backend: str, why: str, batches: list[Any], b: int
) -> dict[str, Any]:
    ids = sum(int(sp.values.numel()) for _, sp, _ in batches) / len(batches) / b
    return {
        "backend": backend,
        "backend_reason": why,
        "preset": cfg.preset,
        "max_rows": cfg.max_rows or None,
        "rows_capped": r["rows"] != r["rows_uncapped"],
        "num_tables": len(r["rows"]),
        "rows_sum": sum(r["rows"]),
        "embedding_dim": r["embedding_dim"],
        "interaction": r["interaction"],
        "ids_per_sample_measured": ids,
        "dense_dtype": "fp32" if cfg.dtype in ("auto", "fp32") else f"{cfg.dtype} autocast",
        "embedding_dtype": "fp32",
    }


def _sync(ctx: RunContext) -> None:
    import torch

    if ctx.device in ("cuda", "rocm"):
        torch.cuda.synchronize()
    elif ctx.device == "mps":
        torch.mps.synchronize()


# ---------------------------------------------------------------------------------------------------
# Benchmarks


def _emb_work(a: dict[str, Any], b: int, measured_ids: float, training: bool) -> tuple[float, float]:
    """(FBGEMM bytes, bytes with indices and optimizer state) per step of `b` samples (per rank across
    processes: the global step's bytes / world size), from the measured id count."""
    f, d = a["num_tables"], a["resolved"]["embedding_dim"]
    fwd = b * (4.0 * f * d + 4.0 * d * measured_ids)
    idx = b * (8.0 * measured_ids + 8.0 * f)
    if not training:
        return fwd, fwd + idx
    opt = a["opt_bytes"] * measured_ids / max(a["ids"], 1)
    return 3 * fwd, 3 * fwd + idx + b * opt


def batch_sizes(cfg: DLRMConfig, world_size: int) -> tuple[int, int]:
    """(per-rank, global) batch size over `world_size` processes, by `cfg.scaling`."""
    from chipbench.errors import UsageError

    if world_size <= 1:
        return cfg.batch_size, cfg.batch_size
    if cfg.scaling == "weak":
        return cfg.batch_size, cfg.batch_size * world_size
    if cfg.batch_size % world_size:
        raise UsageError(
            f"scaling=strong splits batch_size={cfg.batch_size} over {world_size} processes: "
            f"use a multiple of {world_size}"
        )
    return cfg.batch_size // world_size, cfg.batch_size


def _rank_batches(cfg: DLRMConfig, r: dict[str, Any], ctx: RunContext, count: int) -> list[Any]:
    """This rank's batches: every rank generates the same global batches (same seed) and keeps its own rows,
    so a run over N processes sees exactly the data of one process at the global batch size."""
    if not ctx.distributed:
        return make_batches(cfg, r, ctx.torch_device, ctx.seed, count)
    local, glob = batch_sizes(cfg, ctx.world_size)
    full = make_batches(dataclasses.replace(cfg, batch_size=glob), r, ctx.torch_device, ctx.seed, count)
    lo, hi = ctx.rank * local, (ctx.rank + 1) * local
    return [(d[lo:hi].contiguous(), sp.rows(lo, hi), y[lo:hi].contiguous()) for d, sp, y in full]


def _check_sharding(sharding: str, device_kind: str, backend: str, why: str) -> None:
    """A forced sharding type must be one TorchRec can do on the device, on the torchrec backend."""
    from chipbench.errors import UsageError

    if sharding == "auto":
        return
    if backend != "torchrec":
        raise UsageError(
            f"sharding={sharding} needs backend torchrec; this run uses {backend} ({why}), "
            "which replicates every table"
        )
    from chipbench.models.dlrm import supported_shardings

    ok = supported_shardings(device_kind)
    if sharding != "auto" and sharding not in ok:
        raise UsageError(
            f"sharding={sharding} is not supported by TorchRec on {device_kind}; use auto or one of {', '.join(ok)}"
        )


def _local_world(ctx: RunContext) -> int:
    import os

    return int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))


def _check_hugepages(cfg: DLRMConfig, ctx: RunContext) -> None:
    """hugepages=on where it cannot take effect is a one-line error, before anything is allocated."""
    from chipbench import hugepages
    from chipbench.errors import UsageError

    if cfg.hugepages != "on":
        return
    if ctx.device != "cpu":
        raise UsageError(
            f"hugepages=on places CPU tables; on {ctx.device} they live in device memory: "
            "use --set hugepages=auto or off"
        )
    ok, why = hugepages.available()
    if not ok:
        raise UsageError(f"hugepages=on: {why}; use --set hugepages=auto or off")


def _place_tables(
    cfg: DLRMConfig, ctx: RunContext, module: Any, optimizers: tuple[Any, ...] = ()
) -> dict[str, Any]:
    """Put the tables of `module` (and their optimizer state) on huge pages as `cfg.hugepages` asks;
    what was asked, done and got, for the info."""
    from chipbench import hugepages
    from chipbench.models.dlrm import table_tensors

    out: dict[str, Any] = {"setting": cfg.hugepages}
    if ctx.device != "cpu":
        out["not_applicable"] = f"tables in {ctx.device} memory"
        return out
    ok, why = hugepages.available()
    out["system"] = why
    if note := hugepages.allocator_note():
        out["allocator"] = note
    tables = table_tensors(module, optimizers)
    if cfg.hugepages != "off" and ok:
        out.update(hugepages.advise(tables, hugepages.COLLAPSE_BUDGET_BYTES // _local_world(ctx)))
    out["table_bytes"] = sum(t.untyped_storage().nbytes() for t in tables)
    out["table_mappings_on_huge_pages_bytes"] = hugepages.huge_bytes_backing(tables)
    return out


def _layout(cfg: DLRMConfig, ctx: RunContext, parallelism: str, **facts: Any) -> dict[str, Any]:
    """How a run is spread over its processes (recorded only when distributed)."""
    local, glob = batch_sizes(cfg, ctx.world_size)
    return {
        "parallelism": parallelism,
        "world_size": ctx.world_size,
        "dist_backend": ctx.dist_backend,
        "scaling": cfg.scaling,
        "per_rank_batch_size": local,
        "global_batch_size": glob,
        **facts,
    }


_INDEPENDENT = "independent per rank (a dense kernel alone: no communication)"
_DDP_EMBEDDINGS = "replicated on every rank (DistributedDataParallel); sparse gradients all-reduced by DDP"


def _setup_model(
    cfg: DLRMConfig, ctx: RunContext, init_state: dict[str, Any] | None = None
) -> tuple[Any, Any, dict[str, Any], dict[str, Any], list[Any], int]:
    """(model to call, the DLRM inside it, arithmetic, info, this rank's prepared batches, per-rank batch).

    Across processes: backend torchrec -> TorchRec's DistributedModelParallel (tables sharded by its
    planner or a forced type); backend torch -> the whole model under DistributedDataParallel.
    `init_state` (a single-process state_dict, full tables) replaces the initial weights (tests)."""

    from chipbench.models import dlrm as m

    a, r, backend, why, local = _begin(cfg, ctx)
    _check_hugepages(cfg, ctx)
    spec = _spec(r)
    layout: dict[str, Any] = {}
    model: Any
    if ctx.distributed:
        _check_sharding(cfg.sharding, ctx.device, backend, why)
    if ctx.distributed and backend == "torchrec":
        model, plan = m.shard_dlrm(
            spec, ctx.torch_device, cfg.embedding_optimizer, cfg.lr, cfg.sharding, local, r["lookups"],
            _local_world(ctx),
        )  # fmt: skip
        inner = m.unwrap(model)
        layout = _layout(
            cfg, ctx, "torchrec_dmp", sharding=cfg.sharding, sharding_plan=m.summarize_plan(plan),
            dense="replicated (DistributedDataParallel inside DMP)",
        )  # fmt: skip
        if init_state is not None:
            m.load_full_state(model, init_state)
    else:
        inner = model = m.DLRM(spec, backend, ctx.torch_device, cfg.embedding_optimizer, cfg.lr)
        if init_state is not None:
            m.load_full_state(inner, init_state)
        if ctx.distributed:
            model = m.ddp_module(inner, ctx.torch_device)
            layout = _layout(cfg, ctx, "ddp", embeddings=_DDP_EMBEDDINGS)
    batches = _rank_batches(cfg, r, ctx, cfg.num_batches)
    info = _info(cfg, r, backend, why, batches, local)
    info.update(layout)
    prepared = [(dense, inner.prepare_sparse(sp), y) for dense, sp, y in batches]
    return model, inner, a, info, prepared, local


def _embedding_optimizer(cfg: DLRMConfig, model: Any, inner: Any, dense_params: list[Any]) -> Any:
    """The embedding optimizer the step must call: the sparse one of backend torch, the one of the tables
    DMP replicates (sharding data_parallel), or None (fused into FBGEMM's backward)."""
    from chipbench.models.dlrm import replicated_table_optimizer

    if model is not inner and inner.backend == "torchrec":
        return replicated_table_optimizer(model, dense_params, cfg.embedding_optimizer, cfg.lr)
    return inner.make_embedding_optimizer(cfg.lr)


def _describe_optimizer(eopt: Any, info: dict[str, Any]) -> str:
    if eopt is None:
        return "fused into backward (FBGEMM)"
    if info.get("parallelism") == "torchrec_dmp":
        return f"fused into backward (FBGEMM); data_parallel tables: {type(eopt).__name__} on all-reduced dense gradients"
    return f"sparse {type(eopt).__name__}"


def _begin(cfg: DLRMConfig, ctx: RunContext) -> tuple[dict[str, Any], dict[str, Any], str, str, int]:
    """What every DLRM set-up starts with: (arithmetic, resolved preset, backend, why, this rank's
    batch), with torch's generator seeded for the model's initial weights."""
    import torch

    a = _arith(cfg)
    backend, why = choose_backend(cfg.backend, ctx.device, cfg.embedding_optimizer, ctx.world_size)
    local, _ = batch_sizes(cfg, ctx.world_size)
    torch.manual_seed(ctx.seed)
    return a, a["resolved"], backend, why, local


def _train_setup(
    cfg: DLRMConfig,
    ctx: RunContext,
    init_state: dict[str, Any] | None = None,
    expose: dict[str, Any] | None = None,
) -> Prepared:
    """A training step. `init_state` replaces the initial weights and `expose` receives the model (tests)."""
    import torch

    from chipbench.models.dlrm import dense_optimizer

    model, inner, a, info, batches, b = _setup_model(cfg, ctx, init_state)
    model.train()
    dopt = dense_optimizer(cfg.dense_optimizer, inner.dense_parameters(), cfg.lr)
    eopt = _embedding_optimizer(cfg, model, inner, inner.dense_parameters())
    if expose is not None:
        expose["model"] = model
    autocast = _autocast(cfg, ctx)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    state = {"i": 0}

    def step() -> Any:
        dense, sp, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        dopt.zero_grad(set_to_none=True)
        with autocast():
            logit = model(dense, sp)
        loss = bce(logit.squeeze(1).float(), y)
        loss.backward()
        dopt.step()
        if eopt is not None:
            eopt.step()
            eopt.zero_grad(set_to_none=True)
        return loss.detach()

    def after() -> dict[str, Any]:
        return {"breakdown_ms": _breakdown(model, dopt, eopt, batches, ctx, autocast)}

    ids = info["ids_per_sample_measured"]
    fb, fb_all = _emb_work(a, b, ids, training=True)
    info["embedding_optimizer"] = _describe_optimizer(eopt, info)
    info["hugepages"] = _place_tables(cfg, ctx, model, (eopt,))
    if ctx.distributed:  # parts run alone would call the sharded/DDP modules outside their collectives
        info["breakdown"] = "not measured across processes"
    return Prepared(
        step=step,
        work=Work(
            flops=3 * a["fwd"] * b,
            bytes=fb,
            samples=b,
            flop_convention="dense only: 2 per MAC of MLPs + interaction, training = 3x forward",
            bytes_convention="FBGEMM TBE: fp32 out + weight rows, backward = 2x forward bytes",
            extra_bytes={"with_indices_and_optimizer": fb_all},
        ),
        info=info,
        after=None if ctx.distributed else after,
    )


def _breakdown(
    model: Any, dopt: Any, eopt: Any, batches: list[Any], ctx: RunContext, autocast: Any, reps: int = 5
) -> dict[str, float]:
    """Median ms of each part of a training step, each part run on detached inputs and timed alone."""
    import statistics

    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits
    parts: dict[str, list[float]] = {}

    def tick(name: str, t0: float) -> float:
        _sync(ctx)
        t = time.perf_counter()
        parts.setdefault(name, []).append((t - t0) * 1e3)
        return t

    for i in range(reps):
        dense, sp, y = batches[i % len(batches)]
        dopt.zero_grad(set_to_none=True)
        _sync(ctx)
        t = time.perf_counter()
        e = model.sparse(sp)
        t = tick("embedding_fwd", t)
        with autocast():
            d = model.bottom(dense)
        t = tick("bottom_mlp_fwd", t)
        d_in, e_in = d.detach().requires_grad_(), e.detach().requires_grad_()
        with autocast():
            z = model.inter(d_in, e_in)
        t = tick("interaction_fwd", t)
        z_in = z.detach().requires_grad_()
        with autocast():
            logit = model.top(z_in)
        loss = bce(logit.squeeze(1).float(), y)
        t = tick("top_mlp_fwd", t)
        loss.backward()
        t = tick("top_mlp_bwd", t)
        z.backward(z_in.grad)
        t = tick("interaction_bwd", t)
        d.backward(d_in.grad)
        t = tick("bottom_mlp_bwd", t)
        e.backward(e_in.grad)
        if eopt is not None:
            eopt.step()
            eopt.zero_grad(set_to_none=True)
        t = tick("embedding_bwd_and_update", t)
        dopt.step()
        tick("dense_optimizer", t)
    return {k: statistics.median(v) for k, v in parts.items()}


def _inference_setup(cfg: DLRMConfig, ctx: RunContext) -> Prepared:
    import torch

    model, _, a, info, batches, b = _setup_model(cfg, ctx)
    model.eval()
    info["hugepages"] = _place_tables(cfg, ctx, model)
    autocast = _autocast(cfg, ctx)
    state = {"i": 0}

    def step() -> Any:
        dense, sp, _ = batches[state["i"] % len(batches)]
        state["i"] += 1
        with torch.no_grad(), autocast():
            return model(dense, sp)

    fb, fb_all = _emb_work(a, b, info["ids_per_sample_measured"], training=False)
    return Prepared(
        step=step,
        work=Work(
            flops=a["fwd"] * b,
            bytes=fb,
            samples=b,
            flop_convention="dense only: 2 per MAC of MLPs + interaction (forward)",
            bytes_convention="FBGEMM TBE forward: fp32 out + weight rows",
            extra_bytes={"with_indices": fb_all},
        ),
        info=info,
    )


def _embedding_setup(cfg: EmbeddingConfig, ctx: RunContext) -> Prepared:
    import torch

    from chipbench.models import dlrm as m

    a, r, backend, why, b = _begin(cfg, ctx)
    _check_hugepages(cfg, ctx)
    spec = _spec(r)
    layout: dict[str, Any] = {}
    emb: Any
    if ctx.distributed:
        _check_sharding(cfg.sharding, ctx.device, backend, why)
    if ctx.distributed and backend == "torchrec":
        tables = m.ShardableEmbeddings(spec.rows, spec.dim, cfg.embedding_optimizer, cfg.lr, "meta")
        emb, plan = m.shard(tables, spec, ctx.torch_device, cfg.sharding, b, r["lookups"], _local_world(ctx))
        inner: Any = m.unwrap(emb, m.ShardableEmbeddings)
        layout = _layout(
            cfg, ctx, "torchrec_dmp", sharding=cfg.sharding, sharding_plan=m.summarize_plan(plan)
        )
    else:
        inner = emb = m.build_embeddings(spec, backend, ctx.torch_device, cfg.embedding_optimizer, cfg.lr)
        if ctx.distributed:
            emb = m.ddp_module(inner, ctx.torch_device)
            layout = _layout(cfg, ctx, "ddp", embeddings=_DDP_EMBEDDINGS)
    batches = _rank_batches(cfg, r, ctx, cfg.num_batches)
    info = _info(cfg, r, backend, why, batches, b)
    info.update(layout)
    inputs = [inner.prepare(sp) for _, sp, _ in batches]
    gen = torch.Generator(device=ctx.torch_device).manual_seed(ctx.seed + 1)
    grad = torch.randn(b, len(r["rows"]), r["embedding_dim"], generator=gen, device=ctx.torch_device)
    eopt: Any
    if backend == "torch":
        eopt = m.sparse_optimizer(cfg.embedding_optimizer, inner.weights(), cfg.lr)
    elif emb is not inner:
        eopt = m.replicated_table_optimizer(emb, [], cfg.embedding_optimizer, cfg.lr)
    else:
        eopt = None
    info["embedding_optimizer"] = _describe_optimizer(eopt, info)
    info["hugepages"] = _place_tables(cfg, ctx, emb, (eopt,))
    state = {"i": 0}
    fwd_only = cfg.mode == "fwd"

    def step() -> Any:
        inp = inputs[state["i"] % len(inputs)]
        state["i"] += 1
        if fwd_only:
            with torch.no_grad():
                return emb(inp)
        out = emb(inp)
        out.backward(grad)
        if eopt is not None:
            eopt.step()
            eopt.zero_grad(set_to_none=True)
        return None

    fb, fb_all = _emb_work(a, b, info["ids_per_sample_measured"], training=not fwd_only)
    info["mode"] = cfg.mode
    return Prepared(
        step=step,
        work=Work(
            bytes=fb,
            samples=b,
            bytes_convention="FBGEMM TBE: fp32 out + weight rows"
            + ("" if fwd_only else "; backward = 2x fwd"),
            extra_bytes={"with_indices_and_optimizer" if not fwd_only else "with_indices": fb_all},
        ),
        info=info,
    )


def _mlp_setup(cfg: DLRMConfig, ctx: RunContext) -> Prepared:
    import torch

    from chipbench.models.dlrm import build_dense

    a, r, backend, why, b = _begin(cfg, ctx)
    bottom, _, top = build_dense(_spec(r), backend, ctx.torch_device)
    gen = torch.Generator(device=ctx.torch_device).manual_seed(ctx.seed)
    xs = [
        (
            torch.randn(b, r["bottom_mlp"][0], generator=gen, device=ctx.torch_device),
            torch.randn(b, _interaction_width(r), generator=gen, device=ctx.torch_device),
        )
        for _ in range(cfg.num_batches)
    ]
    autocast = _autocast(cfg, ctx)
    params = [*bottom.parameters(), *top.parameters()]
    state = {"i": 0}

    def step() -> None:
        xb, xt = xs[state["i"] % len(xs)]
        state["i"] += 1
        for p in params:
            p.grad = None
        with autocast():
            out = bottom(xb).float().sum() + top(xt).float().sum()
        out.backward()

    info = {"backend": backend, "backend_reason": why, "preset": cfg.preset, "max_rows": cfg.max_rows or None}
    info["pass"] = "forward + backward of bottom and top MLPs (no optimizer)"
    if ctx.distributed:
        info.update(_layout(cfg, ctx, _INDEPENDENT))
    return Prepared(
        step=step,
        work=Work(
            flops=3 * a["mlp_fwd"] * b,
            samples=b,
            flop_convention="2 per MAC, forward + backward = 3x forward",
        ),
        info=info,
    )


def _interaction_setup(cfg: DLRMConfig, ctx: RunContext) -> Prepared:
    import torch

    from chipbench.models.dlrm import build_dense

    a, r, backend, why, b = _begin(cfg, ctx)
    _, inter, _ = build_dense(_spec(r), backend, ctx.torch_device)
    gen = torch.Generator(device=ctx.torch_device).manual_seed(ctx.seed)
    f, d = len(r["rows"]), r["embedding_dim"]
    xs = [
        (
            torch.randn(b, d, generator=gen, device=ctx.torch_device).requires_grad_(),
            torch.randn(b, f, d, generator=gen, device=ctx.torch_device).requires_grad_(),
        )
        for _ in range(cfg.num_batches)
    ]
    gout = torch.randn(b, _interaction_width(r), generator=gen, device=ctx.torch_device)
    autocast = _autocast(cfg, ctx)
    params = [*inter.parameters()]
    state = {"i": 0}

    def step() -> None:
        dn, sp = xs[state["i"] % len(xs)]
        state["i"] += 1
        dn.grad = sp.grad = None
        for p in params:
            p.grad = None
        with autocast():
            z = inter(dn, sp)
        z.backward(gout.to(z.dtype))

    info = {
        "backend": backend,
        "backend_reason": why,
        "preset": cfg.preset,
        "interaction": r["interaction"],
        "interaction_width": _interaction_width(r),
    }
    if ctx.distributed:
        info.update(_layout(cfg, ctx, _INDEPENDENT))
    return Prepared(
        step=step,
        work=Work(
            flops=3 * a["inter_fwd"] * b,
            samples=b,
            flop_convention="dot: full (F+1)^2 D bmm; dcn: 2 matmuls + 3 elementwise per layer; fwd+bwd = 3x",
        ),
        info=info,
    )


def _describe_mlp(cfg: DLRMConfig) -> dict[str, Any]:
    out = describe(cfg)
    a = _arith(cfg)
    out["flops_per_step"] = 3 * a["mlp_fwd"] * cfg.batch_size
    return out


def _describe_interaction(cfg: DLRMConfig) -> dict[str, Any]:
    out = describe(cfg)
    a = _arith(cfg)
    out["flops_per_step"] = 3 * a["inter_fwd"] * cfg.batch_size
    return out


# Share of free memory a fitted default-suite case may use: headroom for the allocator, the data batches
# and the other process of a run, and table set-up time that stays in seconds on a CPU.
FIT_SHARE = 0.1


def _nice_floor(n: int) -> int:
    """The largest of 1, 2, 5 x 10^k not above n, so small changes of free memory keep the same cap."""
    k = 10 ** int(math.log10(max(n, 1)))
    return max(m * k for m in (1, 2, 5) if m * k <= n)


def fit(cfg: DLRMConfig, free_bytes: int) -> dict[str, Any]:
    """Overrides that make a `max_rows=-1` case fit the device (empty for any other case)."""
    if cfg.max_rows != -1:
        return {}
    budget = FIT_SHARE * free_bytes
    uncapped = dataclasses.replace(cfg, max_rows=0)
    if _arith(uncapped)["memory"] <= budget:
        return {"max_rows": 0}
    lo, hi = 1, max(resolve(uncapped)["rows"])
    while lo < hi:  # the largest cap whose estimate fits the budget
        mid = (lo + hi + 1) // 2
        if _arith(dataclasses.replace(cfg, max_rows=mid))["memory"] <= budget:
            lo = mid
        else:
            hi = mid - 1
    return {"max_rows": _nice_floor(lo)}


def plan(cfg: DLRMConfig, world_size: int, device_kind: str) -> dict[str, Any]:
    """How a run over `world_size` processes on `device_kind` is laid out: the backend chosen, the batch
    split and, on torchrec, the sharding plan TorchRec's planner makes (model on the meta device, no
    process group, nothing allocated)."""
    from chipbench.errors import UsageError

    local, glob = batch_sizes(cfg, world_size)
    out: dict[str, Any] = {
        "world_size": world_size,
        "scaling": cfg.scaling,
        "per_rank_batch_size": local,
        "global_batch_size": glob,
    }
    if world_size <= 1:
        return {**out, "parallelism": "none"}
    backend, why = choose_backend(cfg.backend, device_kind, cfg.embedding_optimizer, world_size)
    out.update(backend=backend, backend_reason=why)
    _check_sharding(cfg.sharding, device_kind, backend, why)
    if backend != "torchrec":
        return {**out, "parallelism": "ddp", "embeddings": _DDP_EMBEDDINGS}
    from chipbench.models.dlrm import plan_sharding, rank_elements, summarize_plan

    r = resolve(cfg)
    try:
        p = plan_sharding(
            _spec(r), world_size, device_kind, cfg.sharding, cfg.embedding_optimizer, local, r["lookups"]
        )
    except Exception as exc:  # the planner's own errors (no plan fits) reach the user as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"TorchRec's planner found no sharding plan: {first}"[:400]) from None
    return {
        **out,
        "parallelism": "torchrec_dmp",
        "sharding": cfg.sharding,
        "sharding_plan": summarize_plan(p),
        **_rank_memory(cfg, r, rank_elements(p, r["rows"], r["embedding_dim"], world_size), local, glob),
    }


def _rank_memory(
    cfg: DLRMConfig, r: dict[str, Any], elems: list[int], local: int, glob: int
) -> dict[str, Any]:
    """The busiest rank's memory under a sharding plan: its embedding shards with their optimizer state,
    the replicated dense part, activations at its batch, and the global batches every rank generates."""
    d = r["embedding_dim"]
    state = {"sgd": 0.0, "adagrad": 1.0, "rowwise_adagrad": 1.0 / d}[cfg.embedding_optimizer]
    one = _arith(dataclasses.replace(cfg, batch_size=local))
    dense = 4.0 * one["dense_params"] * (2 + {"sgd": 0, "adagrad": 1, "adam": 2}[cfg.dense_optimizer])
    data = _arith(dataclasses.replace(cfg, batch_size=glob))["data_bytes"]
    breakdown = {
        "embedding_shards_and_state": int(4.0 * max(elems) * (1 + state)),
        "dense_weights_grads_and_state": int(dense),
        "activations": int(one["activation_bytes"]),
        "synthetic_batches": int(data),
    }
    return {
        "embedding_elements_per_rank": elems,
        "memory_bytes_per_rank_estimate": sum(breakdown.values()),
        "memory_breakdown_per_rank": breakdown,
    }


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

TRAIN_STEP = register(
    Benchmark(
        name="dlrm.train_step",
        doc="DLRM training step: forward, BCE, backward, sparse embedding + dense optimizers.",
        config_cls=DLRMConfig,
        auto_dtype=_AUTO_DTYPE,
        fit=fit,
        setup=_train_setup,
        plan=plan,
        describe=describe,
        suites={
            "smoke": [_TINY],
            "default": _DEFAULT,
            "full": [
                *_DEFAULT,
                *({**c, "backend": "torch"} for c in _DEFAULT),
                {"preset": "terabyte", "max_rows": 2_000_000, "batch_size": 2048},
            ],
        },
    )
)

INFERENCE = register(
    Benchmark(
        name="dlrm.inference",
        doc="DLRM forward in eval mode (latency percentiles and samples/s at batch_size).",
        config_cls=DLRMConfig,
        auto_dtype=_AUTO_DTYPE,
        fit=fit,
        setup=_inference_setup,
        plan=plan,
        describe=describe,
        suites={
            "smoke": [_TINY],
            "default": _DEFAULT,
            "full": [{**c, "batch_size": bs} for c in _DEFAULT for bs in (64, 512, 4096)],
        },
    )
)

EMBEDDING = register(
    Benchmark(
        name="dlrm.embedding",
        doc="Embedding-bag lookup alone (mode=fwd|fwd_bwd); GB/s in FBGEMM's and the full accounting.",
        config_cls=EmbeddingConfig,
        auto_dtype=_AUTO_DTYPE,
        fit=fit,
        setup=_embedding_setup,
        plan=plan,
        describe=describe,
        suites={
            "smoke": [{**_TINY, "mode": "fwd"}, {**_TINY, "mode": "fwd_bwd"}],
            "default": [{**c, "mode": m} for c in _DEFAULT for m in ("fwd", "fwd_bwd")],
            "full": [
                {**c, "mode": m, "backend": be}
                for c in _DEFAULT
                for m in ("fwd", "fwd_bwd")
                for be in ("torchrec", "torch")
            ],
        },
    )
)

MLP = register(
    Benchmark(
        name="dlrm.mlp",
        doc="Bottom + top MLPs forward + backward (dense TFLOP/s).",
        config_cls=DLRMConfig,
        auto_dtype=_AUTO_DTYPE,
        fit=fit,
        setup=_mlp_setup,
        describe=_describe_mlp,
        suites={"smoke": [_TINY], "default": _DEFAULT, "full": _DEFAULT},
    )
)

INTERACTION = register(
    Benchmark(
        name="dlrm.interaction",
        doc="Feature interaction (dot or DCNv2 cross layers) forward + backward.",
        config_cls=DLRMConfig,
        auto_dtype=_AUTO_DTYPE,
        fit=fit,
        setup=_interaction_setup,
        describe=_describe_interaction,
        suites={
            "smoke": [_TINY, {**_TINY, "interaction": "dcn"}],
            "default": _DEFAULT,
            "full": _DEFAULT,
        },
    )
)
