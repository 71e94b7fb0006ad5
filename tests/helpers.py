"""What several tests build: the real CLI in a subprocess, synthetic results files and documents, a
CPU-bound competitor. Shared by tests/unit and tests/e2e."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chipbench.core.cases import Case
from chipbench.platform import hardware
from chipbench.platform.ceilings import Ceilings
from chipbench.results import document
from chipbench.results.outcomes import CaseOutcome, RunOutcome


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `chipbench` entry point in a subprocess (`env`: variables added to this one's)."""
    env = {**os.environ, "CI": "true", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "chipbench.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


MACHINE = {
    "chipbench_machine_id": "cpu-test-2c",
    "device": {"kind": "cpu", "name": "Test CPU", "count": 1},
    "packages": {"torch": "2.13.0+cpu", "fbgemm-gpu-cpu": "1.8.0", "torchrec": "1.8.0"},
    "cpu": {"brand_raw": "Test CPU", "arch": "x86_64", "count": 2},
    "machine": "x86_64",
}


def bench_entry(
    name: str, data: Any, version_hash: str | None = "h1", group: str | None = None
) -> dict[str, Any]:
    data = [float(v) for v in data]
    return {
        "name": name,
        "group": group or name.split("[")[0],
        "fullname": f"chipbench::{name}",
        "extra_info": {"version_hash": version_hash, "metrics": {}},
        "stats": {"data": data, "median": float(np.median(data)), "rounds": len(data)},
    }


def write_results(
    path: Path,
    benches: dict[str, Any],
    *,
    commit: str = "c0",
    commit_time: str = "2026-01-01T00:00:00+00:00",
    machine: dict[str, Any] | None = None,
    hashes: dict[str, str] | None = None,
) -> Path:
    """A synthetic chipbench results file: {name: samples}."""
    mi = json.loads(json.dumps(machine or MACHINE))
    doc = {
        "machine_info": mi,
        "commit_info": {"id": commit, "time": commit_time},
        "benchmarks": [bench_entry(n, d, (hashes or {}).get(n, "h1")) for n, d in benches.items()],
        "datetime": commit_time,
        "version": "5.1.0",
        "chipbench": {"schema_version": 1, "machine_id": mi["chipbench_machine_id"], "errors": []},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def lognormal(n: int, median: float = 1e-3, sigma: float = 0.02, seed: int = 0) -> np.ndarray:
    return median * np.exp(np.random.default_rng(seed).normal(0, sigma, n))


def run_outcome() -> RunOutcome:
    env = hardware.environment("cpu")
    payload: dict[str, Any] = {
        "type": "result",
        "measurement": {
            "samples": [0.010, 0.011, 0.0105, 0.0102, 0.0099, 0.0101],
            "iterations": 1,
            "first_step_s": 0.5,
            "warmup_steps": 6,
            "warmup_s": 0.06,
            "stop_reason": "time_budget",
            "rel_ci95": 0.02,
            "timer": "perf_counter",
            "measure_s": 0.07,
            "peak_mem_bytes": 2**30,
            "peak_mem_source": "VmHWM",
            "extra": {},
        },
        "work": {"flops": 2e9, "bytes": 1e8, "samples": 32, "tokens": None, "model_flops": False,
                 "flop_convention": "2mnk", "bytes_convention": "rw", "extra_bytes": {}},
        "info": {"backend": "torch"},
        "version_hash": "abc123",
        "config": {"m": 1024, "dtype": "fp32"},
    }  # fmt: skip
    ok = CaseOutcome(Case("calib.matmul", {"m": 1024, "dtype": "fp32"}), True, payload, 1.0)
    bad = CaseOutcome(
        Case("selftest.busy", {"fail": "crash"}),
        False,
        {"error_type": "crash", "message": "worker exited"},
        0.1,
    )
    return RunOutcome(env=env, kind="cpu", free_memory_bytes=2**34, outcomes=[ok, bad])


def result_doc() -> dict[str, Any]:
    ceil = Ceilings("cpu-test", matmul_tflops={"fp32": 0.4}, copy_gbps=20.0)
    return document.build(run_outcome(), ceilings=ceil, suite="smoke", argv=["chipbench"],
                          commit_info=hardware.git_commit())  # fmt: skip


def wait_for(cond: Callable[[], object], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll `cond` every `interval_s` until it holds (True) or `timeout_s` has passed (False)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(interval_s)
    return False


def spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def powercap_zone(root: Path, name: str, label: str, uj: int, max_uj: int = 2**32) -> Path:
    """A RAPL zone of a fake powercap tree (what CHIPBENCH_POWERCAP_ROOT points at)."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(str(uj))
    (d / "max_energy_range_uj").write_text(str(max_uj))
    return d
