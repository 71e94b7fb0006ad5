"""An HSTU generative recommender (Zhai et al., ICML 2024; MLPerf DLRMv3) in one readable file.

Item + action embeddings -> preprocessor MLP -> n_layers x HSTU layer over the merged jagged sequence
(each user's history, then their candidates) -> LayerNorm -> multitask head on the candidates' positions.

One HSTU layer (no softmax)::

    u, v, q, k = split(silu(Linear(LayerNorm(x))))
    a = (silu(alpha * q k^T + bias) / max_seq_len) * mask) @ v
    x = x + Linear(dropout(LayerNorm(a) * u))

The mask: a history position sees the history up to itself; a candidate sees the whole history and
itself, never another candidate. Sequences are jagged: the values of every user back to back, (L, ...),
with `offsets` (B+1,). Two attention paths compute the same function:

- ``jagged``: per user, only the blocks the mask can open: the causal history block (h x h), the
  candidates against the history (c x h), and each candidate against itself (a diagonal). Nothing is
  computed on padding and the c x c block of candidates, all masked but its diagonal, is never formed.
- ``padded``: q, k, v padded to (B, N) (FBGEMM's jagged operators where installed, index copies
  otherwise), full (N x N) scores, the mask applied, back to jagged: the public reference's PyTorch path.

Shape glossary (the letters of the shape comments):

- B: users in the batch
- L: valid tokens of the batch, all users' histories and candidates (sum of n_b)
- N: padded length (longest merged sequence of the batch)
- h, c, n: one user's history length, candidates, and n = h + c
- K: candidates of the batch (sum of c)
- C: embedding / model dim
- H: heads; A: query/key dim per head; V: value (linear) dim per head
- P: preprocessor and head hidden dim
- T: tasks (logits per candidate)

Example::

    import torch
    from chipbench.models.hstu import HSTU, HSTUArgs, Jagged

    a = HSTUArgs(num_items=1000, dim=32, n_layers=2, n_heads=2, attn_dim=8, linear_dim=8,
                 hidden=16, max_seq_len=16)
    model = HSTU(a)
    seq = Jagged.build(history=[3, 0, 5], candidates=[2, 1, 2])  # L = 13 tokens, K = 5
    items = torch.randint(0, 1000, (seq.num_tokens,))  # (L,)
    actions = torch.randint(0, a.num_actions, (seq.num_tokens,))  # (L,)
    logits = model(items, actions, seq)  # (K, T) = (5, 2)

Plain torch (FBGEMM when it imports): this module imports nothing of chipbench but its sibling models.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from chipbench.models import fill

AttentionPath = Literal["jagged", "padded"]
JaggedOps = Literal["fbgemm", "torch"]
EmbeddingKind = Literal["fbgemm", "torch"]


@dataclass(frozen=True)
class HSTUArgs:
    num_items: int
    """Rows of the item table."""
    dim: int
    """C: embedding and transducer width."""
    n_layers: int
    n_heads: int
    attn_dim: int
    """A: query/key width per head."""
    linear_dim: int
    """V: value (and u) width per head."""
    hidden: int
    """P: hidden width of the preprocessor and of the task head."""
    max_seq_len: int
    """Longest merged sequence the model takes: the attention's 1/max_seq_len scale, and the position
    bias's span."""
    num_tasks: int = 2
    """T: logits per candidate (e.g. click and long watch)."""
    input_dropout: float = 0.0
    linear_dropout: float = 0.0
    relative_bias: bool = False
    """Add a learned relative position and time bias to the scores (one per layer, shared by heads)."""
    time_buckets: int = 64
    """Buckets of log2(1 + seconds between two events) of the time bias."""
    eps: float = 1e-6

    @property
    def num_actions(self) -> int:
        """Action ids: 2^T task outcomes of a history event, plus one id for a candidate (no action yet)."""
        return 2**self.num_tasks + 1

    @property
    def uvqk_width(self) -> int:
        return self.n_heads * (2 * self.linear_dim + 2 * self.attn_dim)


# ------------------------------------------------------------------------------ jagged sequences


