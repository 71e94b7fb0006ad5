"""Measures the harness itself: timer overhead on a 1 ms step, start-up to the first measurement, and
(`--workloads`) the engine's median step of one DLRM and one Llama training step against a bare timing loop
over the same step, in interleaved rounds (goal: within 2%).

Run: .venv/bin/python benchmarks/engine_overhead.py [--repeats 5] [--workloads --rounds 9]
Figures go in docs/measured.md; they are benchmarks, never timed unit tests.
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
from typing import Any

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


WORKLOADS = {
    "dlrm.train_step": {"preset": "kaggle", "max_rows": 200_000, "batch_size": 2048, "dtype": "fp32"},
    "llama.train_step": {"flavor": "debug", "dtype": "fp32"},
}
"""One DLRM and one Llama whole step, the shapes of the default suite (the table capped to load quickly)."""


def bare_median(step: Any, budget_s: float) -> float:
    """The plainest timing there is: a clock pair around each call for `budget_s`, their median."""
    times = []
    end = time.perf_counter() + budget_s
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def workload_overhead(rounds: int, budget_s: float) -> dict[str, Any]:
    """engine median / bare-loop median per round, each round both in a fresh random order."""
    import random

    from chipbench import workloads
    from chipbench.core.contract import RunContext
    from interleave import process_setup, ratio

    process_setup()  # both timings share the process, so both see the same allocator
    rng = random.Random(0)
    out: dict[str, Any] = {}
    for name, over in WORKLOADS.items():
        b = workloads.get(name)
        prep = b.setup(b.config(over), RunContext(device="cpu", torch_device="cpu", seed=0))
        for _ in range(3):
            prep.step()
        got: dict[str, list[float]] = {"engine": [], "bare": []}
        for _ in range(rounds):
            for how in rng.sample(["engine", "bare"], 2):
                if how == "engine":
                    m = measure(prep.step, Device("cpu"), MeasureOptions(time_budget_s=budget_s))
                    got[how].append(statistics.median(m.samples))
                else:
                    got[how].append(bare_median(prep.step, budget_s))
        r = ratio(got["engine"], got["bare"])
        (lo, hi), med = r["ci95"], r["median"]
        out[name] = {"config": over, "engine_over_bare_median": med, "ci95": [lo, hi], "rounds": r["rounds"]}
        print(f"{name}: engine / bare median {med:.4f}, 95% CI [{lo:.4f}, {hi:.4f}] "
              f"over {rounds} rounds (goal within 2%)", flush=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workloads", action="store_true", help="the DLRM and Llama steps against a bare loop")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--time-budget", type=float, default=3.0)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if args.workloads:
        res: dict[str, Any] = workload_overhead(args.rounds, args.time_budget)
    else:
        res = {**timer_overhead(args.repeats), **startup(args.repeats)}
        for k, v in res.items():
            print(f"{k:40s} {v:10.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
