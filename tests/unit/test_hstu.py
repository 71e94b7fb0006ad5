"""HSTU: the jagged and padded attention paths against each other and against a naive per-user loop, the
mask, the FLOP formula against FlopCounterMode, parameter counts, a learning training step, describe,
fit and plan."""

from __future__ import annotations

import dataclasses
import math

import pytest

from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.core.errors import UsageError
from chipbench.workloads import hstu as wl

torch = pytest.importorskip("torch")
mh = pytest.importorskip("chipbench.models.hstu")

CTX = RunContext(device="cpu", torch_device="cpu", seed=0)
# Ragged users: an empty history, a length-1 history, a user with one candidate, long and short ones.
HISTORY = (5, 0, 1, 9, 3)
CANDIDATES = (3, 2, 1, 4, 2)
PATHS = [("jagged", "torch"), ("padded", "torch")] + (
    [("padded", "fbgemm")] if mh.fbgemm_jagged_ops() else []
)


def _args(**kw):
    base = dict(num_items=500, dim=16, n_layers=2, n_heads=2, attn_dim=4, linear_dim=6, hidden=8,
                max_seq_len=16, relative_bias=True)  # fmt: skip
    return mh.HSTUArgs(**{**base, **kw})


def _seq(history=HISTORY, candidates=CANDIDATES, seed=0):
    g = torch.Generator().manual_seed(seed)
    ts = [torch.cumsum(torch.randint(1, 5000, (h + 1,), generator=g), 0) for h in history]
    stamps = torch.cat(
        [torch.cat([t[:h], t[h:].expand(c)]) for t, h, c in zip(ts, history, candidates, strict=True)]
    )
    return mh.Jagged.build(history, candidates, stamps)


def _randomize_bias(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, mh.RelativeBias):
                m.w_pos.normal_()
                m.w_time.normal_()


def naive_attention(q, k, v, seq, alpha, scale, bias):
    """The definition, one (i, j) pair at a time per user: silu(alpha q_i.k_j + bias) / N v_j over the
    pairs the rule allows (history: j <= i; candidate: j < h or j == i)."""
    out = torch.zeros(q.shape[0], q.shape[1], v.shape[2], dtype=q.dtype)
    rows = []
    for s, h, c in zip(seq.starts(), seq.history, seq.candidates, strict=True):
        for i in range(h + c):
            acc = torch.zeros(q.shape[1], v.shape[2], dtype=q.dtype)
            for j in range(h + c):
                if not (j <= i and (j < h or j == i)):
                    continue
                sc = alpha * (q[s + i] * k[s + j]).sum(-1)  # (H,)
                if bias is not None:
                    p, t = seq.positions, seq.timestamps
                    sc = sc + bias(p[s + i : s + i + 1], p[s + j : s + j + 1], t[s + i : s + i + 1],
                                   t[s + j : s + j + 1])[0, 0]  # fmt: skip
                acc = acc + (torch.nn.functional.silu(sc) * scale).unsqueeze(-1) * v[s + j]
            rows.append(acc)
    if rows:
        out = torch.stack(rows)
    return out


