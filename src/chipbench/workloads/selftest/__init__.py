"""Harness self-test benchmarks: a busy loop of known length and deliberate failures.

They exercise the engine and the worker isolation (crash, exception, hang) in tests and let a user
check a new installation; they are in no suite.
"""

from __future__ import annotations

from chipbench.core.registry import Benchmark, register
from chipbench.workloads.selftest.config import SelftestConfig, describe
from chipbench.workloads.selftest.setup import setup

register(
    Benchmark(
        name="selftest.busy",
        doc="Harness self-test: a busy-wait step of known length, or a deliberate crash/raise/hang.",
        config_cls=SelftestConfig,
        setup=setup,
        describe=describe,
        suites={},
    )
)
