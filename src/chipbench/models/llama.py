"""A Llama-3-style decoder in one readable file (in the spirit of nanoGPT and gpt-fast).

Token embedding -> n_layers x [RMSNorm -> GQA attention with RoPE -> residual, RMSNorm -> SwiGLU FFN ->
residual] -> RMSNorm -> output head (tied to the embedding or not).

The q/k/v projections are fused into one `wqkv` matrix and the gate/up projections into one `w13`
matrix: the same parameters as separate matrices (so parameter counts match the published ones
exactly), fewer and larger matrix products.

Shape glossary (the letters of the shape comments, `# (B, T, H, D)`):

- B: batch (sequences)
- T: sequence length (tokens per sequence)
- H: query heads
- K: key/value heads (grouped-query attention when K < H)
- D: head dim (C / H)
- C: model dim (the residual stream's width)
- F: FFN hidden size (SwiGLU's inner width)
- V: vocabulary size

Example::

    import torch
    from chipbench.models.llama import ModelArgs, Transformer, count_params, flops_per_token

    a = ModelArgs(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=256, multiple_of=32)
    model = Transformer(a)  # built and initialized on the current default device
    tokens = torch.randint(0, a.vocab_size, (4, 32))  # (B, T)
    logits = model(tokens)  # (B, T, V) = (4, 32, 256)
    count_params(model), flops_per_token(a, seq_len=32)

Plain torch: this module imports nothing of chipbench.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from chipbench.models import fill

FlopConvention = Literal["torchtitan", "causal_halved"]
"""torchtitan: causal attention not halved; causal_halved (Megatron): its term halved."""


@dataclass(frozen=True)
class ModelArgs:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    rope_theta: float = 10000.0
    tie_embeddings: bool = False
    max_seq_len: int = 2048
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_hidden(self) -> int:
        """int(8 * dim / 3), times ffn_dim_multiplier (truncated), rounded up to a multiple of multiple_of."""
        return ffn_hidden_dim(self.dim, self.multiple_of, self.ffn_dim_multiplier)


def ffn_hidden_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def matmul_params(a: ModelArgs) -> int:
    """Parameters that take part in matrix products: every projection and the output head (the input
    embedding is a lookup; when tied, its one matrix is counted once, as the head). Norm weights excluded."""
    d, hd = a.dim, a.head_dim
    per_layer = d * (a.n_heads + 2 * a.n_kv_heads) * hd + a.n_heads * hd * d + 3 * d * a.ffn_hidden
    return a.n_layers * per_layer + d * a.vocab_size


def flops_per_token(
    a: ModelArgs, seq_len: int, convention: FlopConvention = "torchtitan", training: bool = True
) -> float:
    """Model FLOPs per token.

    torchtitan: 6 * N_matmul + 12 * L * H * D * T (causal attention not halved).
    causal_halved (Megatron): the attention term halved, 6 * L * H * D * T.
    Forward only (training=False): a third of each term.
    """
    attn = 12.0 * a.n_layers * a.n_heads * a.head_dim * seq_len
    if convention == "causal_halved":
        attn /= 2
    total = 6.0 * matmul_params(a) + attn
    return total if training else total / 3


# ----------------------------------------------------------------------------------------- RoPE


def rope_cache(
    seq_len: int, head_dim: int, theta: float, device: torch.device | str | None = None
) -> torch.Tensor:
    """Rotations as unit complex numbers, (T, D/2) complex64: exp(i * t * theta^(-2i/D))."""
    exponents = torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim  # (D/2,)
    inv_freq = 1.0 / (theta**exponents)  # (D/2,)
    t = torch.arange(seq_len, device=device, dtype=torch.float32)  # (T,)
    angles = torch.outer(t, inv_freq)  # (T, D/2)
    return torch.polar(torch.ones_like(angles), angles)  # (T, D/2) complex


def apply_rope(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (x[2i], x[2i+1]) of the last dim by angle[t, i] (Meta's layout).
    x: (B, T, H, D); freqs_cis: (T, D/2) complex, or its real view (T, D/2, 2) of (cos, sin).
    Computed in fp32, returned in x's dtype.

    Complex: one complex product, about 10x faster in eager on CPU than the rotation spelled out in real
    arithmetic. Real: what torch.compile is given (Transformer.forward), since inductor generates no
    code for complex products; spelled out, the rotation fuses into the kernels around it."""
    B, T, H, D = x.shape
    if not freqs_cis.is_complex():
        xr = x.float().reshape(B, T, H, D // 2, 2)  # (B, T, H, D/2, 2)
        f = freqs_cis[:T].view(1, T, 1, D // 2, 2)  # (1, T, 1, D/2, 2)
        a, b, cos, sin = xr[..., 0], xr[..., 1], f[..., 0], f[..., 1]  # (B, T, H, D/2), (1, T, 1, D/2)
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(3).type_as(x)
    xc = torch.view_as_complex(x.float().reshape(B, T, H, D // 2, 2))  # (B, T, H, D/2) complex
    out = xc * freqs_cis[:T].view(1, T, 1, D // 2)  # (B, T, H, D/2) complex
    return torch.view_as_real(out).flatten(3).type_as(x)  # (B, T, H, D)


# ------------------------------------------------------------------------------------- modules


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)  # (..., C), as x


class Attention(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = a.n_heads, a.n_kv_heads, a.head_dim
        # wqkv: C -> (H + 2K) * D, the q, k and v projections side by side; wo: H * D -> C.
        self.wqkv = nn.Linear(a.dim, (a.n_heads + 2 * a.n_kv_heads) * a.head_dim, bias=False)
        self.wo = nn.Linear(a.n_heads * a.head_dim, a.dim, bias=False)

    def forward(self, x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape  # x: (B, T, C)
        H, K, D = self.n_heads, self.n_kv_heads, self.head_dim
        q, k, v = self.wqkv(x).split([H * D, K * D, K * D], dim=-1)  # (B, T, H*D), (B, T, K*D) x2
        q = apply_rope(q.view(B, T, H, D), freqs_cis)  # (B, T, H, D)
        k = apply_rope(k.view(B, T, K, D), freqs_cis)  # (B, T, K, D)
        v = v.view(B, T, K, D)  # (B, T, K, D)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D), (B, K, T, D) x2
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != K)  # (B, H, T, D)
        return self.wo(y.transpose(1, 2).reshape(B, T, H * D))  # (B, T, C)


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(x w1) * (x w3)); w1 and w3 fused into w13."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)  # C -> 2F (gate and up)
        self.w2 = nn.Linear(hidden, dim, bias=False)  # F -> C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)  # (B, T, F) each
        return self.w2(F.silu(gate) * up)  # (B, T, C)


class Block(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(a.dim, a.norm_eps)
        self.attention = Attention(a)
        self.ffn_norm = RMSNorm(a.dim, a.norm_eps)
        self.feed_forward = FeedForward(a.dim, a.ffn_hidden)

    def forward(self, x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), freqs_cis)  # (B, T, C)
        return x + self.feed_forward(self.ffn_norm(x))  # (B, T, C)


class Transformer(nn.Module):
    def __init__(self, a: ModelArgs, activation_checkpointing: bool = False) -> None:
        super().__init__()
        self.args = a
        self.activation_checkpointing = activation_checkpointing
        self.tok_embeddings = nn.Embedding(a.vocab_size, a.dim)  # (V, C)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.n_layers))
        self.norm = RMSNorm(a.dim, a.norm_eps)
        self.output = nn.Linear(a.dim, a.vocab_size, bias=False)  # C -> V
        if a.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        # A plain attribute, not a buffer: Module.to(dtype) would cast the complex table to a real
        # dtype. Built on the device the model is built on (construct under `with torch.device(...)`).
        self.freqs_cis = rope_cache(a.max_seq_len, a.head_dim, a.rope_theta)  # (T, D/2) complex
        # (T, D/2, 2): its cos, sin, a real copy (a view would hand torch.compile a complex base)
        self.freqs_real = torch.view_as_real(self.freqs_cis).clone()
        if not self.tok_embeddings.weight.is_meta:
            self.init_weights()

    def materialize(self, device: torch.device | str) -> Transformer:
        """Allocate a model built on the meta device on `device`, uninitialized (then `init_weights`):
        the RoPE table rebuilt there and a tied output head tied again (Module.to_empty gives each module
        its own copy of a shared meta parameter). Returns self."""
        self.to_empty(device=device)
        self.reset_rope(device)
        if self.args.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        return self

    def reset_rope(self, device: torch.device | str | None = None) -> None:
        """Rebuild the RoPE table on `device`: after building on the meta device and materializing
        (Module.to_empty does not see the table, a plain attribute)."""
        a = self.args
        self.freqs_cis = rope_cache(a.max_seq_len, a.head_dim, a.rope_theta, device=device)
        self.freqs_real = torch.view_as_real(self.freqs_cis).clone()

    @torch.no_grad()
    def init_weights(self, std: float = 0.02) -> None:
        """Normal(0, 0.02) everywhere; the projections into the residual stream (wo, w2) scaled by
        1/sqrt(2 * n_layers) as in GPT-2; norm weights one. Drawn on every core (`fill`), seeded by torch's
        default generator."""
        out_std = std / math.sqrt(2 * self.args.n_layers)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0)
            elif name.endswith(("wo.weight", "w2.weight")):
                fill.normal_(p, 0.0, out_std)
            else:
                fill.normal_(p, 0.0, std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64 -> logits (B, T, V)."""
        _, T = tokens.shape  # (B, T)
        # (T, D/2) complex in eager; (T, D/2, 2) real under torch.compile (apply_rope)
        freqs_cis = self.freqs_real[:T] if torch.compiler.is_compiling() else self.freqs_cis[:T]
        x = self.tok_embeddings(tokens)  # (B, T, C)
        for layer in self.layers:
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                from torch.utils.checkpoint import checkpoint

                x = checkpoint(layer, x, freqs_cis, use_reentrant=False)
            else:
                x = layer(x, freqs_cis)  # (B, T, C)
        return self.output(self.norm(x))  # (B, T, V)


def count_params(model: nn.Module) -> int:
    """Unique parameters (a tied head counted once)."""
    return sum(p.numel() for p in model.parameters())
