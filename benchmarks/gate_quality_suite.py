"""The gate's quality on the real workloads: every smoke-suite case against a twin that does ~10% more work.

    .venv/bin/python benchmarks/gate_quality_suite.py --runs 30 --save /tmp/pool.npz   # ~15 min here
    .venv/bin/python benchmarks/gate_quality_suite.py --load /tmp/pool.npz --out results/gate-quality/<id>.md

Collects a pool of short runs (`--time-budget` each, the smoke suite's 0.3 s by default) of every smoke case
and of its twin, interleaved round by round in a worker process restarted every few rounds (process-level
effects are in the pool). Runs the kernel marked disturbed are counted and left out, as the gate does. Then,
with the gate's own statistics (`compare.compare_samples`, 5% threshold), per case and for the suite:

- noise: the run-to-run coefficient of variation of run medians;
- the twin's measured slowdown (pooled medians), against the 1.10 +- 0.01 it was chosen for;
- false alarms (A/A: a `regression` between runs of the same case) and detection (twin against case) for
  one run against one run, and for `chipbench ab` with k interleaved rounds per side, k = 1..10 (k
  consecutive rounds: A/A takes alternate runs of the case, detection the case and its twin of the same
  rounds), and for `ab`'s early stop (looks after rounds 3..10 at 1 - 0.05/8);
- the smallest k with at most 1% false alarms and at least 95% detection, and its wall time;
- the suite's family-wise false alarms: the share of A/A suite trials (the same rounds for every case) in
  which any case is called a regression.

Not a pytest file: pytest collects only test_*.py.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from typing import Any

import numpy as np

from chipbench import workloads
from chipbench.core.cases import Case
from chipbench.execution.options import RunOptions
from chipbench.execution.pools import WorkerPool
from chipbench.execution.protocol import run_message
from chipbench.execution.session import Session
from chipbench.gate import compare, sequential

TWINS: dict[str, dict[str, Any]] = {
    # smoke case -> the overrides that make its step ~10% slower. Tiny shapes are overhead-bound, so the
    # work added is larger than 10% where the time grows slower than the work; the factors come from two
    # earlier pools (slowdown per work added), and the measured slowdown of every twin is reported.
    "calib.copy[size_mib=16]": {"size_mib": 18},  # an integer field: the nearest step
    "calib.matmul[dtype=fp32,k=256,m=256,n=256]": {"k": 285},
    "dlrm.embedding[batch_size=256,mode=fwd,preset=tiny]": {"batch_size": 438},
    "dlrm.embedding[batch_size=256,mode=fwd_bwd,preset=tiny]": {"batch_size": 341},
    "dlrm.inference[batch_size=256,preset=tiny]": {"batch_size": 329},
    "dlrm.interaction[batch_size=256,preset=tiny]": {"batch_size": 310},
    "dlrm.interaction[batch_size=256,interaction=dcn,preset=tiny]": {"batch_size": 301},
    "dlrm.mlp[batch_size=256,preset=tiny]": {"batch_size": 321},
    "dlrm.train_step[batch_size=256,preset=tiny]": {"batch_size": 358},
    "llama.adamw[flavor=tiny]": {"n_layers": 3},  # vocab x 2.5 changed nothing: per-tensor cost rules
    "llama.attention[batch_size=4,flavor=tiny,seq_len=64]": {"seq_len": 67},
    "llama.cross_entropy[batch_size=4,flavor=tiny,seq_len=64]": {"seq_len": 74},
    "llama.forward[flavor=tiny]": {"seq_len": 69},
    "llama.gemm[batch_size=4,flavor=tiny,op=gate_up,seq_len=64]": {"seq_len": 78},
    "llama.rmsnorm[batch_size=4,flavor=tiny,seq_len=64]": {"seq_len": 75},
    "llama.rope[batch_size=4,flavor=tiny,seq_len=64]": {"seq_len": 81},
    "llama.swiglu[batch_size=4,flavor=tiny,seq_len=64]": {"seq_len": 76},
    "llama.train_step[flavor=tiny]": {"seq_len": 69},
}
KS = range(1, 11)
TARGET_FA, TARGET_DET = 0.01, 0.95
MAX_SAMPLES = 300


def cases() -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    out = {}
    for c in workloads.suite_cases("smoke"):
        if c.name in TWINS:
            out[c.name] = (c.bench, dict(c.overrides), {**c.overrides, **TWINS[c.name]})
    return out


def collect(runs: int, budget: float, restart_every: int) -> dict[str, Any]:
    pool = WorkerPool("cpu")
    session = Session(pool, RunOptions(time_budget_s=budget, timeout_s=120))
    session.start()
    todo = {}
    for name, (bench, base, twin) in cases().items():  # dtype=auto and sizes made concrete, as `run` does
        rb, rt = session.resolve([Case(bench, base), Case(bench, twin)])
        todo[name] = (bench, rb.overrides, rt.overrides)
    data: dict[str, list[list[float]]] = {f"{k}|{s}": [] for k in todo for s in ("base", "twin")}
    disturbed: dict[str, int] = dict.fromkeys(data, 0)
    wall: dict[str, float] = dict.fromkeys(data, 0.0)
    t0 = time.perf_counter()
    try:
        for r in range(runs):
            if r and r % restart_every == 0:
                pool.close()
                pool.start()
            order = list(todo.items()) if r % 2 == 0 else list(reversed(todo.items()))
            for name, (bench, base, twin) in order:
                sides = [("base", base), ("twin", twin)] if r % 2 == 0 else [("twin", twin), ("base", base)]
                for side, ov in sides:
                    t = time.perf_counter()
                    reply = pool.run(run_message(bench, ov, RunOptions(time_budget_s=budget)), timeout_s=120)
                    key = f"{name}|{side}"
                    wall[key] += time.perf_counter() - t
                    if reply["type"] != "result":
                        raise SystemExit(f"{key}: {reply.get('message')}")
                    m = reply["measurement"]
                    if (m.get("extra", {}).get("contention") or {}).get("disturbed"):
                        disturbed[key] += 1
                        data[key].append([])  # keeps the rounds aligned across cases
                    else:
                        data[key].append([float(v) for v in m["samples"]])
            print(f"round {r + 1}/{runs} ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        pool.close()
    return {"data": data, "disturbed": disturbed, "wall": wall, "runs": runs, "budget": budget,
            "total_s": time.perf_counter() - t0}  # fmt: skip


def verdict(a: list[np.ndarray], b: list[np.ndarray], n_boot: int, confidence: float = 0.95) -> str:
    a, b = [x for x in a if x.size], [x for x in b if x.size]
    if not a or not b:
        return "disturbed"
    return compare.compare_samples(a if len(a) > 1 else a[0], b if len(b) > 1 else b[0], n_boot=n_boot,
                                   confidence=confidence).verdict  # fmt: skip


def sequential_verdict(base: list[np.ndarray], other: list[np.ndarray], n_boot: int) -> tuple[str, int]:
    conf = sequential.look_confidence(10, 3)
    v = "inconclusive"
    for k in range(3, min(10, len(base), len(other)) + 1):
        v = verdict(base[:k], other[:k], n_boot, conf)
        if v in sequential.DECIDED:
            return v, k
    return v, k


def analyse(pool: dict[str, Any], trials: int, n_boot: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    names = list(cases())
    # Runs of thousands of samples are thinned to a seeded random 300 for speed (the gate's intervals get a
    # little wider, never narrower: conservative for detection, neutral for false alarms).
    thin = np.random.default_rng(seed)

    def cut(r: list[float]) -> np.ndarray:
        x = np.asarray(r, dtype=float)
        return x if x.size <= MAX_SAMPLES else thin.choice(x, MAX_SAMPLES, replace=False)

    data = {k: [cut(r) for r in v] for k, v in pool["data"].items()}
    runs = pool["runs"]
    lines = [
        f"Pool: {runs} rounds of every smoke case and its twin, {pool['budget']} s time budget a run, "
        f"{pool['total_s'] / 60:.1f} min in all; threshold 5%; goal <= {TARGET_FA:.0%} false alarms and "
        f">= {TARGET_DET:.0%} detection.",
        "",
        "| case | noise (run CV) | twin slowdown | disturbed runs | 1 vs 1: FA / det | ab k=3: FA / det | "
        "ab k=5: FA / det | ab k=10: FA / det | early stop: FA / det (mean rounds) | smallest k | its minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    # A/A windows: 2k consecutive rounds split alternately; detection: k consecutive rounds of both.
    starts_aa = {k: [rng.randrange(0, runs - 2 * k + 1) for _ in range(trials)] for k in KS if 2 * k <= runs}
    starts_ab = {k: [rng.randrange(0, runs - k + 1) for _ in range(trials)] for k in KS if k <= runs}
    per_case_fa: dict[str, list[bool]] = {}
    summary = []
    for name in names:
        base, twin = data[f"{name}|base"], data[f"{name}|twin"]
        good_b, good_t = [r for r in base if r.size], [r for r in twin if r.size]
        meds = np.array([np.median(r) for r in good_b])
        cv = float(np.std(meds, ddof=1) / np.mean(meds)) if len(meds) > 1 else math.nan
        slow = float(np.median(np.concatenate(good_t)) / np.median(np.concatenate(good_b)))
        dist = pool["disturbed"][f"{name}|base"] + pool["disturbed"][f"{name}|twin"]
        fa, det = {}, {}
        for k in KS:
            if k in starts_aa:
                got = []
                for i, s in enumerate(starts_aa[k]):
                    w = base[s : s + 2 * k]
                    v = verdict(w[0::2], w[1::2], n_boot)
                    got.append(v == "regression")
                    per_case_fa.setdefault(f"{k}|{i}", []).append(v == "regression")
                fa[k] = float(np.mean(got))
            if k in starts_ab:
                det[k] = float(np.mean([verdict(base[s : s + k], twin[s : s + k], n_boot) == "regression"
                                        for s in starts_ab[k]]))  # fmt: skip
        seq_fa = [sequential_verdict(base[s::2][:10], base[s + 1 :: 2][:10], n_boot)[0] == "regression"
                  for s in range(min(trials // 4, runs - 6))]  # fmt: skip
        seq_det = [sequential_verdict(base[s:], twin[s:], n_boot) for s in range(min(trials // 4, runs - 3))]
        ok = [k for k in KS if k in fa and k in det and fa[k] <= TARGET_FA and det[k] >= TARGET_DET]
        per_round_s = (pool["wall"][f"{name}|base"] + pool["wall"][f"{name}|twin"]) / runs
        best = ok[0] if ok else None
        summary.append((name, best, per_round_s))

        def cell(k: int, fa: dict[int, float] = fa, det: dict[int, float] = det) -> str:
            if k not in det:
                return "-"
            return f"{fa[k]:.1%} / {det[k]:.0%}" if k in fa else f"- / {det[k]:.0%}"

        print(f"analysed {name}", file=sys.stderr, flush=True)
        lines.append(
            f"| `{name}` | {cv:.1%} | {slow:.3f} | {dist} | {cell(1)} | {cell(3)} | {cell(5)} | {cell(10)} | "
            f"{np.mean(seq_fa):.1%} / {np.mean([v == 'regression' for v, _ in seq_det]):.0%} "
            f"({np.mean([r for _, r in seq_det]):.1f}) | {best if best else 'none <= 10'} | "
            f"{'-' if best is None else f'{best * per_round_s / 60:.1f}'} |"
        )
    lines += ["", "Suite (every case at once, the same rounds):", ""]
    lines += ["| k rounds per side | family-wise false alarms (any case) | worst case's detection | minutes |",
              "|---|---|---|---|"]  # fmt: skip
    suite_round_s = sum(s for _, _, s in summary)
    for k in KS:
        if k not in starts_aa:
            continue
        fwe = np.mean([any(per_case_fa[f"{k}|{i}"]) for i in range(len(starts_aa[k]))])
        worst = min(
            float(np.mean([verdict(data[f"{n}|base"][s : s + k], data[f"{n}|twin"][s : s + k], n_boot)
                           == "regression" for s in starts_ab[k][: trials // 3]]))
            for n in names
        )  # fmt: skip
        lines.append(
            f"| {k} | {fwe:.1%} ({len(starts_aa[k])} trials) | {worst:.0%} | {k * suite_round_s / 60:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--time-budget", type=float, default=0.3)
    ap.add_argument("--restart-every", type=int, default=5)
    ap.add_argument("--trials", type=int, default=120)
    ap.add_argument("--n-boot", type=int, default=300)
    ap.add_argument("--save", metavar="JSON")
    ap.add_argument("--load", metavar="JSON")
    ap.add_argument("--out", metavar="MD")
    args = ap.parse_args()
    if args.load:
        with open(args.load) as fh:
            pool = json.load(fh)
    else:
        pool = collect(args.runs, args.time_budget, args.restart_every)
        if args.save:
            with open(args.save, "w") as fh:
                json.dump(pool, fh)
    text = analyse(pool, args.trials, args.n_boot)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
