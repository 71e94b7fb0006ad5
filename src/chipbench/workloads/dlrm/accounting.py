"""What a DLRM step does, counted without torch and without allocating: FLOPs and bytes per sample, the
memory estimate, `describe`, and `fit` (the row cap that makes a case fit the device).

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
from dataclasses import dataclass

from chipbench.core.contract import Description
from chipbench.core.wire import Overrides
from chipbench.workloads.dlrm.config import DLRMConfig, Resolved, resolve


def _mlp_macs(sizes: tuple[int, ...]) -> int:
    return sum(a * b for a, b in itertools.pairwise(sizes))


def _mlp_params(sizes: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def interaction_flops(r: Resolved) -> float:
    """Forward FLOPs per sample of the interaction."""
    f, d = r.num_tables, r.embedding_dim
    if r.interaction == "dot":
        return 2.0 * (f + 1) ** 2 * d  # the full (F+1)x(F+1) bmm, as computed
    n = (f + 1) * d
    return r.dcn_layers * (4.0 * n * r.dcn_rank + 3.0 * n)


@dataclass(frozen=True)
class Arithmetic:
    """A config's parameters, FLOPs and bytes (per sample unless named otherwise) and memory need."""

    resolved: Resolved
    embedding_params: int
    dense_params: int
    """MLPs and the DCN cross layers (dot has no parameters)."""
    mlp_forward_flops: float
    """Bottom + top MLPs, forward, per sample."""
    interaction_forward_flops: float
    forward_flops: float
    """MLPs + interaction, forward, per sample."""
    ids_per_sample: int
    """Ids looked up per sample, all tables (the configured lookups)."""
    embedding_forward_bytes: float
    """FBGEMM's TBE accounting, forward, per sample: fp32 output + weight rows read."""
    index_bytes: float
    """int64 ids and one length per bag, per sample."""
    optimizer_bytes: float
    """Embedding optimizer state read + written per sample."""
    memory_bytes: float
    """The whole estimate: weights, state, activations and sparse gradients, synthetic batches."""
    weights_bytes: float
    state_bytes: float
    """Optimizer state (embedding and dense) and the dense gradients."""
    activation_bytes: float
    """Saved activations, their gradients and the plain-torch sparse gradients, at the config's batch."""
    data_bytes: float
    """The synthetic batches generated before timing."""

    @property
    def num_tables(self) -> int:
        return self.resolved.num_tables


def arithmetic(cfg: DLRMConfig) -> Arithmetic:
    """Every count `describe`, `fit`, `plan` and the set-ups' `Work` derive from one config."""
    r = resolve(cfg)
    f, d = r.num_tables, r.embedding_dim
    n = (f + 1) * d
    bottom, top = r.bottom_mlp, (r.interaction_width, *r.top_mlp)
    dcn_params = r.dcn_layers * (2 * n * r.dcn_rank + n) if r.interaction == "dcn" else 0
    dense_params = _mlp_params(bottom) + _mlp_params(top) + dcn_params
    emb_params = sum(r.rows) * d
    mlp_fwd = 2.0 * (_mlp_macs(bottom) + _mlp_macs(top))
    inter_fwd = interaction_flops(r)
    fwd = mlp_fwd + inter_fwd
    ids = sum(r.lookups)
    # FBGEMM: out_bytes * sum(D) + weight_bytes * sum(D * L), per sample, fp32.
    emb_fwd_bytes = 4.0 * f * d + 4.0 * d * ids
    index_bytes = 8.0 * ids + 8.0 * f  # int64 ids + one length per bag
    opt_bytes = {"sgd": 0.0, "adagrad": 2 * 4.0 * d * ids, "rowwise_adagrad": 2 * 4.0 * ids}[
        cfg.embedding_optimizer
    ]
    emb_state = {"sgd": 0, "adagrad": emb_params, "rowwise_adagrad": sum(r.rows)}[cfg.embedding_optimizer]
    dense_state = {"sgd": 0, "adagrad": dense_params, "adam": 2 * dense_params}[cfg.dense_optimizer]
    b = cfg.batch_size
    act_width = sum(bottom[1:]) + f * d + n + r.interaction_width + sum(top[1:])
    if r.interaction == "dcn":
        act_width += r.dcn_layers * (3 * n + r.dcn_rank)
    activations = 4.0 * b * act_width * 3  # saved forward values + their gradients, with slack
    sparse_grads = 4.0 * b * ids * d * 2  # plain-torch sparse gradient values + coalesce copy
    data = cfg.num_batches * b * (4.0 * bottom[0] + 8.0 * ids + 8.0 * f + 4.0)
    weights = 4.0 * (emb_params + dense_params)
    state = 4.0 * (emb_state + dense_state + dense_params)  # + dense gradients
    return Arithmetic(
        resolved=r,
        embedding_params=emb_params,
        dense_params=dense_params,
        mlp_forward_flops=mlp_fwd,
        interaction_forward_flops=inter_fwd,
        forward_flops=fwd,
        ids_per_sample=ids,
        embedding_forward_bytes=emb_fwd_bytes,
        index_bytes=index_bytes,
        optimizer_bytes=opt_bytes,
        memory_bytes=weights + state + activations + sparse_grads + data,
        weights_bytes=weights,
        state_bytes=state,
        activation_bytes=activations + sparse_grads,
        data_bytes=data,
    )


