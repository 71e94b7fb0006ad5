"""The chipdev test accelerator (tests/testdev) built with the machine's compiler and measured in a
subprocess: registering PrivateUse1 cannot be undone, so it never happens in the test process. Skipped
only where no C++ compiler is found, and never under CI (there g++ is on the machine: a missing one fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.testdev import build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    if build.compiler() is None:
        reason = f"no C++ compiler ({os.environ.get('CXX', 'c++')}) to build tests/testdev/chipdev.cpp"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and under CI this test must run")
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    p = subprocess.run(
        [sys.executable, "-m", "tests.testdev.selfcheck"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=900,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.splitlines()[-1])


def test_tensors_live_on_chipdev_and_matmul_equals_cpu(facts: dict[str, Any]) -> None:
    assert facts["accelerator"] == "chipdev" and facts["device_count"] == 2
    assert facts["matmul_device"] == "chipdev:0" and facts["matmul_equal"]
    assert facts["second_device"] == {"device": "chipdev:1", "grown": 4000, "sum": 1000.0}


def test_allocator_statistics_through_torch_accelerator(facts: dict[str, Any]) -> None:
    m = facts["memory"]
    assert m["bytes"] == 4 << 20
    assert m["with"] - m["before"] == m["bytes"] and m["module_with"] == m["with"]
    assert m["after"] == m["before"]
    assert m["peak_after_free"] >= m["with"]  # the peak outlives the tensor
    assert m["peak_after_reset"] == m["after"]  # and a reset brings it down to what is live
    assert "allocated_bytes.all.peak" in m["stats_keys"]
    assert 0 < m["free"] <= m["total"]


def test_timed_events_measure_the_work_between_them(facts: dict[str, Any]) -> None:
    e = facts["events"]
    assert 0 < e["ms"] <= e["wall_ms"]
    assert e["event_device"] == e["new_stream"] == e["current_stream"] == "chipdev:0"


@pytest.mark.parametrize("model", ["llama", "dlrm", "hstu"])
def test_training_steps_on_chipdev_match_cpu(facts: dict[str, Any], model: str) -> None:
    # dlrm: EmbeddingBag's sparse gradients and a sparse Adagrad, so sparse COO tensors on the device
    dev, cpu = facts[model]["device"], facts[model]["cpu"]
    assert dev == pytest.approx(cpu, rel=1e-5) and dev[-1] < dev[0]


def test_a_second_load_comes_from_the_cache(facts: dict[str, Any]) -> None:
    code = "from tests.testdev import plugin; print(plugin.BUILT.cached)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "True"


def test_the_smoke_suite_runs_on_chipdev_through_chipbench(facts: dict[str, Any], tmp_path: Path) -> None:
    """`chipbench run --suite smoke --device chipdev --device-plugin tests.testdev.plugin`: every case
    measured, timed by the device's own events, its peak memory read from the backend's allocator (a short
    budget: what is checked is how each case is measured, not its figure; the suite's own budget runs in the
    CI recipe's test)."""
    out = tmp_path / "chipdev.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "CI": "true"}
    p = subprocess.run(
        [sys.executable, "-m", "chipbench.cli", "run", "--suite", "smoke", "--device", "chipdev",
         "--device-plugin", "tests.testdev.plugin", "--output", str(out), "--time-budget", "0.05"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert not doc["chipbench"].get("errors") and len(doc["benchmarks"]) >= 20
    assert doc["machine_info"]["device"]["kind"] == "chipdev"
    for b in doc["benchmarks"]:
        m = b["extra_info"]["measurement"]
        assert m["timer"] == "chipdev-events", b["name"]
        assert m["peak_mem_source"] == "torch.accelerator.max_memory_allocated" and m["peak_mem_bytes"] > 0
