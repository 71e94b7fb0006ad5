"""How a DLRM run is laid out over several processes, without allocating: the backend, the batch split,
TorchRec's sharding plan (`describe --nproc-per-node N`) and the busiest rank's memory under it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from chipbench.core.contract import Layout
from chipbench.core.errors import UsageError
from chipbench.core.wire import Info
from chipbench.workloads.common import split_batch
from chipbench.workloads.dlrm.accounting import arithmetic
from chipbench.workloads.dlrm.backend import DDP_EMBEDDINGS, check_sharding, choose_backend
from chipbench.workloads.dlrm.config import DLRMConfig, resolve
from chipbench.workloads.dlrm.setup import model_spec


def plan(cfg: DLRMConfig, world_size: int, device_kind: str) -> Layout:
    """How a run over `world_size` processes on `device_kind` is laid out: the backend chosen, the batch
    split and, on torchrec, the sharding plan TorchRec's planner makes (model on the meta device, no
    process group, nothing allocated)."""
    split = split_batch(cfg.batch_size, world_size, cfg.scaling)
    local, glob = split.per_rank, split.global_batch
    out: Info = {
        "world_size": world_size,
        "scaling": cfg.scaling,
        "per_rank_batch_size": local,
        "global_batch_size": glob,
    }
    if world_size <= 1:
        return Layout(None, {**out, "parallelism": "none"})
    backend, why = choose_backend(cfg.backend, device_kind, cfg.embedding_optimizer, world_size)
    out.update(backend=backend, backend_reason=why)
    check_sharding(cfg.sharding, device_kind, backend, why)
    if backend != "torchrec":
        return Layout(None, {**out, "parallelism": "ddp", "embeddings": DDP_EMBEDDINGS})
    from chipbench.models.dlrm_sharding import Asked, plan_sharding, rank_elements, summarize_plan

    r = resolve(cfg)
    try:
        asked = Asked(cfg.sharding, local, r.lookups)
        p = plan_sharding(model_spec(r), world_size, device_kind, asked, cfg.embedding_optimizer)
    except Exception as exc:  # the planner's own errors (no plan fits) reach the user as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"TorchRec's planner found no sharding plan: {first}"[:400]) from None
    mem = rank_memory(cfg, rank_elements(p, r.rows, r.embedding_dim, world_size), local, glob)
    return Layout(
        mem.total,
        {
            **out,
            "parallelism": "torchrec_dmp",
            "sharding": cfg.sharding,
            "sharding_plan": summarize_plan(p),
            "embedding_elements_per_rank": mem.embedding_elements_per_rank,
            "memory_breakdown_per_rank": mem.breakdown,
        },
    )


@dataclass(frozen=True)
class RankMemory:
    """The busiest rank's memory under a sharding plan."""

    embedding_elements_per_rank: list[int]
    """Embedding elements each rank holds (its shards, and every data-parallel table whole)."""
    breakdown: dict[str, int]
    """Bytes by part: embedding shards and state, dense part, activations, synthetic batches."""

    @property
    def total(self) -> int:
        return sum(self.breakdown.values())


def rank_memory(cfg: DLRMConfig, elems: list[int], local: int, glob: int) -> RankMemory:
    """The busiest rank's memory under a sharding plan: its embedding shards with their optimizer state,
    the replicated dense part, activations at its batch, and the global batches every rank generates."""
    d = resolve(cfg).embedding_dim
    state = {"sgd": 0.0, "adagrad": 1.0, "rowwise_adagrad": 1.0 / d}[cfg.embedding_optimizer]
    one = arithmetic(dataclasses.replace(cfg, batch_size=local))
    dense = 4.0 * one.dense_params * (2 + {"sgd": 0, "adagrad": 1, "adam": 2}[cfg.dense_optimizer])
    data = arithmetic(dataclasses.replace(cfg, batch_size=glob)).data_bytes
    breakdown = {
        "embedding_shards_and_state": int(4.0 * max(elems) * (1 + state)),
        "dense_weights_grads_and_state": int(dense),
        "activations": int(one.activation_bytes),
        "synthetic_batches": int(data),
    }
    return RankMemory(elems, breakdown)