@dataclass
class Jagged:
    """Where each user's tokens lie in the jagged values: history first, then candidates."""

    history: tuple[int, ...]
    """h per user."""
    candidates: tuple[int, ...]
    """c per user."""
    offsets: torch.Tensor
    """(B+1,) int64: user b's tokens are values[offsets[b]:offsets[b+1]]."""
    pad_index: torch.Tensor
    """(L,) int64: each token's row in a (B * N) padded layout (b * N + position)."""
    candidate_index: torch.Tensor
    """(K,) int64: the candidates' rows in the values, user by user."""
    positions: torch.Tensor
    """(L,) int64: history positions 0..h-1; every candidate at h (the next event)."""
    timestamps: torch.Tensor
    """(L,) int64 seconds: increasing over the history; candidates at the request's time."""

    @staticmethod
    def build(
        history: list[int] | tuple[int, ...],
        candidates: list[int] | tuple[int, ...],
        timestamps: torch.Tensor | None = None,
        device: Any = None,
    ) -> Jagged:
        hist, cand = tuple(int(x) for x in history), tuple(int(x) for x in candidates)
        lens = [h + c for h, c in zip(hist, cand, strict=True)]
        n_max = max(lens, default=0)
        offsets = torch.zeros(len(lens) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(torch.tensor(lens, dtype=torch.long), 0)
        pad, cidx, pos = [], [], []
        for b, (h, c) in enumerate(zip(hist, cand, strict=True)):
            start = int(offsets[b])
            pad.append(torch.arange(h + c) + b * n_max)
            cidx.append(torch.arange(start + h, start + h + c))
            pos.append(torch.cat([torch.arange(h), torch.full((c,), h)]))
        cat = lambda xs: torch.cat(xs).long() if xs else torch.zeros(0, dtype=torch.long)  # noqa: E731
        ts = timestamps if timestamps is not None else cat(pos)
        return Jagged(
            hist, cand, offsets.to(device), cat(pad).to(device), cat(cidx).to(device), cat(pos).to(device),
            ts.to(device),
        )  # fmt: skip

    @property
    def batch_size(self) -> int:
        return len(self.history)

    @property
    def num_tokens(self) -> int:
        return sum(self.history) + sum(self.candidates)

    @property
    def max_len(self) -> int:
        return max((h + c for h, c in zip(self.history, self.candidates, strict=True)), default=0)

    def starts(self) -> list[int]:
        out, s = [], 0
        for h, c in zip(self.history, self.candidates, strict=True):
            out.append(s)
            s += h + c
        return out


def fbgemm_jagged_ops() -> bool:
    """FBGEMM's jagged <-> padded operators are registered (fbgemm_gpu imports)."""
    try:
        import fbgemm_gpu  # noqa: F401

        return hasattr(torch.ops.fbgemm, "jagged_to_padded_dense")
    except Exception:  # an fbgemm_gpu that fails to load (ABI mismatch) counts as absent
        return False


def to_padded(x: torch.Tensor, seq: Jagged, ops: JaggedOps) -> torch.Tensor:
    """(L, D) -> (B, N, D), zeros where there is no token."""
    b, n = seq.batch_size, seq.max_len
    if ops == "fbgemm":
        import fbgemm_gpu  # noqa: F401  (registers torch.ops.fbgemm)

        return torch.ops.fbgemm.jagged_to_padded_dense(x, [seq.offsets], [n], 0.0)  # (B, N, D)
    out = x.new_zeros(b * n, x.shape[1]).index_copy(0, seq.pad_index, x)  # (B*N, D)
    return out.view(b, n, x.shape[1])  # (B, N, D)


def to_jagged(x: torch.Tensor, seq: Jagged, ops: JaggedOps) -> torch.Tensor:
    """(B, N, D) -> (L, D), the valid rows only."""
    if ops == "fbgemm":
        import fbgemm_gpu  # noqa: F401

        return torch.ops.fbgemm.dense_to_jagged(x, [seq.offsets])[0]  # (L, D)
    return x.reshape(-1, x.shape[-1]).index_select(0, seq.pad_index)  # (L, D)


def hstu_mask(seq: Jagged, device: Any) -> torch.Tensor:
    """(B, 1, N, N) bool: row i may read column j. History rows: j <= i; candidate rows: j < h or j == i;
    rows and columns past a user's length: nothing."""
    n = seq.max_len
    i = torch.arange(n, device=device).view(1, n, 1)  # (1, N, 1)
    j = torch.arange(n, device=device).view(1, 1, n)  # (1, 1, N)
    h = torch.tensor(seq.history, device=device).view(-1, 1, 1)  # (B, 1, 1)
    ln = h + torch.tensor(seq.candidates, device=device).view(-1, 1, 1)  # (B, 1, 1)
    return ((j <= i) & ((j < h) | (j == i)) & (i < ln)).unsqueeze(1)  # (B, 1, N, N)


# ------------------------------------------------------------------------------------ attention


class RelativeBias(nn.Module):
    """bias(i, j) = w_pos[pos_i - pos_j] + w_time[floor(log2(1 + t_i - t_j))], one per layer."""

    def __init__(self, max_seq_len: int, time_buckets: int) -> None:
        super().__init__()
        self.w_pos = nn.Parameter(torch.zeros(max_seq_len))
        self.w_time = nn.Parameter(torch.zeros(time_buckets))

    def forward(self, pi: torch.Tensor, pj: torch.Tensor, ti: torch.Tensor, tj: torch.Tensor) -> torch.Tensor:
        """Positions and timestamps of rows (..., R) and columns (..., S) -> (..., R, S)."""
        dp = (pi.unsqueeze(-1) - pj.unsqueeze(-2)).clamp(0, self.w_pos.numel() - 1)  # (..., R, S)
        dt = (ti.unsqueeze(-1) - tj.unsqueeze(-2)).clamp(min=0).float()  # (..., R, S)
        bucket = torch.log2(1.0 + dt).floor().long().clamp(0, self.w_time.numel() - 1)
        return self.w_pos[dp] + self.w_time[bucket]  # (..., R, S)


def _silu(w: torch.Tensor) -> torch.Tensor:
    """SiLU, in place where no gradient is recorded (inference): one pass less over the largest tensors."""
    return F.silu(w, inplace=not torch.is_grad_enabled())


def jagged_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    seq: Jagged,
    alpha: float,
    scale: float,
    bias: RelativeBias | None = None,
) -> torch.Tensor:
    """q, k (L, H, A), v (L, H, V) -> (L, H, V): per user, the causal history block, the candidates
    against the history, and each candidate's own diagonal term."""
    # alpha folded into q and 1/max_seq_len into v: the same products, no pass over the (h x h) and
    # (c x h) blocks for either scale.
    # Heads first, once per call: every block below is then a strided view the matmuls read in place
    # (slicing (L, H, A) per user and transposing made each matmul copy its operands).
    qt = (q * alpha).transpose(0, 1).contiguous()  # (H, L, A)
    kt = k.transpose(0, 1).contiguous()  # (H, L, A)
    vt = (v * scale).transpose(0, 1).contiguous()  # (H, L, V)
    outs = []
    pos, ts = seq.positions, seq.timestamps
    for s, h, c in zip(seq.starts(), seq.history, seq.candidates, strict=True):
        qh, kh, vh = (t[:, s : s + h] for t in (qt, kt, vt))  # (H, h, A|V)
        qc, kc, vc = (t[:, s + h : s + h + c] for t in (qt, kt, vt))  # (H, c, A|V)
        hs, cs = slice(s, s + h), slice(s + h, s + h + c)
        parts = []
        if h:
            w = torch.matmul(qh, kh.transpose(1, 2))  # (H, h, h)
            if bias is not None:
                w = w + bias(pos[hs], pos[hs], ts[hs], ts[hs])  # + (h, h)
            w = _silu(w).tril()  # (H, h, h): causal
            parts.append(torch.matmul(w, vh))  # (H, h, V)
        if c:
            d = (qc * kc).sum(-1, keepdim=True)  # (H, c, 1): each candidate with itself
            if bias is not None:
                d = d + bias(pos[cs], pos[cs][:1], ts[cs], ts[cs][:1])  # + (c, 1): same place and time
            yc = F.silu(d) * vc  # (H, c, V)
            if h:
                w = torch.matmul(qc, kh.transpose(1, 2))  # (H, c, h)
                if bias is not None:
                    w = w + bias(pos[cs], pos[hs], ts[cs], ts[hs])  # + (c, h)
                yc = yc + torch.matmul(_silu(w), vh)  # (H, c, V)
            parts.append(yc)
        outs.extend(parts)
    if not outs:
        return v.new_zeros(0, *v.shape[1:])
    return torch.cat(outs, dim=1).transpose(0, 1)  # (H, L, V) -> (L, H, V)


