"""The harness self-test's config: a busy-wait step of known length, or a deliberate failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chipbench.core.config import check
from chipbench.core.contract import Description


@dataclass(frozen=True)
class SelftestConfig:
    """A CPU busy-wait step, or a failure of the chosen kind."""

    step_us: float = 1000.0
    """Length of one busy-wait step in microseconds."""
    fail: Literal["none", "crash", "raise", "hang"] = "none"
    """none: run normally; crash: the worker process dies; raise: setup raises; hang: the step never returns."""
    fail_rank: int = -1
    """In a multi-process run, only this rank fails (-1: every rank); the others run normally."""
    fail_after_steps: int = 0
    """Fail at this step instead of in setup (crash and raise), to fail mid-run."""

    def __post_init__(self) -> None:
        check(self.step_us > 0, "step_us must be > 0")


def describe(cfg: SelftestConfig) -> Description:
    return Description(memory_bytes_estimate=0, facts={"step_s": cfg.step_us / 1e6})
