"""Harness self-test benchmarks: a busy loop of known length and deliberate failures.

They exercise the engine and the worker isolation (crash, exception, hang) in tests and let a user
check a new installation; they are in no suite.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

from chipbench.core.config import check
from chipbench.core.contract import Description, Prepared, RunContext, Work
from chipbench.core.registry import Benchmark, register


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


def _describe(cfg: SelftestConfig) -> Description:
    return Description(memory_bytes_estimate=0, facts={"step_s": cfg.step_us / 1e6})


def _fail(kind: str, where: str) -> None:
    if kind == "crash":
        os._exit(3)
    if kind == "raise":
        raise RuntimeError(f"selftest: deliberate failure in {where}")


def _setup(cfg: SelftestConfig, ctx: RunContext) -> Prepared:
    fail = cfg.fail if cfg.fail_rank in (-1, ctx.rank) else "none"
    if cfg.fail_after_steps == 0:
        _fail(fail, "setup")
    duration = cfg.step_us / 1e6
    hang = fail == "hang"
    steps = [0]

    def step() -> None:
        steps[0] += 1
        if cfg.fail_after_steps and steps[0] >= cfg.fail_after_steps:
            _fail(fail, f"step {steps[0]}")
        end = time.perf_counter() + duration
        while hang or time.perf_counter() < end:
            pass

    return Prepared(step=step, work=Work(samples=1), info={"step_us": cfg.step_us})


register(
    Benchmark(
        name="selftest.busy",
        doc="Harness self-test: a busy-wait step of known length, or a deliberate crash/raise/hang.",
        config_cls=SelftestConfig,
        setup=_setup,
        describe=_describe,
        suites={},
    )
)
