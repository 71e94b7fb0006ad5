"""The embedding tables of a DLRM on its three backends, and their sparse optimizers.

- ``TorchEmbeddings``: one ``nn.EmbeddingBag(mode="sum", sparse=True)`` per table; its sparse gradients
  are applied by ``sparse_optimizer`` (``torch.optim.SGD`` / ``torch.optim.Adagrad`` / ``RowWiseAdagrad``).
- ``TorchRecEmbeddings``: TorchRec's ``FusedEmbeddingBagCollection`` (FBGEMM's table-batched kernels, the
  optimizer fused into the backward pass); ``ShardableEmbeddings`` is its form for DistributedModelParallel.
- ``HybridEmbeddings`` (CPU, SGD): the FBGEMM tables looked up by plain ``embedding_bag`` and updated by
  ``index_add_``.

Every one takes a ``SparseInput`` through ``prepare`` (outside the timed step) and returns (B, F, D);
the shape letters are those of ``chipbench.models.dlrm``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from chipbench.models import fill

EmbeddingOptimizer = Literal["sgd", "adagrad", "rowwise_adagrad"]


class _FxTracingNotice(logging.Filter):
    """Drops torch's one warning that `is_fx_tracing()` will also be true under torch.export: TorchRec's
    KeyedJaggedTensor asks it when built (``prepare``), and the notice, meant for the authors of code
    that calls it, says nothing about the run. Every other record of the logger passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        notice = record.levelno == logging.WARNING and record.getMessage().startswith(
            "is_fx_tracing will return true"
        )
        return not notice


logging.getLogger("torch.fx._symbolic_trace").addFilter(_FxTracingNotice())

EMB_EPS = 1e-8
"""Epsilon of the Adagrad forms on both backends (FBGEMM's default; torch's Adagrad is told the same)."""


@dataclass
class SparseInput:
    """Ids of all tables concatenated table-major (F blocks of B bags), one length per (table, sample)."""

    values: torch.Tensor
    """(N,) ids, int64."""
    lengths: torch.Tensor
    """(F * B,) ids per bag, table-major."""
    batch_size: int
    num_tables: int

    def rows(self, start: int, stop: int) -> SparseInput:
        """The bags of samples [start, stop) of every table (this rank's slice of a global batch)."""
        b, f = self.batch_size, self.num_tables
        lens = self.lengths.view(f, b)  # (F, B)
        bounds = torch.zeros(f * b + 1, dtype=torch.long, device=self.lengths.device)
        bounds[1:] = torch.cumsum(self.lengths, 0)
        firsts = bounds[: f * b].view(f, b)
        ends = bounds[1:].view(f, b)
        parts = (
            [self.values[int(firsts[t, start]) : int(ends[t, stop - 1])] for t in range(f)]
            if stop > start
            else []
        )
        values = torch.cat(parts) if parts else self.values[:0]
        return SparseInput(values, lens[:, start:stop].reshape(-1).clone(), stop - start, f)


