"""Tests of the Llama model and workloads: parameter counts, FLOP formula, attention, training, config."""

from __future__ import annotations

import math
import os
import time

import pytest
import torch
import torch.nn.functional as F

from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.core.errors import UsageError
from chipbench.models.llama import (
    Attention,
    ModelArgs,
    Transformer,
    apply_rope,
    count_params,
    flops_per_token,
    rope_cache,
)
from chipbench.workloads.llama import FLAVORS, LlamaConfig, make_trainer

CPU = RunContext(device="cpu", torch_device="cpu", seed=0)

# The reference table (shared/reference.md): exact parameter counts and FFN hidden sizes.
REFERENCE = {
    "llama2-7b": (6_738_415_616, 11008),
    "llama3.2-1b": (1_235_814_400, 8192),
    "llama3.2-3b": (3_212_749_824, 8192),
    "llama3-8b": (8_030_261_248, 14336),
    "llama3-70b": (70_553_706_496, 28672),
    "llama3.1-405b": (405_853_388_800, 53248),
}


@pytest.mark.parametrize("flavor", sorted(REFERENCE))
def test_parameter_counts_match_reference(flavor: str) -> None:
    shape = LlamaConfig(flavor=flavor).shape()  # type: ignore[arg-type]
    with torch.device("meta"):
        model = Transformer(shape.model_args())
    assert count_params(model) == REFERENCE[flavor][0]
    assert shape.ffn_hidden == REFERENCE[flavor][1]
    d = workloads.get("llama.train_step").describe(LlamaConfig(flavor=flavor))  # type: ignore[arg-type]
    assert d.facts["parameters"] == REFERENCE[flavor][0]


def test_every_flavor_is_valid_and_small_ones_build() -> None:
    assert {"tiny", "debug", *REFERENCE} == set(FLAVORS)
    debug = LlamaConfig(flavor="debug").shape()
    assert (debug.dim, debug.n_layers, debug.n_heads, debug.vocab_size) == (256, 6, 16, 2048)


