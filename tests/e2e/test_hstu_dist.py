"""HSTU across processes: 2 gloo processes under DistributedDataParallel (item table replicated, sparse
gradients all-reduced) train exactly like one process over the same global batch of users."""

from __future__ import annotations

import pytest

from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.workloads import hstu as wl

torch = pytest.importorskip("torch")

GLOBAL_USERS = 8
STEPS = 4
# fp32; the 2-process run sums the same terms in another order (each rank's mean over its users, DDP's
# average of the two): observed differences ~1e-7. A wrong user split, a missing loss rescale or a
# skipped table update moves the loss by > 1e-3.
RTOL, ATOL = 1e-5, 1e-6
# AdamW divides each gradient by its own running RMS: where a gradient is near zero, rounding of ~1e-9
# becomes a visible part of the step (observed 3e-6 once in 1,024 weights). 1e-5 is 0.1% of one step
# (lr 0.01); a weight left without its update, or updated twice, is off by ~1e-2.
W_ATOL = 1e-5


def _cfg(**extra):
    return workloads.get("hstu.train_step").config(
        {
            "preset": "tiny",
            "batch_size": GLOBAL_USERS,
            "scaling": "strong",
            "backend": "torch",
            "dropout": False,
            "relative_bias": True,
            "dtype": "fp32",
            "lr": 0.01,
            "num_batches": 2,
            **extra,
        }
    )


def _initial_state() -> dict:
    built = wl.build(_cfg(), RunContext(device="cpu", torch_device="cpu", seed=0), training=True)
    return {k: v.detach().clone() for k, v in built.inner.state_dict().items()}


def _worker(rank: int, world: int, state: dict) -> dict:
    ctx = RunContext(
        device="cpu",
        torch_device="cpu",
        seed=0,
        rank=rank,
        world_size=world,
        local_rank=rank,
        dist_backend="gloo",
    )
    got: dict = {}
    prep = wl.train_setup(_cfg(), ctx, init_state=state, expose=got)
    losses = [float(prep.step()) for _ in range(STEPS)]
    weights = {k: v.detach().clone().numpy() for k, v in got["model"].state_dict().items()}
    inf = workloads.get("hstu.inference").setup(_cfg(scaling="weak", batch_size=2), ctx)
    inf.step()
    return {"losses": losses, "weights": weights, "info": prep.info, "samples": prep.work.samples,
            "inference": inf.info}  # fmt: skip


@pytest.mark.slow
def test_two_processes_match_one():
    from chipbench.execution.process_groups import run_local

    state = _initial_state()
    ranks = run_local(_worker, 2, state)
    exposed: dict = {}
    ref = wl.train_setup(
        _cfg(), RunContext(device="cpu", torch_device="cpu", seed=0), init_state=state, expose=exposed
    )
    ref_losses = [float(ref.step()) for _ in range(STEPS)]
    # each rank's loss is the mean over its 4 users: the global loss is their mean
    got = [sum(r["losses"][i] for r in ranks) / 2 for i in range(STEPS)]
    torch.testing.assert_close(torch.tensor(got), torch.tensor(ref_losses), rtol=RTOL, atol=ATOL)
    final = exposed["model"].state_dict()
    moved = set()
    for r in ranks:
        for key, w in r["weights"].items():
            torch.testing.assert_close(torch.from_numpy(w), final[key], rtol=RTOL, atol=W_ATOL)
            if not torch.equal(final[key], state[key]):
                moved.add(key)
    assert moved == set(final), set(final) - moved  # every weight moved, the item table too
    info = ranks[0]["info"]
    assert (
        info["parallelism"] == "ddp" and info["per_rank_batch_size"] == 4 and info["global_batch_size"] == 8
    )
    assert all(r["samples"] == 4 for r in ranks)
    assert ranks[1]["inference"]["parallelism"] == "ddp" and ranks[1]["inference"]["global_batch_size"] == 4
