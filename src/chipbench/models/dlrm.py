"""DLRM-style ranking model (DLRM dot interaction and DLRM-DCNv2), on two backends.

- ``torchrec``: TorchRec's own modules. The embeddings are a ``FusedEmbeddingBagCollection`` (FBGEMM's
  table-batched kernels with the embedding optimizer fused into the backward pass, so no gradient over
  a table is ever materialized); the dense parts are ``torchrec.models.dlrm``'s ``DenseArch``,
  ``InteractionArch`` / ``InteractionDCNArch`` (with ``LowRankCrossNet``) and ``OverArch``. Sparse
  features are ``KeyedJaggedTensor``.
- ``torch``: plain PyTorch with the same architecture and the same parameter order: one
  ``nn.EmbeddingBag(mode="sum", sparse=True)`` per table, whose sparse gradients are applied by a sparse
  optimizer (``torch.optim.SGD`` / ``torch.optim.Adagrad`` or the row-wise Adagrad below).

Both take the same batch layout (``SparseInput``): ids of all tables concatenated table-major, with one
length per (table, sample), exactly the layout of a ``KeyedJaggedTensor``. Construction takes an explicit
device (``meta`` works for the plain backend) and makes no single-process assumption.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

EMB_EPS = 1e-8
"""Epsilon of the Adagrad forms on both backends (FBGEMM's default; torch's Adagrad is told the same)."""


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a DLRM: what the model needs from a config, nothing about data or timing."""

    rows: tuple[int, ...]
    """Rows of each embedding table (one table per sparse feature)."""
    dim: int
    """Embedding dimension (all tables)."""
    bottom: tuple[int, ...]
    """Bottom MLP sizes including its input (the number of dense features) first."""
    top: tuple[int, ...]
    """Top MLP sizes after the interaction (its input width is derived), ending in 1."""
    interaction: str = "dot"
    """dot (DLRM) or dcn (DCNv2 low-rank cross network)."""
    dcn_layers: int = 3
    dcn_rank: int = 512

    @property
    def num_tables(self) -> int:
        return len(self.rows)

    @property
    def interaction_width(self) -> int:
        f, d = self.num_tables, self.dim
        if self.interaction == "dot":
            return d + (f + 1) * f // 2
        return (f + 1) * d


@dataclass
class SparseInput:
    """Ids of all tables concatenated table-major (F blocks of B bags), one length per (table, sample)."""

    values: torch.Tensor
    lengths: torch.Tensor
    batch_size: int
    num_tables: int

    def rows(self, start: int, stop: int) -> SparseInput:
        """The bags of samples [start, stop) of every table (this rank's slice of a global batch)."""
        b, f = self.batch_size, self.num_tables
        lens = self.lengths.view(f, b)
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


# ---------------------------------------------------------------------------------------------------
# Plain-PyTorch pieces (same math and parameter order as the TorchRec modules they mirror)


class MLP(nn.Module):
    """Linear + ReLU layers; ``last_relu=False`` leaves the final layer linear (TorchRec's OverArch)."""

    def __init__(self, sizes: tuple[int, ...], device: Any = None, last_relu: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b, device=device))
            if last_relu or i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DotInteraction(nn.Module):
    """Pairwise dots of [dense, sparse...] (upper triangle, no diagonal), concatenated with the dense
    vector: width D + (F+1)F/2 (as torchrec.models.dlrm.InteractionArch)."""

    def __init__(self, num_sparse: int, device: Any = None) -> None:
        super().__init__()
        self.F = num_sparse
        self.register_buffer(
            "triu_indices", torch.triu_indices(num_sparse + 1, num_sparse + 1, offset=1, device=device), False
        )

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        combined = torch.cat((dense.unsqueeze(1), sparse), dim=1)
        inter = torch.bmm(combined, combined.transpose(1, 2))
        triu: torch.Tensor = self.triu_indices  # type: ignore[assignment]
        flat = inter[:, triu[0], triu[1]]
        return torch.cat((dense, flat), dim=1)


