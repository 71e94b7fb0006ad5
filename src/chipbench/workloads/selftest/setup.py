"""The self-test's set-up and step (what the version hash covers)."""

from __future__ import annotations

import os
import time

from chipbench.core.contract import Prepared, RunContext, Work
from chipbench.workloads.selftest.config import SelftestConfig


def _fail(kind: str, where: str) -> None:
    if kind == "crash":
        os._exit(3)
    if kind == "raise":
        raise RuntimeError(f"selftest: deliberate failure in {where}")


def setup(cfg: SelftestConfig, ctx: RunContext) -> Prepared:
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
