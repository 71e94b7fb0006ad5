"""The DLRM performance goal of issue #3: `backend=auto` against the DLRM reference implementation's approach
(plain nn.EmbeddingBag, sparse SGD, the allocator's pages) on model1 at batch 256, SGD, uniform ids, fp32.

This machine's step times drift 20-50% within minutes (shared host), so back-to-back single runs of two
backends can differ by more than the effect measured. This script interleaves: each round measures every
variant once, in a fresh seeded random order (same engine, same budget), and the goal is judged on the
per-round ratio reference / auto, reported as its median with a 95% confidence interval (exact binomial,
as for every chipbench median). `--summarize` pools the rounds of several runs of the same commit.

Run: .venv/bin/python benchmarks/dlrm_goal.py [--rounds 15] [--time-budget 2] [--json results/...json]
Figures go in docs/measured.md; this is a benchmark, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.core.stats import median_ci
from interleave import engine_ms, process_setup, ratio, run_record, run_rounds

BASE = {
    "preset": "model1",
    "batch_size": 256,
    "embedding_optimizer": "sgd",
    "dense_optimizer": "sgd",
    "index_dist": "uniform",
    "dtype": "fp32",
}
VARIANTS = {
    "reference": {"backend": "torch", "hugepages": "off"},
    "torch": {"backend": "torch"},
    "torchrec": {"backend": "torchrec"},
    "auto": {"backend": "auto"},
    "auto-4k": {"backend": "auto", "hugepages": "off"},
}
"""reference = the reference implementation's approach; torch, torchrec and auto run chipbench's defaults;
auto-4k is auto on the allocator's pages, to show how much of the gain is placement and how much kernels."""


def prepare_variants(names: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(each variant's prepared train step, its backend facts), set up once on the CPU; prints a line each."""
    b = workloads.get("dlrm.train_step")
    ctx = RunContext(device="cpu", torch_device="cpu", seed=0)
    prepared, info = {}, {}
    for name in names:
        p = b.setup(b.config_cls(**BASE, **VARIANTS[name]), ctx)
        prepared[name] = p
        info[name] = {k: p.info.get(k) for k in ("backend", "backend_reason", "hugepages")}
        print(f"{name}: backend={info[name]['backend']} hugepages={info[name]['hugepages']}", flush=True)
    return prepared, info


def _identity(run: dict[str, object]) -> tuple[str, ...]:
    """What must match for two runs' rounds to pool: workload, machine, variants and code."""
    commit = run.get("commit") or {}
    sha = commit.get("commit") if isinstance(commit, dict) else None
    return (
        json.dumps(run.get("config"), sort_keys=True),
        str(run.get("machine")),
        json.dumps({k: VARIANTS.get(k) for k in run.get("variants", {})}, sort_keys=True),  # type: ignore[union-attr]
        str(sha),
    )


def summarize(files: list[str]) -> None:
    """Pool the per-round ratios of several runs of the same code on the same machine (rounds are
    independent pairs, so they pool); refuses runs that differ in workload, machine, variants or commit."""
    ratios: list[float] = []
    ident = None
    for path in files:
        with open(path) as f:
            run = json.load(f)
        if ident is None:
            ident = _identity(run)
        elif _identity(run) != ident:
            raise SystemExit(f"{path}: a different workload, machine, variant set or commit: not pooled")
        r = run["reference_over_auto"]["rounds"]
        lo, hi = run["reference_over_auto"]["ci95"]
        dirty = " (uncommitted changes)" if (run.get("commit") or {}).get("dirty") else ""
        print(
            f"{path}: {len(r)} rounds, median {statistics.median(r):.2f}x, 95% CI [{lo:.2f}, {hi:.2f}]{dirty}"
        )
        ratios += r
    lo, hi = median_ci(ratios)
    med = statistics.median(ratios)
    print(
        f"pooled reference / auto: median {med:.2f}x, 95% CI [{lo:.2f}, {hi:.2f}] over {len(ratios)} rounds"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--time-budget", type=float, default=2.0, help="seconds per variant and round")
    ap.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS)
    )
    ap.add_argument("--json", help="write the raw round medians and the verdict here")
    ap.add_argument("--seed", type=int, default=0, help="seed of the per-round variant order")
    ap.add_argument("--summarize", nargs="+", metavar="FILE", help="pool the rounds of earlier --json files")
    args = ap.parse_args()
    process_setup()
    if args.summarize:
        summarize(args.summarize)
        return
    names = args.variants.split(",")
    if not {"reference", "auto"} <= set(names) or not set(names) <= set(VARIANTS):
        ap.error(f"--variants must include reference and auto, from {', '.join(VARIANTS)}")

    prepared, info = prepare_variants(names)

    t0 = time.time()
    rounds, orders = run_rounds(
        names,
        lambda n: statistics.median(engine_ms(prepared[n].step, args.time_budget)),
        args.rounds,
        args.seed,
    )

    ratios = {f"reference_over_{n}": ratio(rounds["reference"], rounds[n]) for n in names if n != "reference"}
    others = {k: v for k, v in ratios.items() if k != "reference_over_auto"}
    verdict = {
        "benchmark": "dlrm.train_step",
        "config": BASE,
        "variants": {n: {**VARIANTS[n], **info[n]} for n in names},
        **run_record(args.rounds, args.time_budget, t0),
        "order_seed": args.seed,
        "orders": orders,
        "step_ms_median_of_rounds": {n: statistics.median(v) for n, v in rounds.items()},
        "step_ms_rounds": rounds,
        **ratios,
        "goal": 1.5,
    }
    print()
    for n in names:
        print(f"{n:10s} step p50 of round medians {verdict['step_ms_median_of_rounds'][n]:7.1f} ms")
    for k, v in others.items():
        print(
            f"{k.replace('_over_', ' / ')}: median {v['median']:.2f}x, 95% CI [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]"
        )
    med = verdict["reference_over_auto"]["median"]
    lo, hi = verdict["reference_over_auto"]["ci95"]
    print(
        f"reference / auto: median {med:.2f}x, 95% CI [{lo:.2f}, {hi:.2f}] over {args.rounds} rounds (goal 1.5x)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(verdict, f, indent=1)
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
