"""pytest-benchmark front door: the same workloads and setup code as `chipbench run`.

pytest benchmarks/ --benchmark-autosave
pytest benchmarks/ --benchmark-compare --benchmark-compare-fail=median:10%
"""

from __future__ import annotations

from typing import Any

import pytest

from chipbench.platform import allocator, ceilings, hardware


@pytest.fixture(scope="session")
def chipbench_env() -> dict[str, Any]:
    allocator.tune()  # as `chipbench run`'s workers do, before the first case is set up
    kind = hardware.resolve_device("auto", hardware.available_kinds())
    env = hardware.environment(kind)
    env["ceilings"] = ceilings.load(hardware.machine_id(env))  # a platform.ceilings.Ceilings or None
    return env


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    kind = hardware.resolve_device("auto", hardware.available_kinds())
    env = hardware.environment(kind)
    machine_info["chipbench_machine_id"] = hardware.machine_id(env)
    machine_info["device"] = env["device"]
    machine_info["packages"] = env["packages"]
    machine_info["host_allocator"] = allocator.tune()  # this hook may run before the fixture
