"""Distributed arithmetic that needs no process group: bus factors and metrics over ranks."""

from __future__ import annotations

import pytest

from chipbench.workloads import comm

# A rank killed mid-run ends the job within this bound on one node: torchrun's agent notices the dead
# worker (it polls every 0.1 s), stops the others with SIGTERM and exits; the parent then saves.


def test_bus_factors_are_nccl_tests() -> None:
    assert comm.bus_factor("all_reduce", 8) == pytest.approx(2 * 7 / 8)
    assert comm.bus_factor("all_gather", 4) == pytest.approx(3 / 4)
    assert comm.bus_factor("reduce_scatter", 2) == pytest.approx(1 / 2)
    assert comm.bus_factor("all_to_all", 2) == pytest.approx(1 / 2)
    assert comm.bus_factor("broadcast", 16) == 1.0


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
