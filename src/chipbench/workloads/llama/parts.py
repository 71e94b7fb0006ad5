"""The Llama steps once more in parts for the roofline breakdown (`chipbench.workloads.parts`): the
model's own modules, called one piece at a time, eager (a compiled step's parts are timed eager), without
activation checkpointing; the optimizer a fresh AdamW of the step's kind."""

from __future__ import annotations

from typing import Any

from chipbench.workloads.parts import Pass

PARTS_NOTE = {
    True: "parts timed eager while the step runs compiled: their sum is the eager step, not this one",
    False: "",
}


def _block(layer: Any, x: Any, freqs_cis: Any, mark: Any) -> Any:
    """Block.forward and Attention.forward of chipbench.models.llama, a mark after each piece."""
    import torch.nn.functional as F

    from chipbench.models.llama import apply_rope

    att, ff = layer.attention, layer.feed_forward
    B, T, _ = x.shape  # (B, T, C)
    H, K, D = att.n_heads, att.n_kv_heads, att.head_dim
    h = layer.attention_norm(x)
    mark("rmsnorm")
    q, k, v = att.wqkv(h).split([H * D, K * D, K * D], dim=-1)  # (B, T, H*D), (B, T, K*D) x2
    mark("qkv_projection")
    q = apply_rope(q.view(B, T, H, D), freqs_cis)  # (B, T, H, D)
    k = apply_rope(k.view(B, T, K, D), freqs_cis)  # (B, T, K, D)
    mark("rope")
    q, k, v = (t.transpose(1, 2) for t in (q, k, v.view(B, T, K, D)))  # (B, H|K, T, D)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != K)  # (B, H, T, D)
    mark("attention")
    x = x + att.wo(y.transpose(1, 2).reshape(B, T, H * D))  # (B, T, C)
    mark("out_projection")
    h = layer.ffn_norm(x)
    mark("rmsnorm")
    gate, up = ff.w13(h).chunk(2, dim=-1)  # (B, T, F) each
    mark("ffn_gate_up")
    a = F.silu(gate) * up  # (B, T, F)
    mark("swiglu")
    x = x + ff.w2(a)  # (B, T, C)
    mark("ffn_down")
    return x


def _forward(model: Any, tokens: Any, mark: Any) -> Any:
    x = model.tok_embeddings(tokens)  # (B, T, C)
    mark("embedding")
    freqs_cis = model.freqs_cis[: tokens.shape[1]]
    for layer in model.layers:
        x = _block(layer, x, freqs_cis, mark)
    x = model.norm(x)
    mark("rmsnorm")
    logits = model.output(x)  # (B, T, V)
    mark("output_head")
    return logits


def train_pass(model: Any, opt: Any, inputs: Any, targets: Any, amp: Any, fold: bool = False) -> Pass:
    """The training step in parts; `fold`: the step folds the clip into fused AdamW (as it does)."""
    import torch.nn.functional as F

    from chipbench.workloads.llama.optimizer import clip_gradients

    params = list(model.parameters())

    def run(mark: Any, rep: int) -> None:
        with amp():
            logits = _forward(model, inputs, mark)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        mark("cross_entropy")
        loss.backward()
        mark("backward")
        clip_gradients(params, opt, fold)
        mark("clip_grad_norm")
        opt.step()
        opt.zero_grad(set_to_none=True)
        mark("optimizer")

    return run


def forward_pass(model: Any, tokens: Any) -> Pass:
    import torch

    def run(mark: Any, rep: int) -> None:
        with torch.inference_mode():
            _forward(model, tokens, mark)

    return run
