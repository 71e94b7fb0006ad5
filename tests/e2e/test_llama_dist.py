"""Llama training over two gloo processes on this CPU: FSDP2 and DDP follow the one-process trajectory.

One `run_local` spawn (about 5 s of imports per process) runs every distributed case; the one-process
references run in the test process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.core.errors import UsageError
from chipbench.execution.process_groups import run_local
from chipbench.workloads.llama import batch_layout

STEPS = 5
# lr 1e-2 (30x the default): five steps move the loss by tenths, and from the second step on the
# gradient norm (about 3) is above the clipping norm 1.0, so clipping over FSDP2's DTensor shards is
# part of the comparison. A rank that trained on its own rows alone, or gradients summed instead of
# averaged, would leave the trajectory at once.
_BASE = {"flavor": "tiny", "lr": 1e-2}
# Global batch 4 everywhere: weak scaling with 2 rows per process, or strong scaling of 4 over 2.
CASES: dict[str, dict[str, Any]] = {
    "fsdp2": {**_BASE, "dtype": "fp32", "batch_size": 2},
    "ddp": {**_BASE, "dtype": "fp32", "batch_size": 4, "parallel": "ddp", "scaling": "strong"},
    "fsdp2_ckpt_tied": {
        **_BASE, "dtype": "fp32", "batch_size": 4, "scaling": "strong",
        "activation_checkpointing": True, "tie_embeddings": True,
    },
    # At lr 1e-2 the bf16 difference grows to about 1e-2 in five steps; 3e-3 keeps it small (no clipping).
    "fsdp2_bf16": {**_BASE, "lr": 3e-3, "dtype": "bf16", "batch_size": 2},
    # fp16: GradScaler over DTensor gradients (DTensor all-reduces the found-inf flag over the mesh).
    "fsdp2_fp16": {**_BASE, "lr": 3e-3, "dtype": "fp16", "batch_size": 2},
}  # fmt: skip
GLOBAL_BATCH = 4

# fp32: the two sides add the same numbers in different orders (each rank's backward over 2 rows,
# then a 2-way reduce-scatter or all-reduce and a division, against one backward over 4 rows; the
# loss as the mean of two rank means against one mean over every token). That moves the loss by a
# few float32 ulps (seen: at most 2e-7 relative over five steps); 1e-5 leaves 50x of room, while a
# real fault moves it by about 1e-2 (seen: a rank training alone on its rows is 1% off at step two).
FP32_REL = 1e-5
# bf16 and fp16: weights all-gathered in the low dtype (FSDP2's param_dtype) instead of autocast's
# casts of the same fp32 weights: the same rounding of the weights, but low-precision gradients
# summed in another order before their fp32 reduction (seen: bf16 4e-4, fp16 2e-5 at lr 3e-3).
LOW_REL = 3e-3


def _ctx(rank: int = 0, world: int = 1, **kw: Any) -> RunContext:
    dist = {"dist_backend": "gloo"} if world > 1 else {}
    return RunContext(device="cpu", torch_device="cpu", seed=0, rank=rank, world_size=world, **dist, **kw)


def _train(ov: dict[str, Any], ctx: RunContext, steps: int = STEPS) -> dict[str, Any]:
    b = workloads.get("llama.train_step")
    p = b.setup(b.config(ov), ctx)
    losses = [float(p.step()) for _ in range(steps)]
    info = {k: v for k, v in p.info.items() if k != "shape"}
    return {"losses": losses, "info": info, "tokens": p.work.tokens, "flops": p.work.flops}


def _ranks(rank: int, world: int) -> dict[str, Any]:
    """Every distributed case on one rank (module level: run by run_local in a fresh process)."""
    out: dict[str, Any] = {name: _train(ov, _ctx(rank, world)) for name, ov in CASES.items()}
    # Too little free memory for the whole fp32 model: built on the meta device, each rank its shards.
    out["fsdp2_meta"] = _train(CASES["fsdp2"], _ctx(rank, world, free_memory_bytes=1), steps=3)
    fwd = workloads.get("llama.forward")
    cfg = fwd.config({"flavor": "tiny", "dtype": "fp32", "batch_size": GLOBAL_BATCH, "scaling": "strong"})
    prepared = fwd.setup(cfg, _ctx(rank, world))
    out["forward"] = prepared.step().numpy()  # (B/world, T, V): this rank's rows
    out["forward_info"] = prepared.info
    for name in ("llama.gemm", "llama.attention"):  # each rank its own copy: nothing to share
        b = workloads.get(name)
        b.setup(b.config({**b.suites["smoke"][0], "dtype": "fp32"}), _ctx(rank, world)).step()
    return out


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_local(_ranks, 2)


def _reference(name: str) -> list[float]:
    """One process on the whole global batch, from the same seed (so the same weights and rows)."""
    ov = {k: v for k, v in CASES[name].items() if k not in ("parallel", "scaling")}
    return _train({**ov, "batch_size": GLOBAL_BATCH}, _ctx())["losses"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_two_processes_follow_one_process_trajectory(
    ranks: list[dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_rank = [r[name]["losses"] for r in ranks]
    # Each rank trains on its own rows: its loss is its own, and the mean is the global batch's loss.
    assert per_rank[0][0] != per_rank[1][0]
    mean = [(a + b) / 2 for a, b in zip(*per_rank, strict=True)]
    norms: list[float] = []
    clip, total = torch.nn.utils.clip_grad_norm_, torch.nn.utils.get_total_norm

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        norms.append(float(clip(*args, **kwargs)))
        return torch.tensor(norms[-1])

    def spy_total(*args: Any, **kwargs: Any) -> torch.Tensor:
        norms.append(float(total(*args, **kwargs)))
        return torch.tensor(norms[-1])

    # One process folds the clip into fused AdamW (only the norm, get_total_norm); two clip as ever:
    # the trajectories agreeing is the fold agreeing with clip_grad_norm_ then the step.
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    monkeypatch.setattr(torch.nn.utils, "get_total_norm", spy_total)
    ref = _reference(name)
    if CASES[name]["lr"] >= 1e-2:
        assert max(norms) > 1.5  # clipping engaged
    rel = FP32_REL if CASES[name]["dtype"] == "fp32" else LOW_REL
    assert mean == pytest.approx(ref, rel=rel), (mean, ref)
    assert ref[-1] < ref[0] - 0.2  # the trajectory moves: the comparison is not of five equal numbers


def test_layout_and_precision_recorded(ranks: list[dict[str, Any]]) -> None:
    info = ranks[0]["fsdp2"]["info"]
    assert info["parallelism"] == "fsdp2" and info["fsdp_units"] == 3  # 2 blocks + root
    assert (info["per_rank_batch_size"], info["global_batch_size"], info["scaling"]) == (2, 4, "weak")
    assert info["optimizer"] == "AdamW fused" and "optimizer_fallback" not in info
    assert "one-process run" in info["init"]
    assert ranks[0]["ddp"]["info"]["parallelism"] == "ddp"
    assert (ranks[0]["ddp"]["info"]["per_rank_batch_size"], ranks[0]["ddp"]["info"]["scaling"]) == (
        2,
        "strong",
    )
    assert "param_dtype=bf16, reduce_dtype=fp32" in ranks[0]["fsdp2_bf16"]["info"]["mixed_precision"]
    assert "meta device" in ranks[0]["fsdp2_meta"]["info"]["init"]
    # Work counts one rank's rows: 2 sequences of 64 tokens.
    one = _train({**CASES["fsdp2"], "batch_size": 2}, _ctx(), steps=0)
    for name in CASES:
        assert ranks[1][name]["tokens"] == 2 * 64
        assert ranks[1][name]["flops"] == pytest.approx(one["flops"])
    assert one["info"]["parallelism"] == "none" and one["info"]["global_batch_size"] == 2


def test_meta_initialized_fsdp2_trains(ranks: list[dict[str, Any]]) -> None:
    for r in ranks:
        losses = r["fsdp2_meta"]["losses"]
        assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_forward_ranks_compute_their_rows(ranks: list[dict[str, Any]]) -> None:
    fwd = workloads.get("llama.forward")
    ref = fwd.setup(
        fwd.config({"flavor": "tiny", "dtype": "fp32", "batch_size": GLOBAL_BATCH}), _ctx()
    ).step()
    got = torch.cat([torch.from_numpy(r["forward"]) for r in ranks])
    torch.testing.assert_close(got, ref, rtol=0, atol=0)  # same weights, same rows, same kernels
    assert ranks[0]["forward_info"]["per_rank_batch_size"] == 2


def test_strong_scaling_needs_a_divisible_batch() -> None:
    cfg = workloads.get("llama.train_step").config({"flavor": "tiny", "batch_size": 3, "scaling": "strong"})
    assert batch_layout(cfg, 1) == (3, 3)
    assert batch_layout(dataclasses.replace(cfg, scaling="weak"), 2) == (3, 6)
    with pytest.raises(UsageError, match="multiple of 2"):
        workloads.get("llama.train_step").setup(cfg, _ctx(0, 2))  # raised before any collective


def test_plan_shards_training_state() -> None:
    b = workloads.get("llama.train_step")
    cfg = b.config({"flavor": "llama3-8b", "dtype": "bf16", "seq_len": 1024})
    one, fsdp, ddp = (
        b.plan(cfg, 1, "cuda"),
        b.plan(cfg, 8, "cuda"),
        b.plan(dataclasses.replace(cfg, parallel="ddp"), 8, "cuda"),
    )
    assert one.memory_bytes_per_rank_estimate == b.describe(cfg).memory_bytes_estimate
    assert fsdp.facts["parallelism"] == "fsdp2" and fsdp.facts["global_batch_size"] == 8
    assert one.memory_bytes_per_rank_estimate is not None and fsdp.memory_bytes_per_rank_estimate is not None
    assert fsdp.memory_bytes_per_rank_estimate < 0.5 * one.memory_bytes_per_rank_estimate
    assert ddp.memory_bytes_per_rank_estimate is not None
    assert ddp.memory_bytes_per_rank_estimate > one.memory_bytes_per_rank_estimate
    with pytest.raises(UsageError):
        b.plan(dataclasses.replace(cfg, scaling="strong", batch_size=3), 2, "cuda")
