"""How an HSTU run is laid out over several processes (`describe --nproc-per-node N`), without allocating."""

from __future__ import annotations

import dataclasses

from chipbench.core.contract import Layout
from chipbench.workloads.common import split_batch
from chipbench.workloads.hstu.accounting import arithmetic
from chipbench.workloads.hstu.config import HSTUConfig
from chipbench.workloads.hstu.setup import DDP_TABLE, choose_backend


def plan(cfg: HSTUConfig, world_size: int, device_kind: str) -> Layout:
    split = split_batch(cfg.batch_size, world_size, cfg.scaling)
    facts = {
        "world_size": world_size,
        "scaling": cfg.scaling,
        "per_rank_batch_size": split.per_rank,
        "global_batch_size": split.global_batch,
    }
    if world_size <= 1:
        return Layout(None, {**facts, "parallelism": "none"})
    backend, why = choose_backend(cfg.backend, device_kind, world_size)
    a = arithmetic(dataclasses.replace(cfg, batch_size=split.per_rank))
    return Layout(
        int(a.memory_bytes),
        {
            **facts,
            "parallelism": "ddp",
            "backend": backend,
            "backend_reason": why,
            "item_table": DDP_TABLE,
            "dense": "replicated, gradients averaged (DistributedDataParallel)",
            "memory_breakdown_per_rank": a.breakdown,
        },
    )
