"""Workload families. Importing this package registers every benchmark of every family; read the
registry through it (`registry()`, `get()`), never through core alone.

Each family is a package: its config and accounting (describe, plan, fit), the set-up and step code in
modules of their own (the version hash covers those), and an `__init__` that registers its benchmarks.
May import core, platform and models; never measure, execution, results, gate or cli.
"""

from __future__ import annotations

from chipbench.core.cases import build_cases, resolve_case, suite_cases
from chipbench.core.registry import Benchmark, get
from chipbench.core.registry import registered as registry

# Each family registers its own benchmarks on import.
from chipbench.workloads import (  # noqa: F401
    calib,
    comm,
    dlrm,
    hstu,
    llama,
    selftest,
)

__all__ = ["Benchmark", "build_cases", "get", "registry", "resolve_case", "suite_cases"]
