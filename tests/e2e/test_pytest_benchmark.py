from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from chipbench.core.cases import Case
from chipbench.platform import hardware
from chipbench.platform.ceilings import Ceilings
from chipbench.results import document, files
from chipbench.results.outcomes import CaseOutcome, RunOutcome


def _run_outcome() -> RunOutcome:
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


def _doc() -> dict[str, Any]:
    ceil = Ceilings("cpu-test", matmul_tflops={"fp32": 0.4}, copy_gbps=20.0)
    return document.build(_run_outcome(), ceilings=ceil, suite="smoke", argv=["chipbench"],
                          commit_info=hardware.git_commit())  # fmt: skip


def test_pytest_benchmark_compare_reads_our_files(tmp_path: Path) -> None:
    a = files.write(_doc(), tmp_path / "0001_a.json")
    b = files.write(_doc(), tmp_path / "0002_b.json")
    exe = Path(sys.executable).with_name("pytest-benchmark")
    out = subprocess.run([str(exe), "compare", str(a), str(b)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "calib.matmul[dtype=fp32,m=1024]" in out.stdout and "Failed to load" not in out.stdout + out.stderr