class LowRankCross(nn.Module):
    """x_{l+1} = x0 * (W_l (V_l x_l) + b_l) + x_l (as torchrec.modules.crossnet.LowRankCrossNet)."""

    def __init__(self, in_features: int, num_layers: int, rank: int, device: Any = None) -> None:
        super().__init__()
        self.W_kernels = nn.ParameterList(
            [nn.Parameter(torch.empty(in_features, rank, device=device)) for _ in range(num_layers)]
        )
        self.V_kernels = nn.ParameterList(
            [nn.Parameter(torch.empty(rank, in_features, device=device)) for _ in range(num_layers)]
        )
        self.bias = nn.ParameterList(
            [nn.Parameter(torch.zeros(in_features, device=device)) for _ in range(num_layers)]
        )
        if device is None or torch.device(device).type != "meta":
            for p in (*self.W_kernels, *self.V_kernels):
                nn.init.xavier_normal_(p)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for w, v, b in zip(self.W_kernels, self.V_kernels, self.bias, strict=True):
            x = x0 * (nn.functional.linear(nn.functional.linear(x, v), w) + b) + x
        return x


class DCNInteraction(nn.Module):
    """Flatten [dense, sparse...] to B x (F+1)D and run the low-rank cross network over it."""

    def __init__(self, num_sparse: int, crossnet: nn.Module) -> None:
        super().__init__()
        self.F = num_sparse
        self.crossnet = crossnet

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        combined = torch.cat((dense.unsqueeze(1), sparse), dim=1)
        return self.crossnet(combined.reshape(dense.shape[0], -1))


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
                    bag.weight.uniform_(-((1.0 / n) ** 0.5), (1.0 / n) ** 0.5)

    def weights(self) -> list[torch.Tensor]:
        return [b.weight for b in self.tables]

    def prepare(self, sp: SparseInput) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per table (ids, offsets), computed once outside the timed step."""
        b = sp.batch_size
        lens = sp.lengths.view(sp.num_tables, b)
        per_table = lens.sum(1).tolist()
        out = []
        start = 0
        for t, n in enumerate(per_table):
            offsets = torch.zeros(b, dtype=torch.long, device=sp.values.device)
            offsets[1:] = torch.cumsum(lens[t], 0)[:-1]
            out.append((sp.values[start : start + n], offsets))
            start += n
        return out

    def forward(self, inp: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        pooled = [bag(ids, off) for bag, (ids, off) in zip(self.tables, inp, strict=True)]
        return torch.stack(pooled, dim=1)


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
                idx, vals = g.indices()[0], g.values()
                acc = self.state[p]["sum"]
                acc.index_add_(0, idx, vals.pow(2).mean(1))
                denom = acc[idx].sqrt_().add_(group["eps"]).unsqueeze(1)
                p.index_add_(0, idx, vals / denom, alpha=-group["lr"])


def sparse_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """The plain-PyTorch embedding optimizer: applied to sparse gradients, touching only looked-up rows."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=EMB_EPS)
    if name == "rowwise_adagrad":
        return RowWiseAdagrad(params, lr=lr)
    raise ValueError(f"unknown embedding optimizer {name!r}")


def dense_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=EMB_EPS)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown dense optimizer {name!r}")


# ---------------------------------------------------------------------------------------------------
# TorchRec pieces


def _emb_optimizer(optimizer: str, lr: float) -> tuple[Any, dict[str, Any]]:
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


