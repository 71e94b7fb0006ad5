"""Synthetic fleet histories for `benchmarks/store_scale.py`: M machines x C commits x K cases, one results
file per machine and commit, made by the harness's own document builder (`results.document.build_document`
from worker replies) and writer (`results.files.write`), so every file passes the strict reader.

Each case's run medians wander by 3% (lognormal) around its own level; case 0 of every machine steps up 15%
half way (a change of its code: a new version hash there), case 1's code changes every 100 commits with no
change in time, and one run in 40 is disturbed (the kernel's contention evidence, as a busy host writes it).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from chipbench.core.cases import Case
from chipbench.platform import hardware
from chipbench.results import files
from chipbench.results.document import build_document
from chipbench.results.outcomes import CaseOutcome, RunOutcome

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
STEP_CASE, HASH_CASE = 0, 1


@dataclass(frozen=True)
class Fleet:
    """The size of a synthetic fleet."""

    machines: int
    commits: int
    cases: int
    samples: int = 100
    """Samples per case per run (the committed smoke runs hold 60-1,100)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.machines, self.commits, self.cases, self.samples) < 1:
            raise ValueError(f"every size must be at least 1: {self}")


def commit(i: int) -> str:
    return f"{i:08x}" + "c0ffee" * 5 + "00"


def commit_time(i: int) -> str:
    return (START + dt.timedelta(hours=3 * i)).isoformat()


def machine_env(base: dict[str, Any], m: int) -> dict[str, Any]:
    env = copy.deepcopy(base)
    env["cpu"]["model"] = f"Synthetic Fleet CPU {m:03d}"
    env["device"] = {**env["device"], "kind": "cpu", "name": f"Synthetic Fleet CPU {m:03d}", "count": 1}
    return env


def case_name(k: int) -> str:
    return f"selftest.busy[n={k}]"


def _payload(fleet: Fleet, m: int, i: int, k: int, rng: np.random.Generator) -> dict[str, Any]:
    level = 1e-3 * (1 + k % 7) * (1 + 0.05 * m)
    if k == STEP_CASE and i >= fleet.commits // 2:
        level *= 1.15
    run_median = level * math.exp(rng.normal(0.0, 0.03))
    x = run_median * np.exp(rng.normal(0.0, 0.02, fleet.samples))
    vh = f"h{k}"
    if k == STEP_CASE:
        vh += "b" if i >= fleet.commits // 2 else "a"
    if k == HASH_CASE:
        vh += f"v{i // 100}"
    disturbed = "threads waited 35% of their runnable time for a CPU" if (i * 7 + k) % 40 == 0 else None
    extra: dict[str, Any] = {"total_s": float(x.sum())}
    if disturbed:
        extra["contention"] = {"wall_s": 1.0, "threads": 1, "run_delay_share": 0.35, "disturbed": disturbed}
    return {
        "type": "result",
        "measurement": {
            "samples": [float(v) for v in x], "iterations": 1, "first_step_s": float(x[0]) * 3,
            "warmup_steps": 5, "warmup_s": float(x[:5].sum()), "stop_reason": "time_budget", "rel_ci95": 0.01,
            "timer": "perf_counter", "measure_s": float(x.sum()), "peak_mem_bytes": 2**28,
            "peak_mem_source": "VmHWM", "extra": extra,
        },
        "work": {"flops": 2e6 * (1 + k % 7), "bytes": 1e6, "samples": 32, "tokens": None, "model_flops": False,
                 "flop_convention": "2 m n k", "bytes_convention": "read + write", "extra_bytes": {}},
        "info": {}, "version_hash": vh, "config": {"n": k},
    }  # fmt: skip


def write_machine(fleet: Fleet, base_env: dict[str, Any], m: int, root: Path, first: int = 0) -> list[Path]:
    """The files of machine m: one per commit, from commit `first` on."""
    rng = np.random.default_rng([fleet.seed, m])
    env = machine_env(base_env, m)
    folder = root / hardware.machine_id(env)
    out = []
    for i in range(first, fleet.commits):
        outcomes = [
            CaseOutcome(Case("selftest.busy", {"n": k}), True, _payload(fleet, m, i, k, rng), 0.1)
            for k in range(fleet.cases)
        ]
        run = RunOutcome(env=env, kind="cpu", free_memory_bytes=2**34, outcomes=outcomes)
        info = {"id": commit(i), "time": commit_time(i), "branch": "main", "dirty": False}
        doc = build_document(run, ceilings=None, suite="smoke", argv=["chipbench", "run"], commit_info=info)
        doc = replace(doc, datetime=(START + dt.timedelta(hours=3 * i, minutes=30)).isoformat())
        out.append(files.write(doc, folder / f"{i:05d}_{commit(i)[:8]}.json"))
    return out


def generate(fleet: Fleet, root: Path, workers: int = 2) -> list[Path]:
    """Write the fleet's files under root/<machine id>/ (a few processes: JSON writing is CPU-bound)."""
    base = dict(hardware.environment("cpu"))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(write_machine, fleet, base, m, root) for m in range(fleet.machines)]
        return [p for j in jobs for p in j.result()]


def machine_ids(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())