def test_flops_formula_matches_flop_counter() -> None:
    """Formula side: 6 * N_matmul + 12 * L * H * D * T per token (every projection and the head,
    forward + input and weight gradients; attention scores and values, causal not halved).
    Counter side: FlopCounterMode over forward + backward, counting 2*m*n*k for every mm/addmm/bmm;
    SDPA is forced onto its math path so attention appears as full (unmasked) bmm products, which the
    counter sees. Neither side counts norms, RoPE, softmax, SwiGLU or the loss (elementwise work)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    a = ModelArgs(
        dim=128, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=512, multiple_of=64, max_seq_len=64
    )
    B, T = 2, 64
    torch.manual_seed(0)
    model = Transformer(a)
    tokens = torch.randint(0, a.vocab_size, (B, T + 1))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        logits = model(tokens[:, :-1])
        F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten()).backward()
    counted = counter.get_total_flops()
    formula = flops_per_token(a, T) * B * T
    assert abs(counted - formula) / formula < 0.02, (counted, formula)
    # Forward only: a third of the training count.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fwd_counter:
        model(tokens[:, :-1])
    fwd = flops_per_token(a, T, training=False) * B * T
    assert abs(fwd_counter.get_total_flops() - fwd) / fwd < 0.02


def test_llama3_8b_flops_per_token_at_8192() -> None:
    a = LlamaConfig(flavor="llama3-8b").shape().model_args()
    assert flops_per_token(a, 8192) == pytest.approx(5.79e10, rel=5e-3)
    assert flops_per_token(a, 8192, "causal_halved") == pytest.approx(5.15e10, rel=5e-3)
    d = workloads.get("llama.train_step").describe(
        workloads.get("llama.train_step").config({"flavor": "llama3-8b", "flop_convention": "causal_halved"})
    )
    assert d.facts["flops_per_token"] == pytest.approx(5.15e10, rel=5e-3)


def _reference_attention(attn: Attention, x: torch.Tensor, theta: float) -> torch.Tensor:
    """A plain formulation: RoPE as explicit 2x2 rotations of adjacent pairs, repeat_kv, explicit masked
    softmax, separate q/k/v matrices (the model uses complex products, fused qkv and SDPA with GQA)."""
    B, T, _ = x.shape
    H, K, D = attn.n_heads, attn.n_kv_heads, attn.head_dim
    wq, wk, wv = attn.wqkv.weight.split([H * D, K * D, K * D], dim=0)
    q = (x @ wq.T).view(B, T, H, D)
    k = (x @ wk.T).view(B, T, K, D)
    v = (x @ wv.T).view(B, T, K, D)
    inv_freq = torch.tensor([theta ** (-2.0 * i / D) for i in range(D // 2)])
    angle = torch.arange(T).float()[:, None] * inv_freq[None, :]  # (T, D/2)
    c, s = angle.cos()[None, :, None, :], angle.sin()[None, :, None, :]

    def rot(t: torch.Tensor) -> torch.Tensor:
        even, odd = t[..., 0::2], t[..., 1::2]
        out = torch.empty_like(t)
        out[..., 0::2] = even * c - odd * s
        out[..., 1::2] = even * s + odd * c
        return out

    q, k = rot(q), rot(k)
    k = k[:, :, :, None, :].expand(B, T, K, H // K, D).reshape(B, T, H, D)  # repeat_kv
    v = v[:, :, :, None, :].expand(B, T, K, H // K, D).reshape(B, T, H, D)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)  # (B, H, T, T)
    mask = torch.full((T, T), float("-inf")).triu(1)
    p = torch.softmax(scores + mask, dim=-1)
    y = (p @ v).transpose(1, 2).reshape(B, T, H * D)
    return y @ attn.wo.weight.T


@pytest.mark.parametrize("n_kv_heads", [2, 8])
def test_attention_matches_reference(n_kv_heads: int) -> None:
    a = ModelArgs(dim=128, n_layers=1, n_heads=8, n_kv_heads=n_kv_heads, vocab_size=64, rope_theta=500000.0)
    torch.manual_seed(0)
    attn = Attention(a)
    for p in attn.parameters():
        torch.nn.init.normal_(p, 0.0, 0.05)
    x = torch.randn(2, 48, a.dim)
    freqs_cis = rope_cache(48, a.head_dim, a.rope_theta)
    with torch.no_grad():
        got = attn(x, freqs_cis)
        want = _reference_attention(attn, x, a.rope_theta)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def _progression_batch(gen: torch.Generator, vocab: int, batch: int, seq: int) -> torch.Tensor:
    """Learnable synthetic sequences: a random start and stride (1..4) each, x[t+1] = x[t] + stride mod V."""
    start = torch.randint(0, vocab, (batch, 1), generator=gen)
    stride = torch.randint(1, 5, (batch, 1), generator=gen)
    return (start + stride * torch.arange(seq + 1)) % vocab  # (B, T+1)


def test_loss_falls_on_synthetic_task() -> None:
    cfg = workloads.get("llama.train_step").config(
        {"flavor": "tiny", "dtype": "fp32", "lr": 3e-3, "seq_len": 32}
    )
    s = cfg.shape()
    train = make_trainer(cfg, CPU).train
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(40):
        tokens = _progression_batch(gen, s.vocab_size, 16, s.seq_len)  # a fresh batch every step
        losses.append(float(train(tokens[:, :-1], tokens[:, 1:])))
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert first == pytest.approx(math.log(s.vocab_size), rel=0.1)
    assert last < 0.5 * first, losses


def test_activation_checkpointing_gives_same_loss() -> None:
    out = []
    for ckpt in (False, True):
        cfg = LlamaConfig(flavor="tiny", dtype="fp32", activation_checkpointing=ckpt)
        train = make_trainer(cfg, CPU).train
        tokens = _progression_batch(torch.Generator().manual_seed(2), 256, 4, 64)
        out.append([float(train(tokens[:, :-1], tokens[:, 1:])) for _ in range(3)])
    assert out[0] == pytest.approx(out[1], rel=1e-5)


LLAMA_BENCHES = [
    "llama.train_step",
    "llama.forward",
    "llama.gemm",
    "llama.attention",
    "llama.rmsnorm",
    "llama.rope",
    "llama.swiglu",
    "llama.cross_entropy",
    "llama.adamw",
]


@pytest.mark.parametrize("name", LLAMA_BENCHES)
def test_every_benchmark_runs_at_tiny(name: str) -> None:
    b = workloads.get(name)
    smoke = b.suites["smoke"]
    assert smoke and all(case["flavor"] == "tiny" for case in smoke)
    for dtype in ("fp32", "bf16"):
        cfg = b.config({**smoke[0], "dtype": dtype})
        d = b.describe(cfg)
        assert d.memory_bytes_estimate is not None and d.memory_bytes_estimate > 0
        prepared = b.setup(cfg, CPU)
        prepared.step()
        prepared.step()
        w = prepared.work
        assert (w.flops or 0) > 0 or (w.bytes or 0) > 0
        if prepared.after:
            prepared.after()


@pytest.mark.parametrize("op", ["qkv", "out", "gate_up", "down", "head"])
@pytest.mark.parametrize("mode", ["fwd", "fwd_bwd"])
def test_gemm_ops(op: str, mode: str) -> None:
    b = workloads.get("llama.gemm")
    cfg = b.config(
        {"flavor": "tiny", "seq_len": 16, "batch_size": 2, "op": op, "mode": mode, "dtype": "fp32"}
    )
    b.setup(cfg, CPU).step()


def test_fp16_train_step_with_grad_scaler() -> None:
    cfg = LlamaConfig(flavor="tiny", dtype="fp16", seq_len=16)
    trainer = make_trainer(cfg, CPU)
    train, info = trainer.train, trainer.info
    tokens = _progression_batch(torch.Generator().manual_seed(3), 256, 2, 16)
    loss = train(tokens[:, :-1], tokens[:, 1:])
    assert torch.isfinite(loss)
    assert "GradScaler" in info["precision"]


def test_layer_shapes_of_large_flavors_describe_without_allocating() -> None:
    t0 = time.perf_counter()
    b = workloads.get("llama.train_step")
    d = b.describe(b.config({"flavor": "llama3.1-405b", "n_layers": 2, "seq_len": 2048}))
    assert d.memory_bytes_estimate is not None
    assert d.memory_bytes_estimate > 16 * d.facts["parameters"]
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize(
    "overrides",
    [
        {"flavor": "llama4"},
        {"dim": "100", "n_heads": "8"},  # not a multiple of n_heads
        {"n_heads": "6", "n_kv_heads": "4"},  # not a multiple of n_kv_heads
        {"n_layers": "0"},
        {"seq_len": "abc"},
        {"flop_convention": "palm"},
        {"dtype": "fp8"},
        {"compile": "maybe"},
        {"no_such_key": "1"},
        {"lr": "-1"},
    ],
)
def test_bad_overrides_raise_usage_error(overrides: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        workloads.get("llama.train_step").config(overrides)


def test_micro_bad_overrides_raise_usage_error() -> None:
    with pytest.raises(UsageError):
        workloads.get("llama.gemm").config({"op": "wq"})
    with pytest.raises(UsageError):
        workloads.get("llama.attention").config({"mode": "bwd"})


def test_overrides_apply_on_top_of_flavor() -> None:
    cfg = workloads.get("llama.train_step").config({"flavor": "llama3-8b", "n_layers": "2", "seq_len": "128"})
    s = cfg.shape()
    assert (s.dim, s.n_layers, s.n_kv_heads, s.seq_len, s.ffn_hidden) == (4096, 2, 8, 128, 14336)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CHIPBENCH_SLOW"),
    reason="torch.compile takes 30-60 s on the 2-core CPU; set CHIPBENCH_SLOW=1 to run",
)
def test_compile_matches_eager() -> None:
    losses = []
    for comp in (False, True):
        cfg = LlamaConfig(flavor="tiny", dtype="fp32", compile=comp, seq_len=32)
        train = make_trainer(cfg, CPU).train
        tokens = _progression_batch(torch.Generator().manual_seed(4), 256, 4, 32)
        losses.append([float(train(tokens[:, :-1], tokens[:, 1:])) for _ in range(3)])
    assert losses[0] == pytest.approx(losses[1], rel=1e-3)


def test_fused_and_foreach_adamw_agree() -> None:
    out = []
    for impl in ("fused", "foreach"):
        cfg = LlamaConfig(flavor="tiny", dtype="fp32", adamw_impl=impl, seq_len=32)  # type: ignore[arg-type]
        trainer = make_trainer(cfg, CPU)
        train, info = trainer.train, trainer.info
        assert info["optimizer"] == f"AdamW {impl}"
        tokens = _progression_batch(torch.Generator().manual_seed(5), 256, 4, 32)
        out.append([float(train(tokens[:, :-1], tokens[:, 1:])) for _ in range(4)])
    assert out[0] == pytest.approx(out[1], rel=1e-4)


def test_the_clip_folded_into_fused_adamw_is_clip_then_step() -> None:
    """clip_gradients(fold=True) leaves the gradients alone and has fused AdamW divide them by the clip's
    factor as it reads them: the same weights as clip_grad_norm_ then the step (norm above and below)."""
    from chipbench.workloads.llama.optimizer import clip_gradients

    for max_norm in (0.05, 1e3):  # the clip engaged, and not
        torch.manual_seed(0)
        weights = [torch.randn(64, 32), torch.randn(32)]
        grads = [torch.randn(64, 32), torch.randn(32)]
        out = []
        for fold in (False, True):
            ps = [torch.nn.Parameter(w.clone()) for w in weights]
            for p, g in zip(ps, grads, strict=True):
                p.grad = g.clone()
            opt = torch.optim.AdamW(ps, lr=0.1, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
            for _ in range(2):
                clip_gradients(ps, opt, fold, max_norm)
                opt.step()
                for p, g in zip(ps, grads, strict=True):
                    p.grad = g.clone()
            out.append([p.detach() for p in ps])
        for a, b in zip(*out, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_compile_auto_by_the_step_size_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from chipbench.workloads.llama import compiling
    from chipbench.workloads.llama.train import step_flops

    cfg = workloads.get("llama.train_step").config({})
    assert cfg.compile == "auto"
    for value, want in (("true", True), ("off", False), ("auto", "auto")):
        assert workloads.get("llama.train_step").config({"compile": value}).compile == want
    small = compiling.choose_compile("auto", 7e10, "cpu")
    assert not small.on and "under" in small.why
    big = compiling.choose_compile("auto", 3e11, "cpu")
    assert big.on and "auto: compiled" in big.why
    assert not compiling.choose_compile(False, 3e11, "cpu").on
    # No compiler: auto runs eager and says why; compile=true is a one-line error.
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    none = compiling.choose_compile("auto", 3e11, "cpu")
    assert not none.on and "no compiler" in none.why
    with pytest.raises(UsageError, match="C compiler"):
        compiling.choose_compile(True, 3e11, "cpu")
    # The smoke and default suites' training steps stay eager under auto.
    for case in ({"flavor": "tiny"}, {"flavor": "debug"}):
        c = workloads.get("llama.train_step").config(case)
        assert step_flops(c, c.shape()) < compiling.AUTO_MIN_FLOPS


def test_rope_in_real_arithmetic_matches_the_complex_product() -> None:
    """What torch.compile is given (the table's real view) rotates as the eager complex product does."""
    a = ModelArgs(dim=64, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=64, multiple_of=32, max_seq_len=24)
    freqs = rope_cache(24, a.head_dim, a.rope_theta)
    x = torch.randn(2, 24, 4, a.head_dim, dtype=torch.bfloat16)
    got = apply_rope(x, torch.view_as_real(freqs))
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), apply_rope(x, freqs).float(), rtol=0, atol=1e-2)
    torch.testing.assert_close(apply_rope(x.float(), torch.view_as_real(freqs)), apply_rope(x.float(), freqs))