def _table_configs(rows: tuple[int, ...], dim: int) -> list[Any]:
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

    def __init__(self, rows: tuple[int, ...], dim: int, optimizer: str, lr: float, device: Any) -> None:
        super().__init__()
        from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection

        opt_type, kwargs = _emb_optimizer(optimizer, lr)
        self.dim = dim
        self.keys = [f"f{i}" for i in range(len(rows))]
        self.ebc: Any = FusedEmbeddingBagCollection(
            tables=_table_configs(rows, dim),
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
        return kt.values().view(-1, len(self.keys), self.dim)


class ShardableEmbeddings(TorchRecEmbeddings):
    """A plain EmbeddingBagCollection for DistributedModelParallel to shard: built on any device (``meta``
    allocates nothing; DMP materializes each shard on its rank), the embedding optimizer registered with
    ``_apply_optimizer_in_backward`` so the sharded FBGEMM kernels fuse it into the backward pass, as the
    single-process ``TorchRecEmbeddings`` does. Same module names (``ebc.embedding_bags.t{i}.weight``)."""

    def __init__(self, rows: tuple[int, ...], dim: int, optimizer: str, lr: float, device: Any) -> None:
        nn.Module.__init__(self)
        from torch.distributed.optim import _apply_optimizer_in_backward
        from torchrec.modules.embedding_modules import EmbeddingBagCollection

        self.dim = dim
        self.keys = [f"f{i}" for i in range(len(rows))]
        self.ebc = EmbeddingBagCollection(tables=_table_configs(rows, dim), device=torch.device(device))
        opt_type, kwargs = _emb_optimizer(optimizer, lr)
        _apply_optimizer_in_backward(opt_type, self.ebc.parameters(), kwargs)

    def weights(self) -> list[torch.Tensor]:
        raise NotImplementedError("sharded tables have no single weight tensor: use the state_dict")

    def forward(self, kjt: Any) -> torch.Tensor:
        kt = self.ebc(kjt)
        if list(kt.keys()) == self.keys:
            return kt.values().view(-1, len(self.keys), self.dim)
        # Sharded, the pooled features come back grouped by sharding (e.g. by owning rank): back in order.
        by_key = kt.to_dict()
        return torch.stack([by_key[k] for k in self.keys], dim=1)


class _HybridLookup(torch.autograd.Function):
    """Forward: plain ``F.embedding_bag`` per table over the FBGEMM weights (no autograd bookkeeping);
    backward: the exact SGD update applied in place (no gradient is returned or materialized per table)."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, owner: HybridEmbeddings, inp: Any) -> torch.Tensor:  # type: ignore[override]
        ctx.owner, ctx.inp = owner, inp
        per_table, _, _ = inp
        w = owner.weights()
        pooled = [
            nn.functional.embedding_bag(ids, wt, off, mode="sum")
            for wt, (ids, off) in zip(w, per_table, strict=True)
        ]
        return torch.stack(pooled, dim=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:  # type: ignore[override]
        if ctx.owner.sgd_kernel == "fbgemm":
            ctx.owner.fused_sgd_backward(grad, ctx.inp)
        else:
            ctx.owner.index_add_sgd_backward(grad, ctx.inp)
        return None, None, None


class HybridEmbeddings(TorchRecEmbeddings):
    """FBGEMM table-batched weights (a FusedEmbeddingBagCollection) driven by the fastest CPU components
    measured here: the forward pooled by plain PyTorch ``embedding_bag`` (2x FBGEMM's CPU forward), the
    exact SGD update either by FBGEMM's fused CPU kernel (``sgd_kernel="fbgemm"``) or by ``index_add_``
    of -lr x each lookup's output gradient, one table per thread (``"index_add"``, the default: about 2x
    FBGEMM's kernel on the 2-core development CPU). Same math as SGD on the coalesced sparse gradient:
    duplicate ids add up. SGD on CPU only."""

    def __init__(
        self,
        rows: tuple[int, ...],
        dim: int,
        optimizer: str,
        lr: float,
        device: Any,
        sgd_kernel: str = "index_add",
    ) -> None:
        if optimizer != "sgd" or torch.device(device).type != "cpu":
            raise ValueError("the hybrid embedding path supports SGD on CPU only")
        if sgd_kernel not in ("index_add", "fbgemm"):
            raise ValueError(f"sgd_kernel must be index_add or fbgemm, got {sgd_kernel!r}")
        super().__init__(rows, dim, optimizer, lr, device)
        self.sgd_kernel = sgd_kernel
        self.tbe: Any = self.ebc._emb_modules[0]._emb_module
        self.lr_value = lr
        self.lr = torch.tensor(lr, dtype=torch.float32)
        self.anchor = torch.empty(0, requires_grad=True)
        self.threads = max(1, min(torch.get_num_threads(), len(rows)))
        self._pool: Any = None

    def prepare(self, sp: SparseInput) -> Any:
        b = sp.batch_size
        starts = torch.zeros(sp.num_tables * b + 1, dtype=torch.long, device=sp.values.device)
        starts[1:] = torch.cumsum(sp.lengths, 0)
        per_table = []
        for t in range(sp.num_tables):
            base = int(starts[t * b])
            end = int(starts[(t + 1) * b])
            offsets = starts[t * b : (t + 1) * b] - base
            per_table.append((sp.values[base:end], offsets))
        return per_table, sp.values.int(), starts.int()

    def index_add_sgd_backward(self, grad: torch.Tensor, inp: Any) -> None:
        per_table, _, _ = inp
        weights = [w.detach() for w in self.weights()]
        scaled = grad * -self.lr_value

        def one(t: int) -> None:
            ids, off = per_table[t]
            n = ids.numel()
            if n == 0:
                return
            lens = torch.diff(off, append=off.new_tensor([n]))
            src = torch.repeat_interleave(scaled[:, t], lens, dim=0, output_size=n)
            weights[t].index_add_(0, ids, src)  # duplicate ids accumulate: exact SGD

        if self.threads == 1:
            for t in range(len(per_table)):
                one(t)
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="dlrm-sgd")
        list(self._pool.map(one, range(len(per_table))))

    def fused_sgd_backward(self, grad: torch.Tensor, inp: Any) -> None:
        _, ids32, offsets32 = inp
        t = self.tbe
        torch.ops.fbgemm.split_embedding_backward_codegen_sgd_cpu(
            grad.reshape(grad.shape[0], -1).contiguous(),
            t.weights_host,
            t.weights_placements,
            t.weights_offsets,
            t.D_offsets,
            t.max_D,
            t.hash_size_cumsum,
            t.total_hash_size_bits,
            ids32,
            offsets32,
            int(t.pooling_mode),
            torch.empty(0, device=grad.device),
            False,
            self.lr,
        )

    def forward(self, inp: Any) -> torch.Tensor:
        out: torch.Tensor = _HybridLookup.apply(self.anchor, self, inp)  # type: ignore[no-untyped-call]
        return out


# ---------------------------------------------------------------------------------------------------
# The model


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


def build_embeddings(
    spec: ModelSpec,
    backend: str,
    device: Any,
    optimizer: str = "sgd",
    lr: float = 0.01,
    sgd_kernel: str = "index_add",
) -> TorchEmbeddings | TorchRecEmbeddings:
    """The sparse part alone (B x F x D out), on either backend."""
    if backend == "torchrec":
        return TorchRecEmbeddings(spec.rows, spec.dim, optimizer, lr, device)
    if backend == "hybrid":
        return HybridEmbeddings(spec.rows, spec.dim, optimizer, lr, device, sgd_kernel)
    return TorchEmbeddings(spec.rows, spec.dim, device=device)


def build_dense(spec: ModelSpec, backend: str, device: Any) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(bottom MLP, interaction, top MLP) on either backend, with the same parameter order."""
    f, d = spec.num_tables, spec.dim
    if backend in ("torchrec", "hybrid"):
        from torchrec.models.dlrm import DenseArch, InteractionArch, InteractionDCNArch, OverArch
        from torchrec.modules.crossnet import LowRankCrossNet

        bottom: nn.Module = DenseArch(spec.bottom[0], list(spec.bottom[1:]), device=device)
        if spec.interaction == "dot":
            inter: nn.Module = InteractionArch(f).to(device)
        else:
            with torch.device(device):  # LowRankCrossNet takes no device argument
                cross = LowRankCrossNet((f + 1) * d, spec.dcn_layers, spec.dcn_rank)
            inter = InteractionDCNArch(f, cross)
        top: nn.Module = OverArch(spec.interaction_width, list(spec.top), device=device)
        return bottom, inter, top
    bottom = MLP(spec.bottom, device=device)
    if spec.interaction == "dot":
        inter = DotInteraction(f, device=device)
    else:
        inter = DCNInteraction(f, LowRankCross((f + 1) * d, spec.dcn_layers, spec.dcn_rank, device=device))
    top = MLP((spec.interaction_width, *spec.top), device=device, last_relu=False)
    return bottom, inter, top


class DLRM(nn.Module):
    """Bottom MLP over dense features, embedding bags over sparse ids, interaction, top MLP -> logit.

    ``embedding_optimizer`` and ``lr`` matter only to the torchrec backend at construction (its optimizer
    is fused into the backward); on the torch backend use ``make_embedding_optimizer``.
    """

    def __init__(
        self,
        spec: ModelSpec,
        backend: str,
        device: Any,
        embedding_optimizer: str = "sgd",
        embedding_lr: float = 0.01,
        sgd_kernel: str = "index_add",
        shardable: bool = False,
    ) -> None:
        super().__init__()
        if backend not in ("torch", "torchrec", "hybrid"):
            raise ValueError(f"backend must be torch, torchrec or hybrid, got {backend!r}")
        if spec.interaction == "dot" and spec.bottom[-1] != spec.dim:
            raise ValueError("dot interaction needs the bottom MLP to end at embedding_dim")
        if shardable and backend != "torchrec":
            raise ValueError("shardable=True needs backend=torchrec")
        self.spec = spec
        self.backend = backend
        self.embedding_optimizer_name = embedding_optimizer
        self.sparse: TorchEmbeddings | TorchRecEmbeddings
        if shardable:  # tables on the meta device: DistributedModelParallel materializes this rank's shards
            self.sparse = ShardableEmbeddings(spec.rows, spec.dim, embedding_optimizer, embedding_lr, "meta")
        else:
            self.sparse = build_embeddings(
                spec, backend, device, embedding_optimizer, embedding_lr, sgd_kernel
            )
        self.bottom, self.inter, self.top = build_dense(spec, backend, device)

    def embedding_weights(self) -> list[torch.Tensor]:
        return self.sparse.weights()

    def dense_parameters(self) -> list[nn.Parameter]:
        return [*self.bottom.parameters(), *self.inter.parameters(), *self.top.parameters()]

    def make_embedding_optimizer(self, lr: float) -> torch.optim.Optimizer | None:
        """The sparse optimizer of the torch backend; None on torchrec (fused into backward)."""
        if self.backend in ("torchrec", "hybrid"):
            return None
        return sparse_optimizer(self.embedding_optimizer_name, self.sparse.weights(), lr)

    def prepare_sparse(self, sp: SparseInput) -> Any:
        """The backend's own sparse input (a KeyedJaggedTensor, or per-table ids/offsets)."""
        return self.sparse.prepare(sp)

    def forward(self, dense: torch.Tensor, sparse: Any) -> torch.Tensor:
        d = self.bottom(dense)
        e = self.sparse(sparse)
        return self.top(self.inter(d, e))


def copy_weights(src: DLRM, dst: DLRM) -> None:
    """Copy every weight of one model into another of the same spec (either backend)."""
    with torch.no_grad():
        for a, b in zip(src.embedding_weights(), dst.embedding_weights(), strict=True):
            b.copy_(a)
        for a, b in zip(src.dense_parameters(), dst.dense_parameters(), strict=True):
            b.copy_(a)


# ---------------------------------------------------------------------------------------------------
# Across processes: TorchRec's DistributedModelParallel, or DistributedDataParallel on plain PyTorch

SHARDING_TYPES = ("table_wise", "row_wise", "column_wise", "table_row_wise", "data_parallel")
"""Sharding types a run may force (TorchRec's ShardingType values); `auto` lets TorchRec's planner pick."""


def planner_device(kind: str) -> str:
    """TorchRec planner's compute_device for a chipbench device kind."""
    return "cuda" if kind in ("cuda", "rocm") else "cpu"


def supported_shardings(kind: str) -> tuple[str, ...]:
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


def make_planner(
    spec: ModelSpec,
    world_size: int,
    device_kind: str,
    sharding: str = "auto",
    batch_size: int | None = None,
    lookups: tuple[int, ...] | None = None,
    local_world_size: int | None = None,
) -> Any:
    """TorchRec's EmbeddingShardingPlanner for `world_size` ranks; a forced `sharding` constrains every
    table to that ShardingType, `lookups` (ids per bag, per table) feed its cost model."""
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
        local_world_size=local_world_size or world_size,
    )
    return EmbeddingShardingPlanner(topology=topology, batch_size=batch_size, constraints=constraints)


def sharders() -> list[Any]:
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder

    return [EmbeddingBagCollectionSharder()]


def plan_sharding(
    spec: ModelSpec,
    world_size: int,
    device_kind: str,
    sharding: str = "auto",
    embedding_optimizer: str = "sgd",
    batch_size: int | None = None,
    lookups: tuple[int, ...] | None = None,
) -> Any:
    """The ShardingPlan TorchRec's planner makes for this model over `world_size` ranks: the model is built
    on the meta device (nothing allocated) and no process group is needed."""
    model = DLRM(spec, "torchrec", "meta", embedding_optimizer, 0.01, shardable=True)
    planner = make_planner(spec, world_size, device_kind, sharding, batch_size, lookups)
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


def shard(
    module: nn.Module,
    spec: ModelSpec,
    device: Any,
    sharding: str = "auto",
    batch_size: int | None = None,
    lookups: tuple[int, ...] | None = None,
    local_world_size: int | None = None,
) -> tuple[Any, Any]:
    """(DistributedModelParallel, plan) of `module` (holding a ShardableEmbeddings, tables on the meta device)
    over the default process group: rank 0 plans, the plan is broadcast, each rank materializes its shards
    on `device` with the embedding optimizer fused into their backward; DMP wraps the rest (parameters not
    on the meta device, already initialized) in DistributedDataParallel."""
    import torch.distributed as dist
    from torchrec.distributed.model_parallel import DistributedModelParallel

    world = dist.get_world_size()
    kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
    planner = make_planner(spec, world, kind, sharding, batch_size, lookups, local_world_size)
    shs = sharders()
    with _quiet_planner():
        plan = planner.collective_plan(module, shs, dist.group.WORLD)
    dmp = DistributedModelParallel(module, device=torch.device(device), plan=plan, sharders=shs)
    return dmp, plan


def shard_dlrm(
    spec: ModelSpec,
    device: Any,
    embedding_optimizer: str,
    lr: float,
    sharding: str = "auto",
    batch_size: int | None = None,
    lookups: tuple[int, ...] | None = None,
    local_world_size: int | None = None,
) -> tuple[Any, Any]:
    """A DLRM under DistributedModelParallel: tables on the meta device, sharded by the plan; the dense part
    built on `device` (torch's seeded init; DDP broadcasts rank 0's copy) and replicated by DDP."""
    model = DLRM(spec, "torchrec", device, embedding_optimizer, lr, shardable=True)
    return shard(model, spec, device, sharding, batch_size, lookups, local_world_size)


def replicated_table_optimizer(
    model: nn.Module, dense_params: list[nn.Parameter], optimizer: str, lr: float
) -> torch.optim.Optimizer | None:
    """The embedding optimizer of the tables DMP replicates (sharding data_parallel): TorchRec gives them a
    dense-kernel lookup under DDP, with whole-table gradients all-reduced, and leaves their update to the
    caller (its ``in_backward_optimizer_filter`` pattern). None when every table is sharded (fused)."""
    from torchrec.optim.optimizers import in_backward_optimizer_filter

    dense = {id(p) for p in dense_params}
    params = [p for _, p in in_backward_optimizer_filter(model.named_parameters()) if id(p) not in dense]
    if not params:
        return None
    opt_type, kwargs = _emb_optimizer(optimizer, lr)
    opt: torch.optim.Optimizer = opt_type(params, **kwargs)
    return opt


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
    return DistributedDataParallel(model, device_ids=None if dev.type == "cpu" else [dev])
