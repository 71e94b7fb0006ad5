"""Every smoke-suite case as a pytest-benchmark test, timed with device-synchronized steps."""

from __future__ import annotations

import os
from typing import Any

import pytest

from chipbench import workloads
from chipbench.core.cases import Case
from chipbench.core.config import config_dict
from chipbench.execution.worker import prepare
from chipbench.platform import hardware
from chipbench.platform.device import Device
from chipbench.results.metrics import Setting, derive_metrics

SUITE = os.environ.get("CHIPBENCH_SUITE", "smoke")
ROUNDS = int(os.environ.get("CHIPBENCH_ROUNDS", "10"))
CASES = workloads.suite_cases(SUITE)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_benchmark(benchmark: Any, case: Case, chipbench_env: dict[str, Any]) -> None:
    kind = chipbench_env["device"]["kind"]
    device_dtype = hardware.auto_dtype(chipbench_env, chipbench_env["ceilings"])
    concrete = workloads.resolve_case(case, kind, device_dtype, hardware.free_memory_bytes(kind))
    got = prepare(case.bench, concrete.overrides, kind)
    b, cfg, prepared = got.bench, got.config, got.prepared
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
    metrics, missing = derive_metrics(
        prepared.work,
        median,
        st,
        Setting(
            device_name=chipbench_env["device"]["name"],
            dtype=getattr(cfg, "dtype", None),
            ceilings=chipbench_env["ceilings"],
            tf32=bool((chipbench_env.get("tf32") or {}).get("effective")),
        ),
        peak_mem_bytes=None,
    )
    benchmark.extra_info.update(
        {
            "benchmark": case.bench,
            "version_hash": b.version_hash(cfg),
            "config": config_dict(cfg),
            "requested": case.overrides,
            "device": kind,
            "dtype": getattr(cfg, "dtype", None),
            "metrics": {k: v for k, v in metrics.items() if not k.startswith("step_ms")},
            "unavailable": missing,
            "info": prepared.info,
        }
    )
