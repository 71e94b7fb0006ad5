"""How the whole-model Llama benchmarks lay out over N processes (`describe --nproc-per-node N`), and a
rough per-process memory estimate, without allocating."""

from __future__ import annotations

import dataclasses

from chipbench.core.contract import Layout
from chipbench.core.wire import Info
from chipbench.workloads.llama.accounting import activation_bytes
from chipbench.workloads.llama.batch import batch_layout
from chipbench.workloads.llama.config import LlamaConfig
from chipbench.workloads.llama.describe import forward_describe, meta_model
from chipbench.workloads.llama.train import INIT_TEXT


def train_plan(cfg: LlamaConfig, world_size: int, kind: str) -> Layout:
    """Layout over `world_size` processes and a rough per-process memory estimate, without allocating."""
    from chipbench.models.llama import count_params

    per_rank, global_batch = batch_layout(cfg, world_size)
    s = dataclasses.replace(cfg.shape(), batch_size=per_rank)
    model = meta_model(s)
    n = count_params(model)
    block = sum(p.numel() for p in model.layers[0].parameters())
    root = n - s.n_layers * block  # embedding, final norm, output head (one matrix when tied)
    low = 2 if cfg.dtype in ("bf16", "fp16") else 4
    act = activation_bytes(s, cfg.dtype, cfg.activation_checkpointing, training=True)
    distributed = world_size > 1
    parallelism = cfg.parallel if distributed else "none"
    if parallelism == "fsdp2":
        breakdown = {
            "sharded_weights_grads_adamw": 16 * n // world_size,  # fp32 weights, grads, exp_avg, exp_avg_sq
            # The root's weights stay gathered through the forward; the running and the prefetched block.
            "gathered_weights": low * (root + 2 * block),
            "unsharded_block_grads": (low + (4 if low != 4 else 0)) * block,  # + fp32 copy to reduce
            "activations": act,
        }
        precision = (
            f"MixedPrecisionPolicy(param_dtype={cfg.dtype}, reduce_dtype=fp32) + {cfg.dtype} autocast"
            if low == 2
            else "fp32"
        )
    else:
        breakdown = {
            "weights": 4 * n,
            "grads_and_adamw": 12 * n,
            **({"ddp_gradient_buckets": 4 * n} if distributed else {}),
            "autocast_copies": 2 * n if low == 2 else 0,
            "activations": act,
        }
        precision = f"{cfg.dtype} autocast, fp32 master weights" if low == 2 else "fp32"
    facts: Info = {
        "parallelism": parallelism,
        "world_size": world_size,
        "device": kind,
        "scaling": cfg.scaling,
        "per_rank_batch_size": per_rank,
        "global_batch_size": global_batch,
        "tokens_per_rank_step": per_rank * s.seq_len,
        "global_tokens_per_step": global_batch * s.seq_len,
        "mixed_precision": precision,
        "memory_breakdown_per_rank": breakdown,
    }
    if parallelism == "fsdp2":
        facts["fsdp_units"] = f"{s.n_layers} blocks + root"
        facts["setup_peak_bytes_per_rank"] = 4 * n
        facts["init"] = (
            f"{INIT_TEXT['full']} (peak {4 * n / 2**30:.2f} GiB of fp32 weights per rank at set-up) "
            f"when that fits in half the free memory; otherwise {INIT_TEXT['meta'].split(' (')[0]}"
        )
    return Layout(memory_bytes_per_rank_estimate=sum(breakdown.values()), facts=facts)


def forward_plan(cfg: LlamaConfig, world_size: int, kind: str) -> Layout:
    """Inference over N processes: each its own rows of the global batch, a whole model each, no
    communication."""
    per_rank, global_batch = batch_layout(cfg, world_size)
    d = forward_describe(dataclasses.replace(cfg, batch_size=per_rank))
    return Layout(
        memory_bytes_per_rank_estimate=d.memory_bytes_estimate,
        facts={
            "parallelism": "none (data parallel without communication: a whole model per process)",
            "world_size": world_size,
            "device": kind,
            "scaling": cfg.scaling,
            "per_rank_batch_size": per_rank,
            "global_batch_size": global_batch,
        },
    )