def padded_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    seq: Jagged,
    alpha: float,
    scale: float,
    bias: RelativeBias | None = None,
    ops: JaggedOps = "torch",
) -> torch.Tensor:
    """q, k (L, H, A), v (L, H, V) -> (L, H, V) through (B, H, N, N) masked scores."""
    length, nh, a = q.shape
    dv = v.shape[2]
    b, n = seq.batch_size, seq.max_len
    qp = to_padded(q.reshape(length, nh * a), seq, ops).view(b, n, nh, a).transpose(1, 2)  # (B, H, N, A)
    kp = to_padded(k.reshape(length, nh * a), seq, ops).view(b, n, nh, a).transpose(1, 2)  # (B, H, N, A)
    vp = to_padded(v.reshape(length, nh * dv), seq, ops).view(b, n, nh, dv).transpose(1, 2)  # (B, H, N, V)
    w = torch.matmul(qp, kp.transpose(2, 3)) * alpha  # (B, H, N, N)
    if bias is not None:
        idx = lambda t: to_padded(t.view(-1, 1), seq, "torch").view(b, n)  # noqa: E731  (B, N)
        pp, tp = idx(seq.positions), idx(seq.timestamps)
        w = w + bias(pp, pp, tp, tp).unsqueeze(1)  # + (B, 1, N, N)
    w = torch.where(hstu_mask(seq, q.device), F.silu(w) * scale, 0.0)  # (B, H, N, N), as the reference
    y = torch.matmul(w, vp).transpose(1, 2).reshape(b, n, nh * dv)  # (B, N, H*V)
    return to_jagged(y, seq, ops).view(length, nh, dv)  # (L, H, V)