def embedding_bytes(a: Arithmetic, b: int, measured_ids: float, training: bool) -> tuple[float, float]:
    """(FBGEMM bytes, bytes with indices and optimizer state) per step of `b` samples (per rank across
    processes: the global step's bytes / world size), from the measured id count."""
    f, d = a.num_tables, a.resolved.embedding_dim
    fwd = b * (4.0 * f * d + 4.0 * d * measured_ids)
    idx = b * (8.0 * measured_ids + 8.0 * f)
    if not training:
        return fwd, fwd + idx
    opt = a.optimizer_bytes * measured_ids / max(a.ids_per_sample, 1)
    return 3 * fwd, 3 * fwd + idx + b * opt


def describe(cfg: DLRMConfig) -> Description:
    """Parameters, FLOPs and embedding bytes per sample, and the memory estimate of one process."""
    a = arithmetic(cfg)
    r = a.resolved
    return Description(
        memory_bytes_estimate=int(a.memory_bytes),
        facts={
            "preset": cfg.preset,
            "num_tables": a.num_tables,
            "rows": list(r.rows),
            "rows_sum": sum(r.rows),
            "max_rows": cfg.max_rows or None,
            "embedding_dim": r.embedding_dim,
            "interaction": r.interaction,
            "interaction_width": r.interaction_width,
            "parameters": a.embedding_params + a.dense_params,
            "embedding_parameters": a.embedding_params,
            "dense_parameters": a.dense_params,
            "lookups_per_sample": a.ids_per_sample,
            "flops_per_sample": {"forward": a.forward_flops, "training": 3 * a.forward_flops},
            "flop_convention": "2 per MAC of MLPs + interaction; training = 3x forward",
            "embedding_bytes_per_sample": {
                "forward_fbgemm": a.embedding_forward_bytes,
                "training_fbgemm": 3 * a.embedding_forward_bytes,
                "training_with_indices_and_optimizer": 3 * a.embedding_forward_bytes
                + a.index_bytes
                + a.optimizer_bytes,
            },
            "memory_breakdown_bytes": {
                "weights": int(a.weights_bytes),
                "optimizer_state_and_dense_grads": int(a.state_bytes),
                "activations_and_sparse_grads": int(a.activation_bytes),
                "synthetic_batches": int(a.data_bytes),
            },
        },
    )


def _with_flops_per_step(d: Description, flops: float) -> Description:
    return dataclasses.replace(d, facts={**d.facts, "flops_per_step": flops})


def describe_mlp(cfg: DLRMConfig) -> Description:
    """`describe`, and the FLOPs of the MLPs' forward + backward per step."""
    return _with_flops_per_step(describe(cfg), 3 * arithmetic(cfg).mlp_forward_flops * cfg.batch_size)


def describe_interaction(cfg: DLRMConfig) -> Description:
    """`describe`, and the FLOPs of the interaction's forward + backward per step."""
    return _with_flops_per_step(describe(cfg), 3 * arithmetic(cfg).interaction_forward_flops * cfg.batch_size)


# Share of free memory a fitted default-suite case may use: headroom for the allocator, the data batches
# and the other process of a run, and table set-up time that stays in seconds on a CPU.
FIT_SHARE = 0.1


def nice_floor(n: int) -> int:
    """The largest of 1, 2, 5 x 10^k not above n, so small changes of free memory keep the same cap."""
    k = 10 ** int(math.log10(max(n, 1)))
    return max(m * k for m in (1, 2, 5) if m * k <= n)


FIT_SHARE_ACCELERATOR = 0.5
"""On a GPU (or other accelerator) the tables may take half of free device memory: its memory is the
figure of merit, and building tables there takes seconds, not minutes."""


def fit(cfg: DLRMConfig, free_bytes: int, kind: str = "cpu") -> Overrides:
    """Overrides that make a `max_rows=-1` case fit the device (empty for any other case); the cap used
    is in the result's config."""
    if cfg.max_rows != -1:
        return {}
    budget = (FIT_SHARE if kind in ("cpu", "mps") else FIT_SHARE_ACCELERATOR) * free_bytes
    uncapped = dataclasses.replace(cfg, max_rows=0)
    if arithmetic(uncapped).memory_bytes <= budget:
        return {"max_rows": 0}
    lo, hi = 1, max(resolve(uncapped).rows)
    while lo < hi:  # the largest cap whose estimate fits the budget
        mid = (lo + hi + 1) // 2
        if arithmetic(dataclasses.replace(cfg, max_rows=mid)).memory_bytes <= budget:
            lo = mid
        else:
            hi = mid - 1
    return {"max_rows": nice_floor(lo)}
