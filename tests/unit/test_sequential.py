"""`chipbench ab`'s early stop keeps its stated false-alarm rate: simulated interleaved rounds (no torch),
many seeds, the true slowdown set exactly at the threshold (the hardest case for the gate), looked at after
every round as `run_ab` does."""

from __future__ import annotations

import numpy as np
import pytest

from chipbench.gate import sequential
from chipbench.gate.compare import Comparison, compare_samples

THRESHOLD = 0.05
MAX_ROUNDS, MIN_ROUNDS = 10, 3


def _round(rng: np.random.Generator, ratio: float, n: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """One interleaved round: drift shared by both sides, noise of each side's run, noise within it."""
    drift = rng.normal(0.0, 0.01)
    a = 1e-3 * np.exp(drift + rng.normal(0.0, 0.01) + rng.normal(0.0, 0.02, n))
    b = 1e-3 * ratio * np.exp(drift + rng.normal(0.0, 0.01) + rng.normal(0.0, 0.02, n))
    return a, b


def _run(seed: int, ratio: float, confidence: float, early: bool) -> tuple[str, int]:
    """(final verdict, rounds run) of one simulated `ab` of one case."""
    rng = np.random.default_rng(seed)
    ra: list[np.ndarray] = []
    rb: list[np.ndarray] = []
    c: Comparison | None = None
    for r in range(1, MAX_ROUNDS + 1):
        a, b = _round(rng, ratio)
        ra.append(a)
        rb.append(b)
        if (early and r >= MIN_ROUNDS) or r == MAX_ROUNDS:
            c = compare_samples(ra, rb, threshold=THRESHOLD, n_boot=200, seed=seed, confidence=confidence)
            if sequential.decided([c]):
                return c.verdict, r
    assert c is not None
    return c.verdict, MAX_ROUNDS


def test_looks_and_their_level() -> None:
    assert sequential.looks(10, 3) == 8 and sequential.looks(2, 2) == 1
    assert sequential.look_confidence(10, 3) == pytest.approx(1 - 0.05 / 8)
    assert not sequential.decided([]) and not sequential.decided([Comparison("x", None, "inconclusive")])


@pytest.mark.slow
def test_early_stop_keeps_the_false_alarm_rate() -> None:
    seeds = range(200)
    conf = sequential.look_confidence(MAX_ROUNDS, MIN_ROUNDS)
    # True ratio exactly at 1 + threshold: any "regression" is a false alarm. One look at 95% calls it at
    # most 2.5% of the time (one side of the interval); Bonferroni over the looks keeps the early stop there.
    # (Without the correction the same looks raise it: benchmarks/sequential_rates.py.)
    false = sum(_run(s, 1.0 + THRESHOLD, conf, early=True)[0] == "regression" for s in seeds)
    assert false / len(seeds) <= 0.025 + 2 * np.sqrt(0.025 * 0.975 / len(seeds))  # 2.5% + 2 standard errors


@pytest.mark.slow
def test_early_stop_detects_and_saves_rounds() -> None:
    conf = sequential.look_confidence(MAX_ROUNDS, MIN_ROUNDS)
    slow = [_run(s, 1.10, conf, early=True) for s in range(60)]
    assert sum(v == "regression" for v, _ in slow) >= 57  # a 10% slowdown is found (95%)
    same = [_run(s, 1.0, conf, early=True) for s in range(60)]
    assert not any(v == "regression" for v, _ in same)
    assert np.mean([r for _, r in same]) < MAX_ROUNDS  # the common case stops before the last round
