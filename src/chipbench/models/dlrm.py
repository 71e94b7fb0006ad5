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

import itertools
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

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.coalesce()
                idx, vals = g.indices()[0], g.values()
                st = self.state[p]
                if "sum" not in st:
                    st["sum"] = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
                acc = st["sum"]
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


class TorchRecEmbeddings(nn.Module):
    """FusedEmbeddingBagCollection (FBGEMM TBE, optimizer fused into backward); returns B x F x D."""

    def __init__(self, rows: tuple[int, ...], dim: int, optimizer: str, lr: float, device: Any) -> None:
        super().__init__()
        import torchrec.optim as trec_optim
        from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType
        from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection

        opt_type: Any = {
            "sgd": torch.optim.SGD,
            "adagrad": torch.optim.Adagrad,
            "rowwise_adagrad": trec_optim.RowWiseAdagrad,
        }[optimizer]
        kwargs: dict[str, Any] = {"lr": lr}
        if optimizer != "sgd":
            kwargs["eps"] = EMB_EPS
        self.dim = dim
        self.keys = [f"f{i}" for i in range(len(rows))]
        tables = [
            EmbeddingBagConfig(
                name=f"t{i}", embedding_dim=dim, num_embeddings=n, feature_names=[k], pooling=PoolingType.SUM
            )
            for i, (n, k) in enumerate(zip(rows, self.keys, strict=True))
        ]
        self.ebc = FusedEmbeddingBagCollection(
            tables=tables, optimizer_type=opt_type, optimizer_kwargs=kwargs, device=torch.device(device)
        )

    def weights(self) -> list[torch.Tensor]:
        return [self.ebc.embedding_bags[f"t{i}"].weight for i in range(len(self.keys))]

    def prepare(self, sp: SparseInput) -> Any:
        from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

        return KeyedJaggedTensor.from_lengths_sync(keys=self.keys, values=sp.values, lengths=sp.lengths)

    def forward(self, kjt: Any) -> torch.Tensor:
        kt = self.ebc(kjt)
        return kt.values().view(-1, len(self.keys), self.dim)


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
    ) -> None:
        super().__init__()
        if backend not in ("torch", "torchrec", "hybrid"):
            raise ValueError(f"backend must be torch, torchrec or hybrid, got {backend!r}")
        if spec.interaction == "dot" and spec.bottom[-1] != spec.dim:
            raise ValueError("dot interaction needs the bottom MLP to end at embedding_dim")
        self.spec = spec
        self.backend = backend
        self.embedding_optimizer_name = embedding_optimizer
        self.sparse: TorchEmbeddings | TorchRecEmbeddings = build_embeddings(
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