# --------------------------------------------------------------------------------------- modules


class HSTULayer(nn.Module):
    def __init__(self, a: HSTUArgs) -> None:
        super().__init__()
        self.a = a
        self.norm_in = nn.LayerNorm(a.dim, eps=a.eps)
        self.uvqk = nn.Linear(a.dim, a.uvqk_width)  # C -> H * (2V + 2A)
        self.norm_attn = nn.LayerNorm(a.n_heads * a.linear_dim, eps=a.eps)
        self.out = nn.Linear(a.n_heads * a.linear_dim, a.dim)  # H*V -> C
        self.dropout = nn.Dropout(a.linear_dropout)
        self.bias = RelativeBias(a.max_seq_len, a.time_buckets) if a.relative_bias else None

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (L, C) -> u (L, H*V), q (L, H, A), k (L, H, A), v (L, H, V)."""
        a, length = self.a, x.shape[0]
        hv, ha = a.n_heads * a.linear_dim, a.n_heads * a.attn_dim
        u, v, q, k = F.silu(self.uvqk(self.norm_in(x))).split([hv, hv, ha, ha], dim=-1)  # (L, ...)
        q = q.reshape(length, a.n_heads, a.attn_dim)  # (L, H, A)
        k = k.reshape(length, a.n_heads, a.attn_dim)  # (L, H, A)
        return u, q, k, v.reshape(length, a.n_heads, a.linear_dim)  # v: (L, H, V)

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        seq: Jagged,
        path: AttentionPath,
        ops: JaggedOps,
    ) -> torch.Tensor:
        a = self.a
        alpha, scale = 1.0 / math.sqrt(a.attn_dim), 1.0 / a.max_seq_len
        if path == "jagged":
            return jagged_attention(q, k, v, seq, alpha, scale, self.bias)  # (L, H, V)
        return padded_attention(q, k, v, seq, alpha, scale, self.bias, ops)  # (L, H, V)

    def finish(self, x: torch.Tensor, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Residual update from the attention output y (L, H, V)."""
        y = self.norm_attn(y.reshape(y.shape[0], -1)) * u  # (L, H*V)
        return x + self.out(self.dropout(y))  # (L, C)

    def forward(
        self, x: torch.Tensor, seq: Jagged, path: AttentionPath = "jagged", ops: JaggedOps = "torch"
    ) -> torch.Tensor:
        u, q, k, v = self.project(x)
        return self.finish(x, u, self.attend(q, k, v, seq, path, ops))  # (L, C)


