"""Error rates of `chipbench ab`'s early stop on simulated interleaved rounds (no torch; ~3 minutes).

    .venv/bin/python benchmarks/sequential_rates.py [--seeds 300]

The same model as tests/unit/test_sequential.py: each round, drift shared by both sides (1%), each side's run
noise (1%) and sample noise (2%); 15 samples a run; threshold 5%; at most 10 rounds, first look after 3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.unit.test_sequential import MAX_ROUNDS, MIN_ROUNDS, _run

from chipbench.gate import sequential


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=300)
    n = ap.parse_args().seeds
    conf = sequential.look_confidence(MAX_ROUNDS, MIN_ROUNDS)
    rules = [
        ("true ratio 1.05 (at the threshold), early stop, Bonferroni", 1.05, conf, True),
        ("true ratio 1.05, early stop, 95% at every look (no correction)", 1.05, 0.95, True),
        ("true ratio 1.05, all 10 rounds, one look at 95%", 1.05, 0.95, False),
        ("A/A (ratio 1.00), early stop, Bonferroni", 1.0, conf, True),
        ("+10% (ratio 1.10), early stop, Bonferroni", 1.10, conf, True),
    ]
    print("| rule | regression | unchanged | inconclusive | mean rounds |")
    print("|---|---|---|---|---|")
    for label, ratio, c, early in rules:
        got = [_run(s, ratio, c, early) for s in range(n)]
        v = [x for x, _ in got]
        print(f"| {label} | {v.count('regression') / n:.1%} | {v.count('unchanged') / n:.1%} | "
              f"{v.count('inconclusive') / n:.1%} | {np.mean([r for _, r in got]):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
