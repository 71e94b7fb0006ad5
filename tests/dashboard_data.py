"""A machine's history as the dashboard takes it, made by hand: runs, points and change points with known
answers, and strings a hostile results file could hold."""

from __future__ import annotations

import math
import random

from chipbench.report.dashboard import ChangePoint, MachineHistory, PointRow, Run, machine_history

HOSTILE_MACHINE = 'cpu-<img src=x onerror="alert(1)">-2c'
STEP_CASE = 3


def case(k: int) -> str:
    return f"dlrm.mlp[n={k}]</script><b>bold</b>"


def history(
    runs: int = 300, cases: int = 60, machine: str = HOSTILE_MACHINE, seed: int = 0
) -> MachineHistory:
    """`runs` commits x `cases` cases; case STEP_CASE steps up 20% half way (an open change point there),
    every case's code changes a third of the way in, one run in 37 is disturbed."""
    rng = random.Random(seed)
    rs = [
        Run(i, f"{i:040x}", f"2026-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T12:00:00+00:00")
        for i in range(runs)
    ]
    rows = []
    for k in range(cases):
        for i in range(runs):
            m = (
                1e-3
                * (1 + k)
                * (1.2 if i >= runs // 2 and k == STEP_CASE else 1.0)
                * math.exp(rng.gauss(0, 0.03))
            )
            rows.append(PointRow(i, case(k), m, m * 0.98, m * 1.02, "h1" if i < runs // 3 else "h2",
                                 "load <i>3</i>" if i % 37 == 0 else None))  # fmt: skip
    cps = [
        ChangePoint(7, machine, case(STEP_CASE), 1.2, (1.15, 1.25), rs[runs // 2].commit, rs[runs // 2 - 1].commit,
                    rs[runs // 2].when),
        ChangePoint(8, machine, case(0), 0.9, None, rs[10].commit, rs[9].commit, rs[10].when, status="invalid",
                    note="the <u>host</u> moved"),
    ]  # fmt: skip
    return machine_history(machine, rs, rows, cps)