class TorchEmbeddings(nn.Module):
    """One nn.EmbeddingBag(sum, sparse=True) per table; returns B x F x D."""

    def __init__(self, rows: tuple[int, ...], dim: int, device: Any = None) -> None:
        super().__init__()
        self.dim = dim
        self.tables = [nn.EmbeddingBag(n, dim, mode="sum", sparse=True, device=device) for n in rows]
        self.bags = nn.ModuleList(self.tables)
        if device is None or torch.device(device).type != "meta":
            with torch.no_grad():
                for n, bag in zip(rows, self.tables, strict=True):  # TorchRec's default init
                    fill.uniform_(bag.weight, -((1.0 / n) ** 0.5), (1.0 / n) ** 0.5)

    def weights(self) -> list[torch.Tensor]:
        return [b.weight for b in self.tables]

    def prepare(self, sp: SparseInput) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per table (ids, offsets), computed once outside the timed step."""
        b = sp.batch_size
        lens = sp.lengths.view(sp.num_tables, b)  # (F, B)
        per_table = lens.sum(1).tolist()
        out = []
        start = 0
        for t, n in enumerate(per_table):
            offsets = torch.zeros(b, dtype=torch.long, device=sp.values.device)  # (B,)
            offsets[1:] = torch.cumsum(lens[t], 0)[:-1]
            out.append((sp.values[start : start + n], offsets))
            start += n
        return out

    def forward(self, inp: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        pooled = [bag(ids, off) for bag, (ids, off) in zip(self.tables, inp, strict=True)]  # F x (B, D)
        return torch.stack(pooled, dim=1)  # (B, F, D)


class RowWiseAdagrad(torch.optim.Optimizer):
    """Row-wise Adagrad over sparse gradients (FBGEMM's EXACT_ROWWISE_ADAGRAD): one accumulator per row,
    state += mean(g^2 over the row); w -= lr * g / (sqrt(state) + eps)."""

    def __init__(self, params: Any, lr: float, eps: float = EMB_EPS) -> None:
        super().__init__(params, {"lr": lr, "eps": eps})
        for group in self.param_groups:  # eager, as torch's Adagrad: set-up can then place it in memory
            for p in group["params"]:
                self.state[p]["sum"] = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.coalesce()
                idx, vals = g.indices()[0], g.values()  # (rows touched,), (rows touched, D)
                acc = self.state[p]["sum"]
                acc.index_add_(0, idx, vals.pow(2).mean(1))
                denom = acc[idx].sqrt_().add_(group["eps"]).unsqueeze(1)
                p.index_add_(0, idx, vals / denom, alpha=-group["lr"])


def sparse_optimizer(
    name: EmbeddingOptimizer, params: list[torch.Tensor], lr: float
) -> torch.optim.Optimizer:
    """The plain-PyTorch embedding optimizer: applied to sparse gradients, touching only looked-up rows."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=EMB_EPS)
    if name == "rowwise_adagrad":
        return RowWiseAdagrad(params, lr=lr)
    raise ValueError(f"unknown embedding optimizer {name!r}")


# ---------------------------------------------------------------------------------------------------
# TorchRec pieces


def fused_optimizer(optimizer: EmbeddingOptimizer, lr: float) -> tuple[Any, dict[str, Any]]:
    """(optimizer class, kwargs) of the embedding optimizer fused into FBGEMM's backward."""
    import torchrec.optim as trec_optim

    opt_type: Any = {
        "sgd": torch.optim.SGD,
        "adagrad": torch.optim.Adagrad,
        "rowwise_adagrad": trec_optim.RowWiseAdagrad,
    }[optimizer]
    kwargs: dict[str, Any] = {"lr": lr}
    if optimizer != "sgd":
        kwargs["eps"] = EMB_EPS
    return opt_type, kwargs


def table_configs(rows: tuple[int, ...], dim: int) -> list[Any]:
    """One EmbeddingBagConfig per table: table t{i} serves feature f{i}, sum pooling."""
    from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType

    return [
        EmbeddingBagConfig(
            name=f"t{i}",
            embedding_dim=dim,
            num_embeddings=n,
            feature_names=[f"f{i}"],
            pooling=PoolingType.SUM,
        )
        for i, n in enumerate(rows)
    ]


class TorchRecEmbeddings(nn.Module):
    """FusedEmbeddingBagCollection (FBGEMM TBE, optimizer fused into backward); returns B x F x D."""

    def __init__(
        self, rows: tuple[int, ...], dim: int, optimizer: EmbeddingOptimizer, lr: float, device: Any
    ) -> None:
        super().__init__()
        from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection

        opt_type, kwargs = fused_optimizer(optimizer, lr)
        self.dim = dim
        self.keys = [f"f{i}" for i in range(len(rows))]
        self.ebc: Any = FusedEmbeddingBagCollection(
            tables=table_configs(rows, dim),
            optimizer_type=opt_type,
            optimizer_kwargs=kwargs,
            device=torch.device(device),
        )

    def weights(self) -> list[torch.Tensor]:
        return [self.ebc.embedding_bags[f"t{i}"].weight for i in range(len(self.keys))]

    def prepare(self, sp: SparseInput) -> Any:
        from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

        return KeyedJaggedTensor.from_lengths_sync(keys=self.keys, values=sp.values, lengths=sp.lengths)

    def forward(self, kjt: Any) -> torch.Tensor:
        kt = self.ebc(kjt)
        return kt.values().view(-1, len(self.keys), self.dim)  # (B, F*D) -> (B, F, D)


class ShardableEmbeddings(TorchRecEmbeddings):
    """A plain EmbeddingBagCollection for DistributedModelParallel to shard: built on any device (``meta``
    allocates nothing; DMP materializes each shard on its rank), the embedding optimizer registered with
    ``_apply_optimizer_in_backward`` so the sharded FBGEMM kernels fuse it into the backward pass, as the
    single-process ``TorchRecEmbeddings`` does. Same module names (``ebc.embedding_bags.t{i}.weight``)."""

    def __init__(
        self, rows: tuple[int, ...], dim: int, optimizer: EmbeddingOptimizer, lr: float, device: Any
    ) -> None:
        nn.Module.__init__(self)
        from torch.distributed.optim import _apply_optimizer_in_backward
        from torchrec.modules.embedding_modules import EmbeddingBagCollection

        self.dim = dim
        self.keys = [f"f{i}" for i in range(len(rows))]
        self.ebc = EmbeddingBagCollection(tables=table_configs(rows, dim), device=torch.device(device))
        opt_type, kwargs = fused_optimizer(optimizer, lr)
        _apply_optimizer_in_backward(opt_type, self.ebc.parameters(), kwargs)

    def weights(self) -> list[torch.Tensor]:
        raise NotImplementedError("sharded tables have no single weight tensor: use the state_dict")

    def forward(self, kjt: Any) -> torch.Tensor:
        kt = self.ebc(kjt)
        if list(kt.keys()) == self.keys:
            return kt.values().view(-1, len(self.keys), self.dim)  # (B, F, D)
        # Sharded, the pooled features come back grouped by sharding (e.g. by owning rank): back in order.
        by_key = kt.to_dict()  # feature -> (B, D)
        return torch.stack([by_key[k] for k in self.keys], dim=1)  # (B, F, D)


class _HybridLookup(torch.autograd.Function):
    """Forward: plain ``F.embedding_bag`` per table over the FBGEMM weights (no autograd bookkeeping);
    backward: the exact SGD update applied in place (no gradient is returned or materialized per table)."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, owner: HybridEmbeddings, inp: Any) -> torch.Tensor:  # type: ignore[override]
        ctx.owner, ctx.inp = owner, inp
        w = owner.weights()
        pooled = [
            nn.functional.embedding_bag(ids, wt, off, mode="sum")  # (B, D)
            for wt, (ids, off) in zip(w, inp, strict=True)
        ]
        return torch.stack(pooled, dim=1)  # (B, F, D)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:  # type: ignore[override]
        ctx.owner.index_add_sgd_backward(grad, ctx.inp)
        return None, None, None


def _one_intra_op_thread() -> None:
    """A worker thread's initializer: compute on one intra-op thread from here on."""
    torch.set_num_threads(1)
    torch.get_num_threads()  # settles this thread's count now, before the caller resets the default


def _single_threaded_workers(n: int) -> Any:
    """A pool of `n` threads that compute on one intra-op thread each, all started now.

    One intra-op thread per worker: the workers already fill the cores, and an OpenMP team of its own per
    worker (torch's default in a new thread) oversubscribes them (3% of the model1 step here, interleaved).
    torch.set_num_threads also sets the count every thread started later begins with, so every worker is
    started (held at a barrier until all are) before the caller's count is put back, whatever happens.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    caller = torch.get_num_threads()
    pool = ThreadPoolExecutor(n, thread_name_prefix="dlrm-sgd", initializer=_one_intra_op_thread)
    try:
        barrier = threading.Barrier(n)
        list(
            pool.map(lambda _: barrier.wait(60), range(n))
        )  # a waiting worker is busy: each submit starts one
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        torch.set_num_threads(caller)
    return pool


class HybridEmbeddings(TorchRecEmbeddings):
    """FBGEMM table-batched weights (a FusedEmbeddingBagCollection) driven by the fastest CPU components
    measured here: the forward pooled by plain PyTorch ``embedding_bag`` (2x FBGEMM's CPU forward), the
    exact SGD update by ``index_add_`` of -lr x each lookup's output gradient, one table per thread (about
    2x FBGEMM's fused CPU SGD kernel on the 2-core development CPU). Same math as SGD on the coalesced
    sparse gradient: duplicate ids add up. SGD on CPU only."""

    def __init__(
        self, rows: tuple[int, ...], dim: int, optimizer: EmbeddingOptimizer, lr: float, device: Any
    ) -> None:
        if optimizer != "sgd" or torch.device(device).type != "cpu":
            raise ValueError("the hybrid embedding path supports SGD on CPU only")
        super().__init__(rows, dim, optimizer, lr, device)
        self.lr_value = lr
        self.anchor = torch.empty(0, requires_grad=True)
        self.threads = max(1, min(torch.get_num_threads(), len(rows)))
        self._pool: Any = None

    def prepare(self, sp: SparseInput) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per table (ids, offsets into them), computed once outside the timed step."""
        b = sp.batch_size
        starts = torch.zeros(sp.num_tables * b + 1, dtype=torch.long, device=sp.values.device)
        starts[1:] = torch.cumsum(sp.lengths, 0)  # (F*B + 1,)
        per_table = []
        for t in range(sp.num_tables):
            base = int(starts[t * b])
            end = int(starts[(t + 1) * b])
            offsets = starts[t * b : (t + 1) * b] - base  # (B,)
            per_table.append((sp.values[base:end], offsets))
        return per_table

    def index_add_sgd_backward(self, grad: torch.Tensor, per_table: list[Any]) -> None:
        """w[id] -= lr * grad[bag] for every lookup, one table per thread; `grad` is (B, F, D)."""
        weights = [w.detach() for w in self.weights()]
        scaled = grad * -self.lr_value

        def one(t: int) -> None:
            ids, off = per_table[t]
            n = ids.numel()
            if n == 0:
                return
            lens = torch.diff(off, append=off.new_tensor([n]))  # (B,)
            src = torch.repeat_interleave(scaled[:, t], lens, dim=0, output_size=n)  # (L_t, D)
            weights[t].index_add_(0, ids, src)  # duplicate ids accumulate: exact SGD

        if self.threads == 1:
            for t in range(len(per_table)):
                one(t)
            return
        if self._pool is None:
            self._pool = _single_threaded_workers(self.threads)
        list(self._pool.map(one, range(len(per_table))))

    def forward(self, inp: Any) -> torch.Tensor:
        out: torch.Tensor = _HybridLookup.apply(self.anchor, self, inp)  # type: ignore[no-untyped-call]
        return out  # (B, F, D)


# ---------------------------------------------------------------------------------------------------
# Whatever the backend


_TBE_TABLES = ("weights_host", "momentum1_host", "momentum2_host")
"""FBGEMM TBE's host tensors that are indexed by row: the weights and the per-row optimizer state."""
_DENSE_TBE = "DenseTableBatchedEmbeddingBagsCodegen"
"""FBGEMM's TBE for tables DMP replicates (sharding data_parallel): its tables are `weights`."""


def table_tensors(module: nn.Module, optimizers: tuple[Any, ...] = ()) -> list[torch.Tensor]:
    """Every row-indexed table tensor inside `module`, whatever the backend or wrapper (DDP, DMP):
    FBGEMM TBE weights and optimizer state, nn.EmbeddingBag weights, and the state `optimizers` keep
    for those weights (torch's sparse Adagrad, RowWiseAdagrad)."""
    subs = list(module.modules())
    for sub in list(subs):  # FusedEmbeddingBagCollection keeps its TBE wrappers in a plain list
        wrappers = getattr(sub, "_emb_modules", None)
        if isinstance(wrappers, list):
            subs += [m for w in wrappers if isinstance(w, nn.Module) for m in w.modules()]
    out: list[torch.Tensor] = []
    seen: set[int] = set()
    for sub in subs:
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        if isinstance(sub, nn.EmbeddingBag):
            out.append(sub.weight.detach())
        dense_weights = getattr(sub, "weights", None) if type(sub).__name__ == _DENSE_TBE else None
        if isinstance(dense_weights, torch.Tensor):
            out.append(dense_weights.detach())
        for name in _TBE_TABLES:
            t = getattr(sub, name, None)
            if isinstance(t, torch.Tensor) and t.numel() > 1:
                out.append(t.detach())
    tables = {w.untyped_storage().data_ptr() for w in out}
    for opt in optimizers:
        if opt is None:
            continue
        for p, state in opt.state.items():
            if p.untyped_storage().data_ptr() in tables:
                out += [v for v in state.values() if isinstance(v, torch.Tensor) and v.numel() > 1]
    return out


def torchrec_available() -> tuple[bool, str]:
    """(usable, why): TorchRec and FBGEMM import and their fused CPU/GPU kernels load."""
    try:
        import fbgemm_gpu  # noqa: F401
        import torchrec  # noqa: F401
        from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection  # noqa: F401
    except Exception as exc:  # any import failure (missing package, ABI mismatch) means: not usable
        return False, f"torchrec/fbgemm_gpu failed to import: {type(exc).__name__}: {exc}"[:300]
    return True, "torchrec and fbgemm_gpu import"