class ItemEmbeddings(nn.Module):
    """The item table, looked up per token (sequence embeddings, no pooling) with its row-wise Adagrad
    applied sparsely: FBGEMM's table-batched kernel with the optimizer fused into backward (the kernel
    under TorchRec's FusedEmbeddingCollection, which itself takes CUDA only), or nn.Embedding with sparse
    gradients and `RowWiseAdagrad` applied by `step()`."""

    def __init__(self, rows: int, dim: int, kind: EmbeddingKind, lr: float, device: Any = None) -> None:
        super().__init__()
        self.kind, self.rows, self.dim = kind, rows, dim
        dev = torch.device(device if device is not None else "cpu")
        bound = math.sqrt(1.0 / rows)  # TorchRec's default init
        if kind == "fbgemm":
            from fbgemm_gpu.split_embedding_configs import EmbOptimType
            from fbgemm_gpu.split_table_batched_embeddings_ops_common import EmbeddingLocation, PoolingMode
            from fbgemm_gpu.split_table_batched_embeddings_ops_training import (
                ComputeDevice,
                SplitTableBatchedEmbeddingBagsCodegen,
            )

            on_gpu = dev.type == "cuda"
            loc = EmbeddingLocation.DEVICE if on_gpu else EmbeddingLocation.HOST
            self.tbe = SplitTableBatchedEmbeddingBagsCodegen(
                [(rows, dim, loc, ComputeDevice.CUDA if on_gpu else ComputeDevice.CPU)],
                optimizer=EmbOptimType.EXACT_ROWWISE_ADAGRAD,
                learning_rate=lr,
                eps=1e-8,
                pooling_mode=PoolingMode.NONE,
                device=dev,
            )
            with torch.no_grad():
                fill.uniform_(self.tbe.split_embedding_weights()[0], -bound, bound)
            self.optimizer: Any = None
        else:
            from chipbench.models.dlrm_embeddings import RowWiseAdagrad

            self.table = nn.Embedding(rows, dim, sparse=True, device=dev)
            with torch.no_grad():
                fill.uniform_(self.table.weight, -bound, bound)
            self.optimizer = RowWiseAdagrad([self.table.weight], lr=lr)

    def weight(self) -> torch.Tensor:
        """The (rows, C) table (a view of FBGEMM's storage on that backend)."""
        return self.tbe.split_embedding_weights()[0] if self.kind == "fbgemm" else self.table.weight

    def prepare(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, offsets) for `forward`, made once outside the timed step (one id per row)."""
        return ids, torch.arange(ids.numel() + 1, device=ids.device, dtype=torch.long)

    def forward(self, inp: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, offsets = inp
        if self.kind == "fbgemm":
            return self.tbe(ids, offsets)  # (L, C)
        return self.table(ids)  # (L, C)

    def step(self) -> None:
        """Apply the sparse update (FBGEMM has already applied it inside backward)."""
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)


def mlp(sizes: tuple[int, ...], device: Any = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(d_in, d_out, device=device))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class HSTU(nn.Module):
    def __init__(
        self,
        a: HSTUArgs,
        embeddings: EmbeddingKind = "torch",
        path: AttentionPath = "jagged",
        ops: JaggedOps = "torch",
        lr: float = 0.01,
        device: Any = None,
    ) -> None:
        super().__init__()
        self.a, self.path, self.ops = a, path, ops
        self.items = ItemEmbeddings(a.num_items, a.dim, embeddings, lr, device)
        with torch.device(device if device is not None else "cpu"):
            self.actions = nn.Embedding(a.num_actions, a.dim)  # (2^T + 1, C), dense: tiny
            self.preprocessor = mlp((2 * a.dim, a.hidden, a.dim))  # [item, action] 2C -> P -> C
            self.norm_pre = nn.LayerNorm(a.dim, eps=a.eps)
            self.input_dropout = nn.Dropout(a.input_dropout)
            self.layers = nn.ModuleList(HSTULayer(a) for _ in range(a.n_layers))
            self.norm = nn.LayerNorm(a.dim, eps=a.eps)
            self.head = mlp((a.dim, a.hidden, a.num_tasks))  # C -> P -> T

    def dense_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the item table (trained by its own sparse optimizer)."""
        table = set(map(id, self.items.parameters()))
        return [p for p in self.parameters() if id(p) not in table]

    def embed(self, item_in: Any, actions: torch.Tensor) -> torch.Tensor:
        """(L, C) input of the first layer."""
        x = torch.cat([self.items(item_in), self.actions(actions)], dim=-1)  # (L, 2C)
        return self.input_dropout(self.norm_pre(self.preprocessor(x)))  # (L, C)

    def encode(self, x: torch.Tensor, seq: Jagged) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, seq, self.path, self.ops)  # (L, C)
        return self.norm(x)  # (L, C)

    def predict(self, x: torch.Tensor, seq: Jagged) -> torch.Tensor:
        return self.head(x.index_select(0, seq.candidate_index))  # (K, T)

    def forward(self, items: Any, actions: torch.Tensor, seq: Jagged) -> torch.Tensor:
        """items: (L,) ids, or `items.prepare(ids)`; actions: (L,) -> logits (K, T)."""
        item_in = self.items.prepare(items) if isinstance(items, torch.Tensor) else items
        return self.predict(self.encode(self.embed(item_in, actions), seq), seq)  # (K, T)


def count_params(model: HSTU) -> int:
    """The model's parameters: the dense ones and the item table (FBGEMM registers its row-wise optimizer
    state as a parameter beside the weights; it is not one of the model's)."""
    return sum(p.numel() for p in model.dense_parameters()) + model.items.rows * model.items.dim
