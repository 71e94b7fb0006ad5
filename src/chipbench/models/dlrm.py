"""DLRM-style ranking model (DLRM dot interaction and DLRM-DCNv2), on two backends.

- ``torchrec``: TorchRec's own modules. The embeddings are a ``FusedEmbeddingBagCollection`` (FBGEMM's
  table-batched kernels with the embedding optimizer fused into the backward pass, so no gradient over
  a table is ever materialized); the dense parts are ``torchrec.models.dlrm``'s ``DenseArch``,
  ``InteractionArch`` / ``InteractionDCNArch`` (with ``LowRankCrossNet``) and ``OverArch``. Sparse
  features are ``KeyedJaggedTensor``.
- ``torch``: plain PyTorch with the same architecture and the same parameter order: one
  ``nn.EmbeddingBag(mode="sum", sparse=True)`` per table, whose sparse gradients are applied by a sparse
  optimizer (``torch.optim.SGD`` / ``torch.optim.Adagrad`` or the row-wise Adagrad below).
- ``hybrid`` (CPU, SGD): the torchrec tables and dense modules, looked up by plain ``embedding_bag`` and
  updated by ``index_add_`` (``HybridEmbeddings``).

All take the same batch layout (``SparseInput``): ids of all tables concatenated table-major, with one
length per (table, sample), exactly the layout of a ``KeyedJaggedTensor``. Construction takes an explicit
device (``meta`` works for the plain backend) and makes no single-process assumption. The embedding
tables of each backend are in ``chipbench.models.dlrm_embeddings``; the layout across processes
(TorchRec's planner, DistributedModelParallel, DDP) in ``chipbench.models.dlrm_sharding``.

Shapes in the comments below:

- B: batch size (samples per step)
- F: sparse features, one embedding table each (``spec.num_tables``)
- D: embedding dimension, the same for every table (``spec.dim``)
- L: ids per bag, i.e. per (table, sample): the ``lengths``
- N: ids of a whole batch, all tables: the sum of the lengths
- I: dense features, the bottom MLP's input (``spec.bottom[0]``)
- W: interaction width, D + (F+1)F/2 (dot) or (F+1)D (dcn) (``spec.interaction_width``)

Example::

    import torch
    from chipbench.models.dlrm import DLRM, ModelSpec, SparseInput

    # F=2 tables of 100 and 50 rows, D=8; bottom MLP I=4 -> 16 -> 8 (= D); top MLP W=11 -> 16 -> 1
    spec = ModelSpec(rows=(100, 50), dim=8, bottom=(4, 16, 8), top=(16, 1))
    model = DLRM(spec, "torch", "cpu")
    B = 3
    lengths = torch.tensor([1, 2, 0, 1, 1, 3])  # (F * B,): table 0's three bags, then table 1's
    values = torch.randint(0, 50, (int(lengths.sum()),))  # (N,) = (8,)
    dense = torch.randn(B, 4)  # (B, I)
    logit = model(dense, model.prepare_sparse(SparseInput(values, lengths, B, 2)))  # (B, 1)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from chipbench.models.dlrm_embeddings import (
    EMB_EPS,
    EmbeddingOptimizer,
    HybridEmbeddings,
    ShardableEmbeddings,
    SparseInput,
    TorchEmbeddings,
    TorchRecEmbeddings,
    sparse_optimizer,
)

Backend = Literal["torch", "torchrec", "hybrid"]
"""torch: nn.EmbeddingBag + sparse optimizers; torchrec: FBGEMM fused tables; hybrid: see HybridEmbeddings."""
Interaction = Literal["dot", "dcn"]
DenseOptimizer = Literal["sgd", "adagrad", "adam"]


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
    interaction: Interaction = "dot"
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


# ---------------------------------------------------------------------------------------------------
# Plain-PyTorch dense pieces (same math and parameter order as the TorchRec modules they mirror)


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
        return self.model(x)  # (B, sizes[0]) -> (B, sizes[-1])


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
        combined = torch.cat((dense.unsqueeze(1), sparse), dim=1)  # (B, F+1, D)
        inter = torch.bmm(combined, combined.transpose(1, 2))  # (B, F+1, F+1)
        triu: torch.Tensor = self.triu_indices  # type: ignore[assignment]
        flat = inter[:, triu[0], triu[1]]  # (B, (F+1)F/2)
        return torch.cat((dense, flat), dim=1)  # (B, W)


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
        x = x0  # (B, in_features)
        for w, v, b in zip(self.W_kernels, self.V_kernels, self.bias, strict=True):
            x = x0 * (nn.functional.linear(nn.functional.linear(x, v), w) + b) + x  # via (B, rank)
        return x


class DCNInteraction(nn.Module):
    """Flatten [dense, sparse...] to B x (F+1)D and run the low-rank cross network over it."""

    def __init__(self, num_sparse: int, crossnet: nn.Module) -> None:
        super().__init__()
        self.F = num_sparse
        self.crossnet = crossnet

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        combined = torch.cat((dense.unsqueeze(1), sparse), dim=1)  # (B, F+1, D)
        return self.crossnet(combined.reshape(dense.shape[0], -1))  # (B, (F+1)D) = (B, W)


def dense_optimizer(name: DenseOptimizer, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """The optimizer of the MLPs and the interaction."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=EMB_EPS)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown dense optimizer {name!r}")


# ---------------------------------------------------------------------------------------------------
# The model


def build_embeddings(
    spec: ModelSpec, backend: Backend, device: Any, optimizer: EmbeddingOptimizer = "sgd", lr: float = 0.01
) -> TorchEmbeddings | TorchRecEmbeddings:
    """The sparse part alone (B x F x D out), on either backend."""
    if backend == "torchrec":
        return TorchRecEmbeddings(spec.rows, spec.dim, optimizer, lr, device)
    if backend == "hybrid":
        return HybridEmbeddings(spec.rows, spec.dim, optimizer, lr, device)
    return TorchEmbeddings(spec.rows, spec.dim, device=device)


def build_dense(spec: ModelSpec, backend: Backend, device: Any) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(bottom MLP (B, I) -> (B, D), interaction (B, D), (B, F, D) -> (B, W), top MLP (B, W) -> (B, 1))
    on either backend, with the same parameter order."""
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
        backend: Backend,
        device: Any,
        embedding_optimizer: EmbeddingOptimizer = "sgd",
        embedding_lr: float = 0.01,
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
        self.embedding_optimizer_name: EmbeddingOptimizer = embedding_optimizer
        self.sparse: TorchEmbeddings | TorchRecEmbeddings
        if shardable:  # tables on the meta device: DistributedModelParallel materializes this rank's shards
            self.sparse = ShardableEmbeddings(spec.rows, spec.dim, embedding_optimizer, embedding_lr, "meta")
        else:
            self.sparse = build_embeddings(spec, backend, device, embedding_optimizer, embedding_lr)
        self.bottom, self.inter, self.top = build_dense(spec, backend, device)

    def embedding_weights(self) -> list[torch.Tensor]:
        return self.sparse.weights()  # F x (rows_t, D)

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
        d = self.bottom(dense)  # (B, I) -> (B, D)
        e = self.sparse(sparse)  # (B, F, D)
        return self.top(self.inter(d, e))  # (B, W) -> (B, 1)


def copy_weights(src: DLRM, dst: DLRM) -> None:
    """Copy every weight of one model into another of the same spec (either backend)."""
    with torch.no_grad():
        for a, b in zip(src.embedding_weights(), dst.embedding_weights(), strict=True):
            b.copy_(a)
        for a, b in zip(src.dense_parameters(), dst.dense_parameters(), strict=True):
            b.copy_(a)