def test_the_clip_folds_only_where_fused_adamw_owns_the_gradients() -> None:
    from chipbench.workloads.llama.optimizer import clip_folds

    assert clip_folds("fused", loss_scaling=False, distributed=False)
    assert not clip_folds("foreach", loss_scaling=False, distributed=False)  # no grad_scale in foreach
    assert not clip_folds("fused", loss_scaling=True, distributed=False)  # GradScaler owns grad_scale
    assert not clip_folds("fused", loss_scaling=False, distributed=True)  # a sharded norm is a collective
    with pytest.raises(UsageError, match="compile must be"):
        workloads.get("llama.train_step").config({"compile": 1})


_TIED = {"flavor": "llama3.2-1b", "dim": 64, "n_layers": 1, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 256,
         "multiple_of": 32, "seq_len": 16, "batch_size": 2, "dtype": "fp32", "compile": False}  # fmt: skip


def test_a_tied_head_stays_tied_when_built_on_the_meta_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workloads build on the meta device and materialize: the output head must still be the token
    embedding (Module.to_empty alone gives each module its own copy), counted once."""
    cfg = workloads.get("llama.train_step").config(_TIED)
    assert cfg.shape().model_args().tie_embeddings
    reference = count_params(Transformer(cfg.shape().model_args()))  # built in place: tied by the constructor
    model = make_trainer(cfg, CPU).model
    assert model.output.weight is model.tok_embeddings.weight
    assert count_params(model) == reference
    fwd = workloads.get("llama.forward")
    seen: dict[str, object] = {}
    real = Transformer.init_weights

    def spy(self: Transformer, *a: object, **k: object) -> None:
        seen["model"] = self
        real(self, *a, **k)

    monkeypatch.setattr(Transformer, "init_weights", spy)
    fwd.setup(fwd.config(_TIED), CPU).step()
    m = seen["model"]
    assert isinstance(m, Transformer) and m.output.weight is m.tok_embeddings.weight
    assert count_params(m) == reference
