"""Multi-process runs on this CPU with gloo: collectives checked for value, lockstep measurement,
the torchrun front door end to end, and a killed or hung rank ending the job within a bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chipbench.execution import process_groups as distributed
from chipbench.results import files
from chipbench.workloads import comm

# A rank killed mid-run ends the job within this bound on one node: torchrun's agent notices the dead
# worker (it polls every 0.1 s), stops the others with SIGTERM and exits; the parent then saves.


def _collectives(rank: int, world: int) -> list[str]:
    """Every collective, checked for value at two sizes (one not a multiple of the world size)."""
    import torch

    done = []
    for op in comm.OPS:
        for count in (world * 5, world * 1000 + 1):
            n = count // world * world
            comm.check_collective(op, n, rank, world, torch.float32, "cpu")
            comm.check_collective(op, n, rank, world, torch.bfloat16, "cpu")
            done.append(op)
    return done


def _lockstep(rank: int, world: int) -> dict[str, object]:
    """A step with a collective, rank 1 slower: lockstep keeps the ranks together (no deadlock), and
    each sample is the slower rank's time."""
    import torch
    import torch.distributed as dist

    from chipbench.measure.engine import MeasureOptions, measure
    from chipbench.platform.device import Device

    t = torch.ones(4)
    pause = 0.002 if rank == 1 else 0.0005

    def step() -> None:
        end = time.perf_counter() + pause
        while time.perf_counter() < end:
            pass
        dist.all_reduce(t)

    m = measure(step, Device("cpu"), MeasureOptions(time_budget_s=0.3), distributed.Lockstep())
    return {"n": len(m.samples), "median": sorted(m.samples)[len(m.samples) // 2], "extra": m.extra.as_dict()}


def test_collectives_give_the_right_values() -> None:
    got = distributed.run_local(_collectives, 2)
    assert got[0] == got[1] and len(got[0]) == 2 * len(comm.OPS)


def _rank0_raises(rank: int, world: int) -> None:
    import torch
    import torch.distributed as dist

    dist.barrier()
    if rank == 0:
        raise ValueError("rank 0's own failure")
    time.sleep(0.5)  # rank 0 tears its group down meanwhile: this collective loses its peer
    dist.all_reduce(torch.ones(4))


def test_run_local_reports_the_first_hand_failure_first() -> None:
    with pytest.raises(RuntimeError) as exc:
        distributed.run_local(_rank0_raises, 2, timeout_s=60)
    text = str(exc.value)
    assert text.startswith("rank 0 failed:")
    assert "ValueError: rank 0's own failure" in text


def test_bus_factors_are_nccl_tests() -> None:
    assert comm.bus_factor("all_reduce", 8) == pytest.approx(2 * 7 / 8)
    assert comm.bus_factor("all_gather", 4) == pytest.approx(3 / 4)
    assert comm.bus_factor("reduce_scatter", 2) == pytest.approx(1 / 2)
    assert comm.bus_factor("all_to_all", 2) == pytest.approx(1 / 2)
    assert comm.bus_factor("broadcast", 16) == 1.0


def test_lockstep_measurement_takes_the_slowest_rank() -> None:
    r0, r1 = distributed.run_local(_lockstep, 2)
    assert r0["n"] == r1["n"] and r0["median"] == r1["median"]
    assert r0["median"] >= 0.002  # the slower rank's pause, not rank 0's own 0.5 ms
    assert r0["extra"]["world_size"] == 2 and len(r0["extra"]["per_rank_median_s"]) == 2


def test_mixed_cases_failing_rank_named_next_case_runs(tmp_path: Path) -> None:
    """A rank that raises in set-up is named and the next case runs in the same job; throughput is global."""
    from chipbench.core.cases import Case
    from chipbench.execution.options import Destination, RunOptions
    from chipbench.execution.pools import DistWorkerPool, Launch
    from chipbench.execution.session import execute

    cases = [
        Case("selftest.busy", {"fail": "raise", "fail_rank": 1}),
        Case("comm.broadcast", {"size_bytes": 4096}),
        Case("selftest.busy", {"step_us": 500.0}),
    ]
    pool = DistWorkerPool("cpu", Launch(2))
    got = execute(
        cases, pool=pool, options=RunOptions(time_budget_s=0.2, timeout_s=120),
        destination=Destination(None, ["chipbench"], tmp_path / "r.json"),
    )  # fmt: skip
    path, code = got.path, got.exit_code
    assert code == 1 and path is not None
    assert pool.launched == 1  # a set-up failure, agreed on before any collective, keeps the job
    doc = files.load(path)
    (err,) = doc["chipbench"]["errors"]
    assert err["group"] == "selftest.busy" and err["message"].startswith(
        "rank 1: selftest: deliberate failure"
    )
    assert [b["group"] for b in doc["benchmarks"]] == ["comm.broadcast", "selftest.busy"]
    busy = doc["benchmarks"][1]["extra_info"]
    assert busy["metrics"]["samples_per_s"] == pytest.approx(2 * busy["metrics"]["samples_per_s_per_rank"])
    assert len(busy["measurement"]["extra"]["per_rank_median_s"]) == 2


def test_derived_metrics_over_ranks() -> None:
    """Work counts one rank: throughputs and memory bandwidth are summed over ranks, shares are per
    device, a collective's bandwidth is the job's (nccl-tests) and has no memory ceiling."""
    from chipbench.core.contract import Work
    from chipbench.platform.ceilings import Ceilings
    from chipbench.results.metrics import Setting, derive_metrics

    st = {"p50": 0.01, "p90": 0.01, "p99": 0.01}
    ceil = Ceilings("m", copy_gbps=100.0, matmul_tflops={"bf16": 500.0})
    h100 = Setting("NVIDIA H100 80GB HBM3", "bf16", ceil, world_size=1)
    h100x4 = Setting("NVIDIA H100 80GB HBM3", "bf16", ceil, world_size=4)
    work = Work(flops=1e12, bytes=1e9, samples=10, model_flops=True)
    one, _ = derive_metrics(work, 0.01, st, h100, peak_mem_bytes=None)
    four, _ = derive_metrics(work, 0.01, st, h100x4, peak_mem_bytes=None)
    assert four["samples_per_s"] == 4 * one["samples_per_s"] == 4 * four["samples_per_s_per_rank"]
    assert four["tflops"] == pytest.approx(4 * one["tflops"]) and four["tflops_per_device"] == one["tflops"]
    assert four["mfu"] == one["mfu"] and four["share_of_ceiling_flops"] == one["share_of_ceiling_flops"]
    assert (
        four["gbps"] == pytest.approx(4 * one["gbps"])
        and four["share_of_ceiling_bw"] == one["share_of_ceiling_bw"]
    )
    coll = Work(bytes=1e9, bytes_convention="collective algbw", extra_bytes={"busbw": 1.5e9})
    c, missing = derive_metrics(coll, 0.01, st, h100x4, peak_mem_bytes=None)
    assert c["gbps"] == pytest.approx(100.0) and c["gbps_busbw"] == pytest.approx(150.0)
    assert not any(k.startswith("share_of") for k in c) and not missing
