"""Measures the harness itself: timer overhead on a 1 ms step, and start-up to the first measurement.

Run: .venv/bin/python benchmarks/engine_overhead.py [--repeats 5]
Figures go in the README; they are benchmarks, never timed unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chipbench.measure.engine import MeasureOptions, measure
from chipbench.platform.device import Device


def busy(duration_s: float) -> None:
    end = time.perf_counter() + duration_s
    while time.perf_counter() < end:
        pass


def timer_overhead(repeats: int) -> dict[str, float]:
    """Engine median of a 1 ms step vs a bare loop's median (one clock pair around each chunk of 20 steps)."""
    ratios = []
    for _ in range(repeats):
        chunks = []
        for _ in range(100):
            t0 = time.perf_counter()
            for _ in range(20):
                busy(1e-3)
            chunks.append((time.perf_counter() - t0) / 20)
        bare = statistics.median(chunks)
        m = measure(lambda: busy(1e-3), Device("cpu"), MeasureOptions(time_budget_s=2.0, target_rel_ci=1e-4))
        med = statistics.median(m.samples)
        ratios.append(med / bare - 1.0)
    # The timer's own cost per sample: an empty step timed one call per sample.
    m = measure(lambda: None, Device("cpu"), MeasureOptions(time_budget_s=0.5, min_sample_s=0.0))
    return {
        "overhead_on_1ms_step_pct_median": statistics.median(ratios) * 100,
        "overhead_on_1ms_step_pct_min": min(ratios) * 100,
        "overhead_on_1ms_step_pct_max": max(ratios) * 100,
        "empty_step_ns_median": statistics.median(m.samples) * 1e9,
    }


def startup(repeats: int) -> dict[str, float]:
    """Process creation to first finished benchmark, through the real CLI and worker."""
    times, walls = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "chipbench.cli", "run", "selftest.busy", "--time-budget", "0.05", "--output", str(out)],
                check=True, capture_output=True, env={**os.environ, "CI": "true"},
            )  # fmt: skip
            walls.append(time.perf_counter() - t0)
            times.append(json.loads(out.read_text())["chipbench"]["startup_to_first_result_s"])
    return {
        "startup_to_first_result_s_median": statistics.median(times),
        "startup_to_first_result_s_min": min(times),
        "startup_to_first_result_s_max": max(times),
        "whole_command_wall_s_median": statistics.median(walls),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    res = {**timer_overhead(args.repeats), **startup(args.repeats)}
    for k, v in res.items():
        print(f"{k:40s} {v:10.4f}")


if __name__ == "__main__":
    main()
