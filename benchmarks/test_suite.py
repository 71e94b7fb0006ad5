"""Every smoke-suite case as a pytest-benchmark test, timed with device-synchronized steps."""

from __future__ import annotations

import os
from typing import Any

import pytest

from chipbench import bench, hardware
from chipbench.config import config_dict
from chipbench.engine import Device
from chipbench.worker import prepare

SUITE = os.environ.get("CHIPBENCH_SUITE", "smoke")
ROUNDS = int(os.environ.get("CHIPBENCH_ROUNDS", "10"))
CASES = bench.suite_cases(SUITE)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_benchmark(benchmark: Any, case: bench.Case, chipbench_env: dict[str, Any]) -> None:
    kind = chipbench_env["device"]["kind"]
    concrete = bench.resolve_case(
        case, chipbench_env, chipbench_env["ceilings"], hardware.free_memory_bytes(kind)
    )
    overrides = concrete.overrides
    b, cfg, prepared = prepare(case.bench, overrides, kind)
    device = Device(kind)

    def step() -> None:
        prepared.step()
        device.synchronize()  # time the device's work, not the launch

    benchmark.group = case.bench
    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=3, iterations=1)
    if benchmark.stats is None:  # --benchmark-disable: the step ran once as a check, nothing was timed
        return
    median = benchmark.stats.stats.median
    st = {"p50": median, "p90": median, "p99": median}
    metrics, missing = bench.derive_metrics(
        prepared.work,
        median,
        st,
        device_name=chipbench_env["device"]["name"],
        dtype=getattr(cfg, "dtype", None),
        ceilings=chipbench_env["ceilings"],
        peak_mem_bytes=None,
    )
    benchmark.extra_info.update(
        {
            "benchmark": case.bench,
            "version_hash": b.version_hash(cfg),
            "config": config_dict(cfg),
            "device": kind,
            "dtype": getattr(cfg, "dtype", None),
            "metrics": {k: v for k, v in metrics.items() if not k.startswith("step_ms")},
            "unavailable": missing,
            "info": prepared.info,
        }
    )