@pytest.mark.parametrize("path,ops", PATHS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_attention_matches_a_naive_loop_forward_and_backward(path, ops, with_bias):
    seq = _seq()
    n = seq.num_tokens
    g = torch.Generator().manual_seed(1)
    # float32: FBGEMM's jagged operators take no float64
    q, k = (torch.randn(n, 2, 4, generator=g).requires_grad_() for _ in range(2))
    v = torch.randn(n, 2, 6, generator=g).requires_grad_()
    bias = mh.RelativeBias(16, 8) if with_bias else None
    if bias is not None:
        _randomize_bias(bias)
    fn = mh.jagged_attention if path == "jagged" else lambda *a: mh.padded_attention(*a, ops=ops)
    got = fn(q, k, v, seq, 0.5, 1 / 16, bias)
    ref = naive_attention(q, k, v, seq, 0.5, 1 / 16, bias)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    gout = torch.randn_like(ref)
    g_got = torch.autograd.grad(got, (q, k, v), gout)
    g_ref = torch.autograd.grad(ref, (q, k, v), gout)
    for a, b in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_layer_matches_the_definition_through_a_naive_attention():
    """A layer = x + Linear(LayerNorm(attention) * u) with u, v, q, k = split(silu(Linear(LN(x))))."""
    torch.manual_seed(0)
    a = _args(n_layers=1)
    layer = mh.HSTULayer(a).double()
    _randomize_bias(layer)
    seq = _seq()
    x = torch.randn(seq.num_tokens, a.dim, dtype=torch.float64, requires_grad=True)
    got = layer(x, seq, "jagged")
    hv, ha = a.n_heads * a.linear_dim, a.n_heads * a.attn_dim
    uvqk = torch.nn.functional.silu(layer.uvqk(torch.nn.functional.layer_norm(
        x, (a.dim,), layer.norm_in.weight, layer.norm_in.bias, a.eps)))  # fmt: skip
    u, v, q, k = uvqk.split([hv, hv, ha, ha], -1)
    att = naive_attention(q.reshape(-1, 2, 4), k.reshape(-1, 2, 4), v.reshape(-1, 2, 6), seq,
                          1 / math.sqrt(a.attn_dim), 1 / a.max_seq_len, layer.bias)  # fmt: skip
    ref = x + layer.out(layer.norm_attn(att.reshape(-1, hv)) * u)
    torch.testing.assert_close(got, ref)
    gx = torch.autograd.grad(got.sum(), x)[0]
    gr = torch.autograd.grad(ref.sum(), x)[0]
    torch.testing.assert_close(gx, gr)


@pytest.mark.parametrize("embeddings", ["torch", "fbgemm"] if mh.fbgemm_jagged_ops() else ["torch"])
def test_jagged_and_padded_models_agree_on_outputs_and_gradients(embeddings):
    torch.manual_seed(0)
    model = mh.HSTU(_args(), embeddings=embeddings)
    _randomize_bias(model)
    for seed in range(3):  # random ragged batches, always with an empty history and a length-1 one
        g = torch.Generator().manual_seed(seed)
        hist = [0, 1, *torch.randint(0, 10, (4,), generator=g).tolist()]
        cand = torch.randint(1, 4, (6,), generator=g).tolist()
        seq = _seq(tuple(hist), tuple(cand), seed)
        items = torch.randint(0, 500, (seq.num_tokens,), generator=g)
        actions = torch.randint(0, 5, (seq.num_tokens,), generator=g)
        x0 = model.embed(model.items.prepare(items), actions).detach()
        results = []
        for path, ops in PATHS:
            model.path, model.ops = path, ops
            x = x0.clone().requires_grad_()
            y = model.predict(model.encode(x, seq), seq)  # (K, T)
            grads = torch.autograd.grad(y.square().sum(), [x, *model.layers.parameters()])
            results.append((y.detach(), grads))
        for y, grads in results[1:]:
            torch.testing.assert_close(y, results[0][0], rtol=1e-5, atol=1e-6)
            for a, b in zip(grads, results[0][1], strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("path,ops", PATHS)
def test_the_mask_no_candidate_reads_another_and_no_history_reads_ahead(path, ops):
    """Perturb one token's k and v: exactly the tokens the rule lets read it change."""
    seq = _seq()
    n = seq.num_tokens
    g = torch.Generator().manual_seed(2)
    q, k = (torch.randn(n, 2, 4, generator=g) for _ in range(2))
    v = torch.randn(n, 2, 6, generator=g)
    fn = mh.jagged_attention if path == "jagged" else lambda *a: mh.padded_attention(*a, ops=ops)
    base = fn(q, k, v, seq, 0.5, 1 / 16)
    for s, h, c in zip(seq.starts(), seq.history, seq.candidates, strict=True):
        for j in range(h + c):
            k2, v2 = k.clone(), v.clone()
            k2[s + j] += 1.0
            v2[s + j] += 1.0
            changed = (fn(q, k2, v2, seq, 0.5, 1 / 16) - base).abs().amax((1, 2)) > 0
            readers = {s + i for i in range(h + c) if j <= i and (j < h or j == i)}
            assert set(torch.nonzero(changed).flatten().tolist()) == readers, (s, h, c, j)
    mask = mh.hstu_mask(seq, "cpu")[:, 0]  # (B, N, N)
    for b, (h, c) in enumerate(zip(seq.history, seq.candidates, strict=True)):
        cand = slice(h, h + c)
        assert (
            not mask[b, cand, cand].logical_and(~torch.eye(c, dtype=torch.bool)).any()
        )  # no other candidate
        assert not mask[b, :h, h:].any()  # no history row reads a candidate
        assert not mask[b, :h, :h].triu(1).any()  # nor the future


def test_flop_formula_matches_flopcountermode_on_the_padded_path():
    from torch.utils.flop_counter import FlopCounterMode

    cfg = workloads.get("hstu.inference").config(
        {"preset": "tiny", "batch_size": 6, "attention": "padded", "backend": "torch", "dtype": "fp32"}
    )
    built = wl.build(cfg, CTX, training=False)
    b, inner = built.batches[0], built.inner
    c0 = built.arith.counts[0]
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        inner(built.item_inputs[0], b.actions, b.seq)
    counted = fc.get_total_flops()
    formula = c0.forward_flops - c0.attention_flops + c0.attention_flops_computed["padded"]
    assert abs(counted - formula) / counted < 0.02, (counted, formula)


def test_parameter_count_matches_describe():
    for preset in ("tiny", "dlrmv3"):
        cfg = wl.HSTUConfig(preset=preset, items=1000, relative_bias=True)
        r = wl.resolve(cfg)
        args = dataclasses.replace(wl.setup.model_args(r), relative_bias=True)
        with torch.device("meta"):
            model = mh.HSTU(args, embeddings="torch", device="meta")
        assert mh.count_params(model) == wl.describe(cfg).facts["parameters"]
    if mh.fbgemm_jagged_ops():  # FBGEMM's table: its optimizer state is not counted as a parameter
        cfg = wl.HSTUConfig(preset="tiny", items=1000)
        args = wl.setup.model_args(wl.resolve(cfg))
        assert mh.count_params(mh.HSTU(args, embeddings="fbgemm")) == wl.describe(cfg).facts["parameters"]


def test_dlrmv3_describe_matches_the_public_shape():
    d = wl.describe(wl.HSTUConfig(preset="dlrmv3")).facts
    assert d["layers"] == 5 and d["heads"] == 4 and d["dim"] == 512 and d["hidden"] == 256
    assert d["item_table_parameters"] == 10_000_000 * 512
    # about 99k valid tokens per batch of 32 users (generative-recommenders issue 530)
    assert 90_000 < d["tokens_per_step"] < 105_000
    pairs = d["attention_pairs_per_head_and_layer"]
    assert pairs["valid"] < pairs["jagged"] < pairs["padded"]
    fl = d["flops_per_step"]
    assert fl["attention_forward_valid"] < fl["attention_forward_computed"]["jagged"]


@pytest.mark.parametrize("backend", ["torch", "fbgemm"] if mh.fbgemm_jagged_ops() else ["torch"])
def test_training_learns_and_reports_its_parts(backend):
    cfg = workloads.get("hstu.train_step").config(
        {
            "preset": "tiny",
            "batch_size": 16,
            "backend": backend,
            "num_batches": 1,
            "dtype": "fp32",
            "lr": 0.01,
        }
    )
    prep = wl.train_setup(cfg, CTX)
    losses = [float(prep.step()) for _ in range(30)]
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5, losses
    assert prep.info["backend"] == backend and prep.info["attention"] == "jagged"
    assert 0 < prep.info["attention_waste"] < 1
    parts = prep.after()["parts"]
    assert {"embedding_fwd", "attention_fwd", "hstu_layers_bwd", "dense_optimizer"} <= set(parts)
    assert all(v["ms"] > 0 for v in parts.values())
    assert parts["uvqk_projection_fwd"]["flops"] > 0 and parts["embedding_fwd"]["bytes"] > 0
    assert prep.work.counts["candidates"] == 16 * 8 and prep.work.samples == 16


def test_history_lengths_are_long_tailed_and_seeded():
    cfg = wl.HSTUConfig(preset="dlrmv3", batch_size=2000)
    h = wl.history_lengths(cfg, 0, 0)
    assert h == wl.history_lengths(cfg, 0, 0) and h != wl.history_lengths(cfg, 1, 0)
    # every batch the same lengths over other users: each step does the same work
    assert sorted(wl.history_lengths(cfg, 0, 1)) == sorted(h) and wl.history_lengths(cfg, 0, 1) != h
    mean = sum(h) / len(h)
    assert 900 < mean < 1050 and max(h) == 2048
    assert sorted(h)[len(h) // 2] < mean  # median below the mean: a right tail


def test_fit_caps_the_item_table_and_plan_lays_out_ddp():
    cfg = wl.HSTUConfig(preset="dlrmv3", batch_size=2, max_rows=-1)
    over = wl.fit(cfg, 8 * 2**30)
    assert 0 < over["max_rows"] < 10_000_000
    capped = dataclasses.replace(cfg, **over)
    assert wl.describe(capped).memory_bytes_estimate <= 0.5 * 8 * 2**30
    layout = workloads.get("hstu.train_step").plan(
        dataclasses.replace(cfg, batch_size=4, scaling="strong"), 2, "cpu"
    )
    assert layout.facts["parallelism"] == "ddp" and layout.facts["per_rank_batch_size"] == 2
    with pytest.raises(UsageError, match="sparse all-reduce"):
        workloads.get("hstu.train_step").plan(cfg, 2, "cuda")
    with pytest.raises(ValueError, match="max_history"):
        wl.HSTUConfig(preset="tiny", avg_history=100, max_history=50)
