"""Pieces every workload family shares: the weak/strong batch split over processes, the layout facts a
distributed result records, autocast around the dense parts, and seeded generators."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from chipbench.core.contract import RunContext
from chipbench.core.errors import UsageError
from chipbench.core.wire import Info
from chipbench.platform.device import device_type

Scaling = Literal["weak", "strong"]
T = TypeVar("T")


@dataclass(frozen=True)
class BatchSplit:
    """A batch over the processes of a run."""

    per_rank: int
    """Rows each process runs per step."""
    global_batch: int
    """Rows of the whole job's step."""


def split_batch(batch_size: int, world_size: int, scaling: str) -> BatchSplit:
    """weak: `batch_size` rows on every process (the global batch grows with the processes); strong:
    `batch_size` is the global batch, split evenly (a one-line error when it does not divide)."""
    if world_size <= 1:
        return BatchSplit(batch_size, batch_size)
    if scaling == "weak":
        return BatchSplit(batch_size, batch_size * world_size)
    if batch_size % world_size:
        raise UsageError(
            f"scaling=strong splits the global batch_size={batch_size} over {world_size} processes: "
            f"use a multiple of {world_size} (or scaling=weak: batch_size per process)"
        )
    return BatchSplit(batch_size // world_size, batch_size)


def layout_info(split: BatchSplit, ctx: RunContext, scaling: str, parallelism: str) -> Info:
    """How a run is spread over its processes, for the result's info."""
    return {
        "parallelism": parallelism,
        "world_size": ctx.world_size,
        "scaling": scaling,
        "per_rank_batch_size": split.per_rank,
        "global_batch_size": split.global_batch,
    }


def rotation(items: Iterable[T]) -> Callable[[], T]:
    """The round-robin over a step's prepared inputs: each call returns the next one, the first again
    after the last (a step never draws data while it is timed)."""
    return itertools.cycle(items).__next__


def autocast(dtype: str, ctx: RunContext) -> Callable[[], Any]:
    """A factory of the context that runs the dense parts in `dtype` (bf16/fp16 autocast; fp32 none)."""
    import torch

    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)
    if low is None:
        return contextlib.nullcontext
    dev = device_type(ctx.device)
    return lambda: torch.autocast(dev, dtype=low)


def generator(ctx: RunContext, offset: int = 0, on_device: bool = False) -> Any:
    """A torch generator seeded from the run seed (+ offset): on the CPU, or on the run's device."""
    import torch

    return torch.Generator(device=ctx.torch_device if on_device else "cpu").manual_seed(ctx.seed + offset)


def check_compiler() -> None:
    """torch.compile generates C++ (CPU) or Triton (GPU) code that needs a C compiler and Python's
    headers: without them the first step fails deep inside inductor. One line before the case instead."""
    import os
    import shutil
    import sysconfig
    from pathlib import Path

    cc = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if not cc or not shutil.which(cc.split()[0]):
        raise UsageError(
            "compile=true needs a C compiler (cc, gcc or clang, or $CC); install one or set compile=false"
        )
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        raise UsageError(
            f"compile=true needs Python's headers ({headers} is missing: the python3-dev package); "
            "install them or set compile=false"
        )
