"""The DLRM performance goal of issue #15 against the real reference program: chipbench's
`dlrm.train_step` (`backend=auto`, and optionally the in-harness `reference` variant of `dlrm_goal.py`)
against facebookresearch/dlrm `dlrm_s_pytorch.py`, same model, interleaved.

The model of the issue ("model1"): 8 tables x 1M rows x dim 64, 100 uniform ids per bag, bottom MLP
13-512-512-64, dot interaction, top MLP 100-1024-1024-1024-1, batch 256, SGD (lr 0.01 in both), fp32.

The reference program is not part of chipbench and is never fetched: point `--dlrm-dir` at your own checkout
of github.com/facebookresearch/dlrm and `--dlrm-python` at an interpreter that runs it (its requirements:
numpy, scikit-learn, onnx, tensorboard, tqdm, and the same torch). Each round runs, in a fresh seeded order:

- the reference program as a subprocess for `--batches` batches on its own random data
  (`--data-generation=random`); its figure is its own printed ms/it (its timed region: forward, loss,
  backward, optimizer step; batch generation outside), averaged over the print windows after the first
  (warm-up), equal windows, so the mean of window means is the mean per iteration;
- each chipbench variant through the engine (`--time-budget` seconds): the mean step of the round, as the
  program's figure is a mean (the median is recorded beside it).

chipbench's processes run on fixed glibc malloc thresholds (platform.allocator). `--program-malloc both`
also runs the program on the same thresholds (glibc's GLIBC_TUNABLES), as a second peer in every round:
the ratio against it is the part of the lead that is the code's, not the allocator's.

The goal is judged on the per-round ratio reference program / chipbench: its median and 95% CI.
The program restarts every round (its tables are rebuilt each time: ~20 s); chipbench's variants are
built once. Never run by `make test`.

Run: .venv/bin/python benchmarks/dlrm_peer.py --dlrm-dir ~/src/dlrm --dlrm-python ~/dlrm-venv/bin/python
     [--rounds 7] [--variants auto,reference] [--program-malloc both] [--json results/dlrm-peer/<machine>/model1.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chipbench.platform import allocator
from dlrm_goal import BASE, VARIANTS, prepare_variants
from interleave import engine_ms, process_setup, ratio, run_record, run_rounds

PROGRAM_ARGS = [
    "--arch-sparse-feature-size=64",
    "--arch-embedding-size=" + "-".join(["1000000"] * 8),
    "--arch-mlp-bot=13-512-512-64",
    "--arch-mlp-top=1024-1024-1024-1",  # the program prepends the interaction's width (100)
    "--arch-interaction-op=dot",
    "--data-generation=random",
    "--num-indices-per-lookup=100",
    "--num-indices-per-lookup-fixed=True",
    "--mini-batch-size=256",
    "--optimizer=sgd",
    "--learning-rate=0.01",
    "--print-time",
]
WINDOW = re.compile(r"Finished training it (\d+)/(\d+) of epoch \d+, ([0-9.]+) ms/it")


PROGRAM_MALLOC = {
    "program": {},
    "program_tuned_malloc": {
        "GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={allocator.MMAP_THRESHOLD_BYTES}"
        f":glibc.malloc.trim_threshold={allocator.TRIM_THRESHOLD_BYTES}"
    },
}
"""The program as it is, and the program on the malloc thresholds chipbench's processes set
(platform.allocator), through glibc's own environment variable: what is left is the code's part."""


def program_round(
    python: str, folder: Path, batches: int, window: int, env: dict[str, str]
) -> tuple[float, list[float]]:
    """(mean ms/it after the first window, every window's ms/it) of one run of the reference program."""
    cmd = [
        python,
        "-u",
        "dlrm_s_pytorch.py",
        *PROGRAM_ARGS,
        f"--num-batches={batches}",
        f"--print-freq={window}",
    ]
    run_env = dict(os.environ)
    for k, v in env.items():  # appended to the caller's GLIBC_TUNABLES, so the two runs differ in ours only
        run_env[k] = f"{run_env[k]}:{v}" if run_env.get(k) else v
    p = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=1800, env=run_env)
    windows = [float(m.group(3)) for m in WINDOW.finditer(p.stdout)]
    if p.returncode != 0 or len(windows) < 2:
        tail = (p.stdout + p.stderr)[-2000:]
        raise SystemExit(f"dlrm_peer: the reference program failed (exit {p.returncode}):\n{tail}")
    return statistics.fmean(windows[1:]), windows


