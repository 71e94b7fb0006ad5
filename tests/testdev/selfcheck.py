"""What the chipdev backend does, measured on it and printed as one JSON object (facts, no verdicts):
`python -m tests.testdev.selfcheck` from the repository root. tests/e2e/test_testdev.py runs it in a
subprocess (registering PrivateUse1 cannot be undone in a process) and judges the facts."""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from tests.testdev import plugin

DEV = plugin.NAME


def _memory() -> dict[str, Any]:
    """Allocated and peak bytes through torch.accelerator around a 4 MiB allocation and a peak reset."""
    acc = torch.accelerator
    acc.reset_peak_memory_stats()
    out: dict[str, Any] = {"before": acc.memory_allocated()}
    x = torch.empty(1 << 20, dtype=torch.float32, device=DEV)
    out["with"] = acc.memory_allocated()
    out["module_with"] = torch.chipdev.memory_allocated()  # type: ignore[attr-defined]
    out["bytes"] = x.untyped_storage().nbytes()
    del x
    out["after"] = acc.memory_allocated()
    out["peak_after_free"] = acc.max_memory_allocated()
    acc.reset_peak_memory_stats()
    out["peak_after_reset"] = acc.max_memory_allocated()
    out["stats_keys"] = sorted(k for k in acc.memory_stats() if k.startswith("allocated_bytes.all"))
    out["free"], out["total"] = acc.get_memory_info()
    return out


def _events() -> dict[str, Any]:
    """Elapsed time between two timed events around some matmuls, and the host's wall time around them."""
    a = torch.randn(256, 256, device=DEV)
    start, end = torch.Event(enable_timing=True), torch.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    for _ in range(4):
        a = a @ a / 256
    end.record()
    end.synchronize()
    wall_ms = (time.perf_counter() - t0) * 1e3
    stream = torch.Stream(device=DEV)
    return {
        "ms": start.elapsed_time(end),
        "wall_ms": wall_ms,
        "event_device": str(end.device),
        "new_stream": str(stream.device),
        "current_stream": str(torch.accelerator.current_stream().device),
    }


def _second_device() -> dict[str, Any]:
    """A tensor made while device 1 is current lands there, and its bytes are counted there."""
    with torch.accelerator.device_index(1):
        before = torch.chipdev.memory_allocated(1)  # type: ignore[attr-defined]
        x = torch.ones(1000, device=DEV)
        grown = torch.chipdev.memory_allocated(1) - before  # type: ignore[attr-defined]
        return {"device": str(x.device), "grown": grown, "sum": float(x.sum().item())}


def _llama_losses(device: str) -> list[float]:
    """Three AdamW training steps of a tiny Llama from seed 0 on `device`."""
    from chipbench.models.llama import ModelArgs, Transformer

    torch.manual_seed(0)
    args = ModelArgs(
        dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=256, multiple_of=32, max_seq_len=64
    )
    with torch.device(device):
        model = Transformer(args)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, args.vocab_size, (2, 33), generator=torch.Generator().manual_seed(1)).to(device)
    losses = []
    for _ in range(3):
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def _dlrm_losses(device: str) -> list[float]:
    """Two steps of a small DLRM on the plain-torch backend (EmbeddingBag with sparse gradients, a
    sparse Adagrad) from seed 0 on `device`."""
    import chipbench.models.dlrm as mdl
    from chipbench.models.dlrm_embeddings import SparseInput

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    spec = mdl.ModelSpec(rows=(50, 7, 300), dim=8, bottom=(13, 16, 8), top=(16, 1))
    model = mdl.DLRM(spec, "torch", device, "adagrad", 0.1)
    b, f = 6, spec.num_tables
    lengths = torch.randint(0, 4, (f * b,), generator=gen)
    values = torch.cat(
        [
            torch.randint(0, n, (int(lengths[t * b : (t + 1) * b].sum()),), generator=gen)
            for t, n in enumerate(spec.rows)
        ]
    )
    dense = torch.randn(b, spec.bottom[0], generator=gen).to(device)
    y = torch.randint(0, 2, (b,), generator=gen).float().to(device)
    sparse = model.prepare_sparse(SparseInput(values.to(device), lengths.to(device), b, f))
    opts = [mdl.dense_optimizer("adam", model.dense_parameters(), 0.1), model.make_embedding_optimizer(0.1)]
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(dense, sparse).squeeze(1), y)
        loss.backward()
        for opt in opts:
            assert opt is not None
            opt.step()
            opt.zero_grad()
        losses.append(loss.item())
    return losses


def _hstu_losses(device: str) -> list[float]:
    """Two AdamW steps of a small HSTU (jagged attention, torch embeddings) from seed 0 on `device`."""
    import chipbench.models.hstu as mh

    torch.manual_seed(0)
    a = mh.HSTUArgs(
        num_items=500, dim=16, n_layers=2, n_heads=2, attn_dim=4, linear_dim=6, hidden=8, max_seq_len=16,
        relative_bias=True,
    )  # fmt: skip
    model = mh.HSTU(a, embeddings="torch", device=device)
    g = torch.Generator().manual_seed(0)
    hist, cand = (5, 0, 1, 9, 3), (3, 2, 1, 4, 2)
    ts = [torch.cumsum(torch.randint(1, 5000, (h + 1,), generator=g), 0) for h in hist]
    stamps = torch.cat([torch.cat([t[:h], t[h:].expand(c)]) for t, h, c in zip(ts, hist, cand, strict=True)])
    seq = mh.Jagged.build(hist, cand, stamps, device=device)
    items = torch.randint(0, a.num_items, (seq.num_tokens,), generator=g).to(device)
    actions = torch.randint(0, a.num_actions, (seq.num_tokens,), generator=g).to(device)
    opt = torch.optim.AdamW(model.dense_parameters(), lr=1e-2)  # the item table: sparse gradients
    losses = []
    for _ in range(2):
        loss = model(items, actions, seq).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def facts() -> dict[str, Any]:
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    on_dev = a.to(DEV) @ b.to(DEV)
    return {
        "build": {"seconds": plugin.BUILT.seconds, "cached": plugin.BUILT.cached},
        "accelerator": str(torch.accelerator.current_accelerator()),
        "device_count": torch.accelerator.device_count(),
        "matmul_device": str(on_dev.device),
        "matmul_equal": torch.equal(on_dev.cpu(), a @ b),
        "memory": _memory(),
        "events": _events(),
        "second_device": _second_device(),
        "llama": {"device": _llama_losses(DEV), "cpu": _llama_losses("cpu")},
        "dlrm": {"device": _dlrm_losses(DEV), "cpu": _dlrm_losses("cpu")},
        "hstu": {"device": _hstu_losses(DEV), "cpu": _hstu_losses("cpu")},
    }


if __name__ == "__main__":
    print(json.dumps(facts()))
