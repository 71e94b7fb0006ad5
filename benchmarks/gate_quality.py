"""Quality of `chipbench compare`'s gate on this machine: false-alarm rate and detection power.

    .venv/bin/python benchmarks/gate_quality.py [--runs 40] [--time-budget 0.3]

Collects a pool of real short runs once (one worker process, restarted every few rounds so process-level
effects are in the pool too; the cases interleaved round by round), then forms many comparisons from pairs
of runs with the gate's own statistics (`compare.compare_samples`, default 5% threshold):

- A/A: two runs of the same case. Any `regression` verdict is a false alarm (goal: at most 1%).
- 10% slowdown: a run of the case against a run of the same case with its work scaled by 1.1
  (selftest.busy step_us 1000 -> 1100; calib.matmul k -> 1.1 k). Goal: `regression` in at least 95%.

Both single-run comparisons (what `chipbench compare baseline.json new.json` does) and comparisons of
3 pooled runs per side (two-level bootstrap) are reported. Not a pytest file: pytest collects only test_*.py.

    .venv/bin/python benchmarks/gate_quality.py --history [--seeds 200]

runs nothing: it measures `history` and one run against one run on the committed results
(`gate_quality_history.py`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from typing import Any

import numpy as np

from chipbench.execution.options import RunOptions
from chipbench.execution.pools import WorkerPool
from chipbench.execution.protocol import run_message
from chipbench.gate import compare
from chipbench.gate.thresholds import DEFAULT_THRESHOLD

CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # label: (bench, base overrides, 10%-slower overrides)
    "selftest.busy 1 ms": ("selftest.busy", {"step_us": 1000.0}, {"step_us": 1100.0}),
    "calib.matmul 256x256x320 fp32": (
        "calib.matmul",
        {"m": 256, "n": 256, "k": 320, "dtype": "fp32"},
        {"m": 256, "n": 256, "k": 352, "dtype": "fp32"},  # 352/320 = 1.10 x the FLOPs, both multiples of 32
    ),
}


def collect(
    runs: int, budget: float, restart_every: int
) -> tuple[dict[tuple[str, str], list[np.ndarray]], float]:
    pool = WorkerPool("cpu")
    hello = pool.start()
    data: dict[tuple[str, str], list[np.ndarray]] = {}
    t0 = time.perf_counter()
    try:
        for r in range(runs):
            if r and r % restart_every == 0:
                pool.close()
                hello = pool.start()
            order = list(CASES.items())
            if r % 2:
                order.reverse()
            for label, (bench, base, slow) in order:
                sides = [("base", base), ("slow", slow)]
                if r % 2:
                    sides.reverse()
                for side, ov in sides:
                    reply = pool.run(run_message(bench, ov, RunOptions(time_budget_s=budget)), timeout_s=120)
                    if reply["type"] != "result":
                        raise SystemExit(f"{label} {side}: {reply.get('message')}")
                    data.setdefault((label, side), []).append(np.asarray(reply["measurement"]["samples"]))
            print(f"round {r + 1}/{runs} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        pool.close()
    del hello
    return data, time.perf_counter() - t0


def rates(pairs: list[tuple[Any, Any]], n_boot: int) -> dict[str, float]:
    counts = dict.fromkeys(compare.VERDICTS, 0)
    for a, b in pairs:
        counts[compare.compare_samples(a, b, n_boot=n_boot).verdict] += 1
    n = len(pairs)
    return {"trials": n, **{k: v / n for k, v in counts.items() if v}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40, help="runs per case and side")
    ap.add_argument("--time-budget", type=float, default=0.3, help="time budget of one run (s)")
    ap.add_argument("--restart-every", type=int, default=5, help="fresh worker process every N rounds")
    ap.add_argument("--max-trials", type=int, default=600)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument(
        "--pooled", dest="pooled_list", default="3,5", help="runs per side in the pooled comparisons"
    )
    ap.add_argument("--save", metavar="NPZ", help="save the pool of runs")
    ap.add_argument("--load", metavar="NPZ", help="analyse a saved pool instead of running")
    ap.add_argument("--history", action="store_true", help="measure history on the committed results instead")
    ap.add_argument("--seeds", type=int, default=200, help="generated histories per shape (--history)")
    args = ap.parse_args()
    if args.history:
        import gate_quality_history

        gate_quality_history.main(args.seeds)
        return
    if args.load:
        with np.load(args.load) as z:
            meta = json.loads(str(z["meta"]))
            data = {tuple(k): [z[f"{i}_{j}"] for j in range(n)] for i, (k, n) in enumerate(meta["keys"])}
            wall, args.runs, args.time_budget = meta["wall"], meta["runs"], meta["budget"]
    else:
        data, wall = collect(args.runs, args.time_budget, args.restart_every)
    if args.save:
        arrays = {f"{i}_{j}": r for i, runs in enumerate(data.values()) for j, r in enumerate(runs)}
        meta = {"keys": [[list(k), len(v)] for k, v in data.items()], "wall": wall}
        meta |= {"runs": args.runs, "budget": args.time_budget}
        np.savez(args.save, meta=json.dumps(meta), **arrays)
    print(
        f"\npool: {args.runs} runs per case and side, time budget {args.time_budget} s per run, "
        f"{wall:.0f} s wall in all; default threshold {DEFAULT_THRESHOLD:.0%}\n"
    )
    rng = random.Random(0)
    for label in CASES:
        base, slow = data[(label, "base")], data[(label, "slow")]
        sizes = [r.size for r in base + slow]
        true = float(np.median(np.concatenate(slow)) / np.median(np.concatenate(base)))
        spread = np.std(np.log([np.median(r) for r in base]), ddof=1)
        print(
            f"== {label}: samples per run median {int(np.median(sizes))} (min {min(sizes)}, max {max(sizes)}); "
            f"run-to-run sd of medians {spread:.1%}; measured slowdown of the scaled case {true:.3f}"
        )
        aa = list(itertools.combinations(base, 2)) + list(itertools.combinations(slow, 2))
        ab = [(b, s) for b in base for s in slow]
        for name, pairs in (("A/A single runs", aa), ("10% slower, single runs", ab)):
            pairs = rng.sample(pairs, min(len(pairs), args.max_trials))
            print(f"  {name:40s} {_fmt(rates(pairs, args.n_boot))}")
        for k in (int(v) for v in args.pooled_list.split(",")):
            pooled_aa, pooled_ab = [], []
            for _ in range(min(args.max_trials, 300)):
                # Consecutive runs, as `chipbench ab` interleaves them: A/A takes alternate runs of one case.
                start = rng.randrange(0, len(base) - 2 * k + 1)
                window = base[start : start + 2 * k]
                pooled_aa.append((window[0::2], window[1::2]))
                start = rng.randrange(0, len(base) - k + 1)
                pooled_ab.append((base[start : start + k], slow[start : start + k]))
            print(f"  {f'A/A {k} interleaved runs per side':40s} {_fmt(rates(pooled_aa, args.n_boot))}")
            print(
                f"  {f'10% slower, {k} interleaved runs per side':40s} {_fmt(rates(pooled_ab, args.n_boot))}"
            )


def _fmt(r: dict[str, float]) -> str:
    trials = int(r.pop("trials"))
    return f"trials {trials:4d}: " + ", ".join(f"{k} {v:.1%}" for k, v in r.items())


if __name__ == "__main__":
    main()
