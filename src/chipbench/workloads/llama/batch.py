"""The token batch of the whole-model benchmarks: its split over processes (weak or strong scaling) and
the random tokens each process draws from the run seed."""

from __future__ import annotations

import dataclasses
from typing import Any

from chipbench.core.contract import RunContext
from chipbench.workloads.common import BatchSplit, generator, split_batch
from chipbench.workloads.llama.config import LlamaConfig, Shape


def batch_split(cfg: LlamaConfig, world_size: int) -> BatchSplit:
    """The config's batch over `world_size` processes: weak scaling runs batch_size on every process;
    strong scaling splits a global batch_size evenly over them (a one-line error when it does not divide)."""
    return split_batch(cfg.shape().batch_size, world_size, cfg.scaling)


def batch_layout(cfg: LlamaConfig, world_size: int) -> tuple[int, int]:
    """(per-process batch, global batch) in sequences (see `batch_split`)."""
    split = batch_split(cfg, world_size)
    return split.per_rank, split.global_batch


def rank_shape(cfg: LlamaConfig, world_size: int) -> tuple[Shape, BatchSplit]:
    """(shape with this process's batch, the batch split)."""
    split = batch_split(cfg, world_size)
    return dataclasses.replace(cfg.shape(), batch_size=split.per_rank), split


def random_tokens(s: Shape, ctx: RunContext, extra: int = 1, global_batch: int | None = None) -> Any:
    """This process's rows of the global token batch (B, T + extra): every rank draws the same global
    batch from the run seed and keeps rows [rank * B, (rank + 1) * B), so one process and N processes
    see the same data. `s.batch_size` is the per-process batch B; global_batch defaults to it."""
    import torch

    rows = global_batch or s.batch_size
    tokens = torch.randint(0, s.vocab_size, (rows, s.seq_len + extra), generator=generator(ctx))
    if rows != s.batch_size:
        tokens = tokens[ctx.rank * s.batch_size : (ctx.rank + 1) * s.batch_size].contiguous()
    return tokens.to(ctx.torch_device)
