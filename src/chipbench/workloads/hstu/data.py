"""The HSTU family's synthetic users (torch imported inside functions only): history lengths drawn in
pure Python (so `describe` counts the very batches a run times); Zipf item ids through a fixed row permutation; increasing timestamps
(exponential gaps, mean an hour); history actions and candidate labels from one hidden model, so the loss
can fall. Everything is generated on the run's device before timing.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from chipbench.core.contract import RunContext
from chipbench.workloads.common import split_batch
from chipbench.workloads.dlrm.data import row_permutation, zipf_ranks
from chipbench.workloads.hstu.config import LOGNORMAL_SIGMA, HSTUConfig, Resolved, resolve


def history_lengths(cfg: HSTUConfig, seed: int, batch: int) -> tuple[int, ...]:
    """The history lengths of batch number `batch`, seeded (`describe` and the run draw the same). Every
    batch holds the same lengths, rotated over its users: each step does the same work (cycling batches of
    different total work would make the median pick one of them), on other ids and other users."""
    r = resolve(cfg)
    n = cfg.batch_size
    if cfg.history_dist == "fixed":
        return (r.avg_history,) * n
    rng = random.Random(f"hstu-history-{seed}")
    raw = [rng.lognormvariate(0.0, LOGNORMAL_SIGMA) for _ in range(n)]
    # scaled so the batch's mean is avg_history before clipping: a batch of 32 would otherwise stray by
    # about 12% (one standard error) from the configured mean
    scale = r.avg_history * n / sum(raw)
    drawn = tuple(min(r.max_history, round(x * scale)) for x in raw)
    k = batch % n
    return drawn[k:] + drawn[:k]


HIDDEN_ROWS = 4096
HIDDEN_DIM = 8


@dataclass
class Batch:
    """One step's users."""

    items: Any
    """(L,) int64 item ids, each user's history then candidates."""
    actions: Any
    """(L,) int64: history events' action ids (task outcomes as bits); candidates 2^T (none yet)."""
    seq: Any
    """chipbench.models.hstu.Jagged: where each user's tokens lie."""
    labels: Any
    """(K, T) float: the candidates' outcomes."""
    weights: Any
    """(K,) float: 1 / (c_b * users): the loss is a mean over users of each user's mean over candidates."""


def make_batches(cfg: HSTUConfig, r: Resolved, device: Any, seed: int, count: int) -> list[Batch]:
    """`count` batches of `cfg.batch_size` users (batch i's history lengths: `history_lengths(cfg, seed, i)`)."""
    import torch

    from chipbench.models.hstu import Jagged

    gen = torch.Generator(device="cpu").manual_seed(seed)
    hidden = torch.randn(HIDDEN_ROWS, HIDDEN_DIM, generator=gen)  # (R, 8): the hidden item features
    task_w = torch.randn(r.num_tasks, HIDDEN_DIM, HIDDEN_DIM, generator=gen) / HIDDEN_DIM  # (T, 8, 8)
    perm = row_permutation(r.items, gen, "cpu") if cfg.index_dist == "zipf" else None
    out = []
    for i in range(count):
        hist = history_lengths(cfg, seed, i)
        c = r.candidates
        total = sum(hist) + c * len(hist)
        if cfg.index_dist == "uniform":
            ids = torch.randint(0, r.items, (total,), generator=gen)
        else:
            ranks = zipf_ranks(r.items, total, cfg.zipf_alpha, gen, "cpu")
            p: Any = perm
            ids = p[ranks] if isinstance(p, torch.Tensor) else (ranks * p[0] + p[1]) % r.items
        feats = hidden[ids % HIDDEN_ROWS]  # (L, 8)
        actions, labels, stamps, weights = [], [], [], []
        s = 0
        for h in hist:
            user = feats[s : s + h].mean(0) if h else torch.zeros(HIDDEN_DIM)  # (8,)
            logit = torch.einsum("d,tde,ne->nt", user, task_w, feats[s : s + h + c]) * 2.0  # (n, T)
            bits = torch.bernoulli(torch.sigmoid(logit), generator=gen)  # (n, T)
            code = (bits * (2 ** torch.arange(r.num_tasks))).sum(1).long()  # (n,)
            code[h:] = 2**r.num_tasks
            actions.append(code)
            labels.append(bits[h:])
            gaps = torch.empty(h + 1).exponential_(1.0 / 3600.0, generator=gen).long() + 1
            t = torch.randint(0, 10**6, (1,), generator=gen) + torch.cumsum(gaps, 0)  # (h+1,)
            stamps.append(torch.cat([t[:h], t[h:].expand(c)]))
            weights.append(torch.full((c,), 1.0 / (c * len(hist))))
            s += h + c
        seq = Jagged.build(hist, (c,) * len(hist), torch.cat(stamps), device)
        dev = [t.to(device) for t in (ids, torch.cat(actions), torch.cat(labels), torch.cat(weights))]
        out.append(Batch(dev[0], dev[1], seq, dev[2], dev[3]))
    return out


def rank_batches(cfg: HSTUConfig, r: Resolved, ctx: RunContext, count: int) -> list[Batch]:
    """This rank's users: every rank draws the same global batches (same seed) and keeps its own users,
    so N processes see exactly one process's data at the global batch size."""
    if not ctx.distributed:
        return make_batches(cfg, r, ctx.torch_device, ctx.seed, count)
    split = split_batch(cfg.batch_size, ctx.world_size, cfg.scaling)
    full = make_batches(dataclasses.replace(cfg, batch_size=split.global_batch), r, "cpu", ctx.seed, count)
    return [
        user_slice(b, ctx.rank * split.per_rank, (ctx.rank + 1) * split.per_rank, ctx.torch_device)
        for b in full
    ]


def user_slice(b: Batch, lo: int, hi: int, device: Any) -> Batch:
    """Users [lo, hi) of a batch, their loss weights rescaled to a mean over these users."""
    from chipbench.models.hstu import Jagged

    seq = b.seq
    start, stop = int(seq.offsets[lo]), int(seq.offsets[hi])
    k0 = sum(seq.candidates[:lo])
    k1 = k0 + sum(seq.candidates[lo:hi])
    part = Jagged.build(seq.history[lo:hi], seq.candidates[lo:hi], seq.timestamps[start:stop].cpu(), device)
    scale = seq.batch_size / (hi - lo)
    return Batch(
        b.items[start:stop].to(device), b.actions[start:stop].to(device), part,
        b.labels[k0:k1].to(device), (b.weights[k0:k1] * scale).to(device),
    )  # fmt: skip
