"""A DLRM across processes: TorchRec's planner and DistributedModelParallel (tables sharded, dense part
replicated), or DistributedDataParallel over the plain-PyTorch model; and the helpers that reach inside
those wrappers (unwrap, load a single-process state, the optimizer of the tables DMP replicates).

The planner runs without a process group on a model built on the meta device, so a plan can be shown
before anything is allocated (`plan_sharding`); `shard` makes the same plan collectively and applies it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from chipbench.models.dlrm import DLRM, ModelSpec
from chipbench.models.dlrm_embeddings import EmbeddingOptimizer, fused_optimizer

ShardingType = Literal["table_wise", "row_wise", "column_wise", "table_row_wise", "data_parallel"]
Sharding = Literal["auto", "table_wise", "row_wise", "column_wise", "table_row_wise", "data_parallel"]

SHARDING_TYPES: tuple[ShardingType, ...] = (
    "table_wise",
    "row_wise",
    "column_wise",
    "table_row_wise",
    "data_parallel",
)
"""Sharding types a run may force (TorchRec's ShardingType values); `auto` lets TorchRec's planner pick."""


def planner_device(kind: str) -> str:
    """TorchRec planner's compute_device for a chipbench device kind."""
    return "cuda" if kind in ("cuda", "rocm") else "cpu"


def supported_shardings(kind: str) -> tuple[ShardingType, ...]:
    """The SHARDING_TYPES TorchRec's EmbeddingBagCollectionSharder allows on a device kind (on CPU:
    table_wise, column_wise, data_parallel; row-wise forms are CUDA-only there)."""
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder

    allowed = set(EmbeddingBagCollectionSharder().sharding_types(planner_device(kind)))
    return tuple(t for t in SHARDING_TYPES if t in allowed)


@contextlib.contextmanager
def _quiet_planner() -> Any:
    """TorchRec's planner logs warnings about topology construction and dry-run estimates on every plan;
    they say nothing about the plan itself."""
    log = logging.getLogger("torchrec.distributed.planner")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@dataclass(frozen=True)
class Asked:
    """What TorchRec's planner is told besides the model and the ranks: the sharding asked for and what
    its cost model weighs."""

    sharding: Sharding = "auto"
    """auto: the planner's choice; else every table is constrained to that ShardingType."""
    batch_size: int | None = None
    """Samples per rank a step."""
    lookups: tuple[int, ...] | None = None
    """Ids per bag, per table (its pooling factors)."""
    local_world_size: int | None = None
    """Ranks per machine; None: every rank on one."""


def make_planner(spec: ModelSpec, world_size: int, device_kind: str, asked: Asked = Asked()) -> Any:
    """TorchRec's EmbeddingShardingPlanner for `world_size` ranks, told what is `asked`."""
    sharding, lookups = asked.sharding, asked.lookups
    from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
    from torchrec.distributed.planner.types import ParameterConstraints

    if sharding != "auto" and sharding not in SHARDING_TYPES:
        raise ValueError(f"sharding must be auto or one of {', '.join(SHARDING_TYPES)}, got {sharding!r}")
    constraints = {
        f"t{i}": ParameterConstraints(
            sharding_types=None if sharding == "auto" else [sharding],
            pooling_factors=[float(lookups[i])] if lookups else [1.0],
        )
        for i in range(spec.num_tables)
    }
    topology = Topology(
        world_size=world_size,
        compute_device=planner_device(device_kind),
        local_world_size=asked.local_world_size or world_size,
    )
    return EmbeddingShardingPlanner(topology=topology, batch_size=asked.batch_size, constraints=constraints)


def sharders() -> list[Any]:
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder

    return [EmbeddingBagCollectionSharder()]


def plan_sharding(
    spec: ModelSpec,
    world_size: int,
    device_kind: str,
    asked: Asked = Asked(),
    embedding_optimizer: EmbeddingOptimizer = "sgd",
) -> Any:
    """The ShardingPlan TorchRec's planner makes for this model over `world_size` ranks: the model is built
    on the meta device (nothing allocated) and no process group is needed."""
    model = DLRM(spec, "torchrec", "meta", embedding_optimizer, 0.01, shardable=True)
    planner = make_planner(spec, world_size, device_kind, asked)
    with _quiet_planner():
        return planner.plan(model, sharders())


def summarize_plan(plan: Any) -> dict[str, dict[str, Any]]:
    """Per table: sharding type, compute kernel and the ranks holding it (compact, JSON-ready)."""
    out: dict[str, dict[str, Any]] = {}
    for module_plan in plan.plan.values():
        for table, ps in module_plan.items():
            ranks = sorted(set(ps.ranks)) if ps.ranks is not None else None
            out[table] = {
                "sharding_type": ps.sharding_type,
                "compute_kernel": ps.compute_kernel,
                "ranks": ranks,
            }
    return out


def rank_elements(plan: Any, rows: tuple[int, ...], dim: int, world: int) -> list[int]:
    """Embedding elements each rank holds under `plan`: its shards, and every data-parallel table whole."""
    per = [0] * world
    for module_plan in plan.plan.values():
        for table, ps in module_plan.items():
            if ps.sharding_spec is not None:
                for sh in ps.sharding_spec.shards:
                    per[sh.placement.rank()] += sh.shard_sizes[0] * sh.shard_sizes[1]
            else:
                for r in ps.ranks if ps.ranks is not None else range(world):
                    per[r] += rows[int(table[1:])] * dim  # table t{i} has rows[i] rows
    return per


def shard(module: nn.Module, spec: ModelSpec, device: Any, asked: Asked = Asked()) -> tuple[Any, Any]:
    """(DistributedModelParallel, plan) of `module` (holding a ShardableEmbeddings, tables on the meta device)
    over the default process group: rank 0 plans, the plan is broadcast, each rank materializes its shards
    on `device` with the embedding optimizer fused into their backward; DMP wraps the rest (parameters not
    on the meta device, already initialized) in DistributedDataParallel."""
    import torch.distributed as dist
    from torchrec.distributed.model_parallel import DistributedModelParallel

    world = dist.get_world_size()
    kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
    planner = make_planner(spec, world, kind, asked)
    shs = sharders()
    with _quiet_planner():
        plan = planner.collective_plan(module, shs, dist.group.WORLD)
    dmp = DistributedModelParallel(module, device=torch.device(device), plan=plan, sharders=shs)
    return dmp, plan


def shard_dlrm(
    spec: ModelSpec,
    device: Any,
    embedding_optimizer: EmbeddingOptimizer,
    lr: float,
    asked: Asked = Asked(),
) -> tuple[Any, Any]:
    """A DLRM under DistributedModelParallel: tables on the meta device, sharded by the plan; the dense part
    built on `device` (torch's seeded init; DDP broadcasts rank 0's copy) and replicated by DDP."""
    model = DLRM(spec, "torchrec", device, embedding_optimizer, lr, shardable=True)
    return shard(model, spec, device, asked)


def replicated_table_optimizer(
    model: nn.Module, dense_params: list[nn.Parameter], optimizer: EmbeddingOptimizer, lr: float
) -> torch.optim.Optimizer | None:
    """The embedding optimizer of the tables DMP replicates (sharding data_parallel): TorchRec gives them a
    dense-kernel lookup under DDP, with whole-table gradients all-reduced, and leaves their update to the
    caller (its ``in_backward_optimizer_filter`` pattern). None when every table is sharded (fused)."""
    from torchrec.optim.optimizers import in_backward_optimizer_filter

    dense = {id(p) for p in dense_params}
    params = [p for _, p in in_backward_optimizer_filter(model.named_parameters()) if id(p) not in dense]
    if not params:
        return None
    opt_type, kwargs = fused_optimizer(optimizer, lr)
    opt: torch.optim.Optimizer = opt_type(params, **kwargs)
    return opt


# ---------------------------------------------------------------------------------------------------
# Inside the wrappers, and plain DDP


def unwrap(model: nn.Module, kind: type = DLRM) -> Any:
    """The `kind` module (a DLRM by default) inside a DistributedModelParallel / DDP wrapper."""
    inner: Any = model
    while not isinstance(inner, kind):
        inner = getattr(inner, "module", None)
        if inner is None:
            raise TypeError(f"no {kind.__name__} inside {type(model).__name__}")
    return inner


@torch.no_grad()
def load_full_state(model: nn.Module, full: dict[str, torch.Tensor]) -> None:
    """Copy a single-process model's state_dict (full tables, same keys) into a sharded or replicated model:
    each local shard of a ShardedTensor takes its slice of the full table; plain tensors are copied whole."""
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    for key, dst in model.state_dict().items():
        src = full[key]
        if isinstance(dst, ShardedTensor):
            for shard in dst.local_shards():
                idx = tuple(
                    slice(o, o + n)
                    for o, n in zip(shard.metadata.shard_offsets, shard.metadata.shard_sizes, strict=True)
                )
                shard.tensor.copy_(src[idx])
        elif hasattr(dst, "to_local") and hasattr(dst, "placements"):  # DTensor
            raise NotImplementedError(f"{key}: DTensor state is not supported")
        else:
            dst.copy_(src)


def ddp_module(model: nn.Module, device: Any) -> nn.Module:
    """Plain PyTorch across processes: the whole module replicated by DistributedDataParallel (embedding
    bags included: their gradients stay sparse and DDP all-reduces them as sparse tensors)."""
    from torch.nn.parallel import DistributedDataParallel

    dev = torch.device(device)
    # device_ids names one CUDA/XPU device; DDP rejects it for the CPU and MPS.
    return DistributedDataParallel(model, device_ids=[dev] if dev.type in ("cuda", "xpu") else None)
