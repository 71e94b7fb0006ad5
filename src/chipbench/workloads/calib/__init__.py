"""Ceiling microbenchmarks: dense matmul and a large device copy.

`chipbench calibrate` runs these through the same engine as every benchmark and stores the results as
this machine's measured ceilings, so every other benchmark can report its share of them.
"""

from __future__ import annotations

from chipbench.core.registry import Benchmark, register
from chipbench.workloads.calib.config import CopyConfig, MatmulConfig, copy_describe, matmul_describe
from chipbench.workloads.calib.setup import copy_setup, matmul_setup

MATMUL = register(
    Benchmark(
        name="calib.matmul",
        doc="Dense matrix product on random data (the FLOP/s ceiling).",
        config_cls=MatmulConfig,
        setup=matmul_setup,
        timed=("chipbench.workloads.common",),  # the rotation over its operand pairs
        describe=matmul_describe,
        suites={
            "smoke": [{"m": 256, "n": 256, "k": 256, "dtype": "fp32"}],
            "default": [{"dtype": "auto"}],
            "full": [{"dtype": d, "m": s, "n": s, "k": s} for d in ("fp32", "bf16") for s in (1024, 4096)],
        },
    )
)

COPY = register(
    Benchmark(
        name="calib.copy",
        doc="Large device-to-device copy (the memory bandwidth ceiling, read + write).",
        config_cls=CopyConfig,
        setup=copy_setup,
        describe=copy_describe,
        suites={
            "smoke": [{"size_mib": 16}],
            "default": [{"size_mib": 512}],
            "full": [{"size_mib": 64}, {"size_mib": 1024}],
        },
    )
)
