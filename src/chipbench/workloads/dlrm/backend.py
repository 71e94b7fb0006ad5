"""Where a DLRM runs: the backend chosen for the device (torchrec, torch or hybrid), the sharding types
TorchRec can do there, and the CPU tables' huge pages (torch imported inside functions only)."""

from __future__ import annotations

import importlib.metadata as md
import os
from typing import Any

from chipbench.core.contract import RunContext
from chipbench.core.errors import UsageError
from chipbench.core.wire import Info
from chipbench.platform import hugepages
from chipbench.workloads.dlrm.config import Backend, DLRMConfig

DDP_EMBEDDINGS = "replicated on every rank (DistributedDataParallel); sparse gradients all-reduced by DDP"
"""How the tables are laid out across processes on the torch backend (a fact of the layout)."""


SPARSE_ALLREDUCE = ("cpu", "mps")
"""Device kinds whose process-group backend (gloo) all-reduces sparse gradients; NCCL/RCCL (cuda, rocm)
and XCCL (xpu) cannot, so plain torch's sparse embedding gradients cannot cross processes there."""


def choose_backend(
    requested: str, device_kind: str, embedding_optimizer: str = "sgd", world_size: int = 1
) -> tuple[Backend, str]:
    """(backend, why). auto picks, per component, what was measured fastest and correct on the device;
    across processes (world_size > 1) it picks torchrec (DistributedModelParallel) where it imports.
    Plain torch across processes on an accelerator is refused in one line: DDP would all-reduce its
    sparse embedding gradients over NCCL, which has no sparse all-reduce (the first backward fails)."""
    backend, why = _choose(requested, device_kind, embedding_optimizer, world_size)
    if backend == "torch" and world_size > 1 and device_kind not in SPARSE_ALLREDUCE:
        raise UsageError(
            f"DLRM with backend torch across {world_size} processes on {device_kind} needs a sparse "
            f"all-reduce, which {device_kind}'s collectives lack ({why}); install torchrec and FBGEMM "
            "(backend=torchrec shards the tables) or run one process"
        )
    return backend, why


def _choose(
    requested: str, device_kind: str, embedding_optimizer: str, world_size: int
) -> tuple[Backend, str]:
    from chipbench.models.dlrm_embeddings import torchrec_available

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
        return ("hybrid" if requested == "hybrid" else "torchrec"), f"requested with backend={requested}"
    if device_kind not in ("cpu", "cuda"):
        return "torch", f"auto: FBGEMM has no kernels for {device_kind}"
    if not ok:
        return "torch", f"auto: {why}"
    if device_kind == "cuda":
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


def check_sharding(sharding: str, device_kind: str, backend: str, why: str) -> None:
    """A forced sharding type must be one TorchRec can do on the device, on the torchrec backend."""
    if sharding == "auto":
        return
    if backend != "torchrec":
        raise UsageError(
            f"sharding={sharding} needs backend torchrec; this run uses {backend} ({why}), "
            "which replicates every table"
        )
    from chipbench.models.dlrm_sharding import supported_shardings

    ok = supported_shardings(device_kind)
    if sharding != "auto" and sharding not in ok:
        raise UsageError(
            f"sharding={sharding} is not supported by TorchRec on {device_kind}; use auto or one of {', '.join(ok)}"
        )


def local_world_size(ctx: RunContext) -> int:
    """Processes on this node (LOCAL_WORLD_SIZE as torchrun sets it; the world size otherwise)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))


def check_hugepages(cfg: DLRMConfig, ctx: RunContext) -> None:
    """hugepages=on where it cannot take effect is a one-line error, before anything is allocated."""
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


def place_tables(cfg: DLRMConfig, ctx: RunContext, module: Any, optimizers: tuple[Any, ...] = ()) -> Info:
    """Put the tables of `module` (and their optimizer state) on huge pages as `cfg.hugepages` asks;
    what was asked, done and got, for the info."""
    from chipbench.models.dlrm_embeddings import table_tensors

    out: Info = {"setting": cfg.hugepages}
    if ctx.device != "cpu":
        out["not_applicable"] = f"tables in {ctx.device} memory"
        return out
    ok, why = hugepages.available()
    out["system"] = why
    if note := hugepages.allocator_note():
        out["allocator"] = note
    tables = table_tensors(module, optimizers)
    if cfg.hugepages != "off" and ok:
        out.update(hugepages.advise(tables, hugepages.MOVE_BUDGET_BYTES // local_world_size(ctx)))
    out["table_bytes"] = sum(t.untyped_storage().nbytes() for t in tables)
    out["table_mappings_on_huge_pages_bytes"] = hugepages.huge_bytes_backing(tables)
    return out
