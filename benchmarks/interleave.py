"""What the interleaved goal scripts share (`dlrm_goal.py`, `dlrm_peer.py`, `llama_peer.py`,
`engine_overhead.py`): the rounds themselves (every variant once per round, in a fresh seeded order), a
variant's figure through the engine, the run's record, and the per-round ratio of two variants with its
median and 95% CI. Rounds are independent pairs measured back to back, so the host's drift between rounds
cancels in each ratio."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from chipbench.core.stats import median_ci
from chipbench.measure.engine import MeasureOptions, measure
from chipbench.platform import allocator, hardware
from chipbench.platform.device import Device


def ratio(a: list[float], b: list[float]) -> dict[str, Any]:
    """Per-round ratios a / b: their median, its 95% CI (exact binomial), and the rounds (for pooling)."""
    r = [x / y for x, y in zip(a, b, strict=True)]
    lo, hi = median_ci(r)
    return {"median": statistics.median(r), "ci95": [lo, hi], "rounds": r}


def engine_ms(step: Callable[[], Any], budget_s: float) -> list[float]:
    """The step's samples (ms) through the engine on the CPU, as `chipbench run` times it."""
    m = measure(step, Device("cpu"), MeasureOptions(time_budget_s=budget_s, warmup_max_s=1.0))
    return [s * 1e3 for s in m.samples]


def run_rounds(
    names: list[str], one: Callable[[str], float], rounds: int, seed: int
) -> tuple[dict[str, list[float]], list[list[str]]]:
    """(each variant's figure per round, each round's order): `one(name)` measures a variant once; every
    round runs each variant once in a fresh order (no variant always first), and prints its line."""
    rng = random.Random(seed)
    out: dict[str, list[float]] = {n: [] for n in names}
    orders = []
    for r in range(rounds):
        order = rng.sample(names, len(names))
        orders.append(order)
        for n in order:
            out[n].append(one(n))
        print(f"round {r + 1}/{rounds}: " + "  ".join(f"{n} {out[n][-1]:.1f} ms" for n in names), flush=True)
    return out, orders


def process_setup() -> None:
    """What `chipbench run`'s workers set for their process before the first case: the host allocator's
    thresholds (platform.allocator). Call first in a script's main."""
    allocator.tune()


def run_record(rounds: int, budget_s: float, t0: float) -> dict[str, Any]:
    """Where and when the rounds ran: the machine, the commit, their number and budget, the wall time."""
    return {
        "machine": hardware.machine_id(hardware.environment("cpu")),
        "host_allocator": allocator.state(),
        "commit": hardware.git_commit(),
        "rounds": rounds,
        "time_budget_s": budget_s,
        "wall_s": round(time.time() - t0, 1),
    }