def program_identity(folder: Path) -> dict[str, Any]:
    """Which reference program ran: its git commit where the folder is a checkout, and the main file's hash."""
    main = folder / "dlrm_s_pytorch.py"
    ident: dict[str, Any] = {"sha256_dlrm_s_pytorch": hashlib.sha256(main.read_bytes()).hexdigest()}
    git = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    ident["git_commit"] = git.stdout.strip() if git.returncode == 0 else None
    return ident


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dlrm-dir", type=Path, required=True, help="a checkout of facebookresearch/dlrm")
    ap.add_argument("--dlrm-python", default=sys.executable, help="the interpreter that runs the program")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batches", type=int, default=75, help="batches per program run (first window: warm-up)")
    ap.add_argument("--window", type=int, default=25, help="the program's --print-freq")
    ap.add_argument("--time-budget", type=float, default=3.0, help="seconds per chipbench variant and round")
    ap.add_argument(
        "--variants", default="auto", help="chipbench variants (dlrm_goal.py's): e.g. auto,reference"
    )
    ap.add_argument(
        "--program-malloc",
        choices=("default", "both"),
        default="default",
        help="both: also run the program on chipbench's malloc thresholds (GLIBC_TUNABLES), as a second peer",
    )
    ap.add_argument("--json", help="write the round figures and the verdict here")
    ap.add_argument("--seed", type=int, default=0, help="seed of the per-round order")
    args = ap.parse_args()
    process_setup()
    if not (args.dlrm_dir / "dlrm_s_pytorch.py").is_file():
        ap.error(f"--dlrm-dir {args.dlrm_dir}: no dlrm_s_pytorch.py there (a facebookresearch/dlrm checkout)")
    if args.batches < 2 * args.window or args.batches % args.window:
        ap.error("--batches must be a multiple of --window, at least two windows (the first is warm-up)")
    ours = args.variants.split(",")
    if not set(ours) <= set(VARIANTS):
        ap.error(f"--variants: from {', '.join(VARIANTS)}")

    prepared, info = prepare_variants(ours)

    programs = ["program", "program_tuned_malloc"] if args.program_malloc == "both" else ["program"]
    names = [*programs, *ours]
    medians: dict[str, list[float]] = {n: [] for n in ours}
    windows: dict[str, list[list[float]]] = {p: [] for p in programs}

    def one(n: str) -> float:
        if n in programs:
            ms, w = program_round(
                args.dlrm_python, args.dlrm_dir, args.batches, args.window, PROGRAM_MALLOC[n]
            )
            windows[n].append(w)
            return ms
        samples = engine_ms(prepared[n].step, args.time_budget)
        medians[n].append(statistics.median(samples))
        return statistics.fmean(samples)  # a mean, as the program's

    t0 = time.time()
    rounds, _ = run_rounds(names, one, args.rounds, args.seed)

    verdict: dict[str, Any] = {
        "benchmark": "dlrm.train_step",
        "config": BASE,
        "reference_program": {
            **program_identity(args.dlrm_dir),
            "args": [*PROGRAM_ARGS, f"--num-batches={args.batches}", f"--print-freq={args.window}"],
            "timed": "its own ms/it: forward, loss, backward, optimizer and lr step; batch generation outside; "
            "mean of the print windows after the first",
            "window_ms_per_run": windows["program"],
            "environments": {p: PROGRAM_MALLOC[p] for p in programs},
        },
        "variants": {n: {**VARIANTS[n], **info[n]} for n in ours},
        **run_record(args.rounds, args.time_budget, t0),
        "step_ms_rounds": rounds,
        "step_ms_rounds_are": "means: the program's own ms/it over its windows after the first; chipbench's "
        "mean step of the round (its medians in step_ms_round_medians)",
        "step_ms_round_medians": medians,
        "step_ms_median_of_rounds": {n: statistics.median(v) for n, v in rounds.items()},
        **{f"{p}_over_{n}": ratio(rounds[p], rounds[n]) for p in programs for n in ours},
        **({"window_ms_per_run_tuned_malloc": windows["program_tuned_malloc"]} if len(programs) > 1 else {}),
        "goal": 1.5,
    }
    print()
    for n in names:
        print(f"{n:10s} step, median of round figures {verdict['step_ms_median_of_rounds'][n]:7.1f} ms")
    for p in programs:
        for n in ours:
            v = verdict[f"{p}_over_{n}"]
            lo, hi = v["ci95"]
            print(
                f"{p} / {n}: median {v['median']:.2f}x, 95% CI [{lo:.2f}, {hi:.2f}] over {args.rounds} rounds "
                "(goal 1.5x)"
            )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(verdict, f, indent=1)
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
