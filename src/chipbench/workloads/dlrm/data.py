"""The DLRM family's synthetic data: Zipf or uniform ids through a fixed row permutation, labels from a
hidden logistic model, and this rank's rows of the global batches (torch imported inside functions only).

A batch is (dense (B, I), SparseInput, labels (B,)), generated on the run's device before timing.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from chipbench.core.contract import RunContext
from chipbench.workloads.common import split_batch
from chipbench.workloads.dlrm.config import DLRMConfig, Resolved


def zipf_ranks(n: int, count: int, alpha: float, gen: Any, device: Any) -> Any:
    """`count` ranks in [0, n) with P(rank k) ~ (k+1)^-alpha: the floor of a bounded continuous power law
    (inverse CDF), so its rank-frequency log-log slope is -alpha."""
    import torch

    # float64 for exact ranks up to 40M rows; MPS and some XPUs have no float64 (float32 blurs only the
    # coldest ranks there)
    fdt = torch.float32 if torch.device(device).type in ("mps", "xpu") else torch.float64
    u = torch.rand(count, generator=gen, device=device, dtype=fdt)
    if abs(alpha - 1.0) < 1e-9:
        x = torch.exp(u * math.log(n + 1.0))
    else:
        a1 = 1.0 - alpha
        x = (1.0 + u * ((n + 1.0) ** a1 - 1.0)) ** (1.0 / a1)
    return (x.floor().long() - 1).clamp_(0, n - 1)


def row_permutation(n: int, gen: Any, device: Any) -> Any:
    """A fixed random permutation of n rows: randperm up to 16M rows, else a random affine bijection
    (a, b): row = (rank * a + b) mod n."""
    import torch

    if n <= 1 << 24:
        return torch.randperm(n, generator=gen, device=device)
    a = int(torch.randint(1, n, (1,), generator=gen, device=device).item()) | 1
    while math.gcd(a, n) != 1:
        a += 2
    b = int(torch.randint(0, n, (1,), generator=gen, device=device).item())
    return (a, b)


def make_batches(cfg: DLRMConfig, r: Resolved, device: Any, seed: int, count: int) -> list[Any]:
    """`count` batches (dense, SparseInput, labels), seeded, generated on `device`. Labels come from a
    hidden logistic model over the dense features and a per-row score of every id, so loss can fall."""
    import torch

    from chipbench.models.dlrm import SparseInput

    gen = torch.Generator(device=device).manual_seed(seed)
    b, f = cfg.batch_size, r.num_tables
    n_dense = r.bottom_mlp[0]
    w_dense = torch.randn(n_dense, generator=gen, device=device) / math.sqrt(n_dense)
    w_table = torch.randn(f, generator=gen, device=device) * (2.0 / math.sqrt(f))
    salts = torch.randint(0, 1 << 30, (f,), generator=gen, device=device).tolist()
    perms = [row_permutation(n, gen, device) if cfg.index_dist == "zipf" else None for n in r.rows]
    out = []
    for _ in range(count):
        dense = torch.randn(b, n_dense, generator=gen, device=device)  # (B, I)
        logit = dense @ w_dense  # (B,)
        values, lengths = [], []
        for t, (n, lk) in enumerate(zip(r.rows, r.lookups, strict=True)):
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


def rank_batches(cfg: DLRMConfig, r: Resolved, ctx: RunContext, count: int) -> list[Any]:
    """This rank's batches: every rank generates the same global batches (same seed) and keeps its own rows,
    so a run over N processes sees exactly the data of one process at the global batch size."""
    if not ctx.distributed:
        return make_batches(cfg, r, ctx.torch_device, ctx.seed, count)
    split = split_batch(cfg.batch_size, ctx.world_size, cfg.scaling)
    local = split.per_rank
    full = make_batches(
        dataclasses.replace(cfg, batch_size=split.global_batch), r, ctx.torch_device, ctx.seed, count
    )
    lo, hi = ctx.rank * local, (ctx.rank + 1) * local
    return [(d[lo:hi].contiguous(), sp.rows(lo, hi), y[lo:hi].contiguous()) for d, sp, y in full]
