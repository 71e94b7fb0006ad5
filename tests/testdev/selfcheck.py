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
    }


if __name__ == "__main__":
    print(json.dumps(facts()))
