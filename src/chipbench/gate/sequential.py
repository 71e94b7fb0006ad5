"""When `chipbench ab` may stop early: after each interleaved round (from `min_rounds` on) the gate looks at
every case, and stops once every case is decided. Looking more than once would raise the false-alarm rate
(each look is another chance for noise to clear the threshold), so each look's intervals and tests are at
level `alpha / looks` (Bonferroni over the most looks the run can take): the chance that *any* look calls a
regression that is not there (true ratio within the threshold) stays at or below the chance one look at
level `alpha` has. `tests/unit/test_sequential.py` checks this on simulated rounds.
"""

from __future__ import annotations

from chipbench.gate.compare import Comparison

ALPHA = 0.05
"""Two-sided error of one look at a fixed number of rounds (the gate's 95% intervals)."""
DECIDED = frozenset(
    {"regression", "improvement", "unchanged", "not comparable", "only in base", "only in new"}
)
"""Verdicts more rounds cannot change; `inconclusive` and `disturbed` may."""


def looks(max_rounds: int, min_rounds: int) -> int:
    """How many times a run of at most `max_rounds` rounds looks, the first after `min_rounds`."""
    return max(1, max_rounds - min_rounds + 1)


def look_confidence(max_rounds: int, min_rounds: int, alpha: float = ALPHA) -> float:
    """The confidence of each look's intervals: 1 - alpha / looks."""
    return 1.0 - alpha / looks(max_rounds, min_rounds)


def decided(comps: list[Comparison]) -> bool:
    """Every case has a verdict more rounds cannot change."""
    return bool(comps) and all(c.verdict in DECIDED for c in comps)
