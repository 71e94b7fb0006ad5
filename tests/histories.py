"""Generated histories of results files with planted steps, for tests that read one history two ways (a
folder and a store) and must find the same change points on both.

One machine, `commits` commits an hour apart, `runs` results files per commit; every case's run medians
carry log-normal run-to-run noise. What is planted, each at a commit of its own:
- `code`: the case's version hash moves and its time moves by `factor` (a change point of code);
- `stack`: torch moves for every case, and the planted case's time with it (a change point of the stack);
- `host`: the case's time moves at unchanged code and stack (host drift, never a regression).
Besides, every case's version hash (but a host-stepped one's) moves with no step every `quiet_every` commits (boundaries where nothing
must be found), some runs are marked disturbed (the newest run of one case among them when
`newest_disturbed`), and every run carries a host probe whose matmul drifts slowly.
File names are shuffled against commit order, so order must come from the commit times.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.helpers import MACHINE, write_results

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Step:
    """A planted move of one case's time."""

    case: str
    at: int
    """The commit index it starts at."""
    factor: float
    kind: str = "code"
    """code, stack or host (module docstring)."""


@dataclass(frozen=True)
class Plan:
    commits: int = 24
    runs: int = 2
    cases: tuple[str, ...] = ("g.a", "g.b", "g.c", "g.d")
    steps: tuple[Step, ...] = (
        Step("g.a", 12, 1.25),
        Step("g.b", 8, 0.8),
        Step("g.c", 16, 1.3, "stack"),
        Step("g.d", 5, 1.3, "host"),
    )
    quiet_every: int = 7
    disturbed: float = 0.04
    """Share of case runs marked disturbed."""
    newest_disturbed: bool = False
    seed: int = 0
    machine: dict[str, object] = field(default_factory=lambda: json.loads(json.dumps(MACHINE)))


def commit(i: int) -> str:
    return f"{i:04d}" + "c0ffee" * 6


def write_history(root: Path, plan: Plan = Plan()) -> list[Path]:
    """The plan's results files under root (module docstring); returns them in commit order."""
    rng = np.random.default_rng(plan.seed)
    total = plan.commits * plan.runs
    names = rng.permutation(total)
    stack_at = {s.at for s in plan.steps if s.kind == "stack"}
    newer = json.loads(json.dumps(plan.machine))
    newer["packages"]["torch"] = "2.14.0+cpu"  # type: ignore[index]
    files = []
    for i in range(plan.commits):
        hashes, levels = {}, {}
        for k, case in enumerate(plan.cases):
            moved = [s for s in plan.steps if s.case == case and i >= s.at]
            code = sum(1 for s in moved if s.kind == "code")
            host = any(s.case == case and s.kind == "host" for s in plan.steps)  # its code stays put
            hashes[case] = f"h{k}-{0 if host else i // plan.quiet_every}-{code}"
            levels[case] = (1 + k) * 1e-3 * float(np.prod([s.factor for s in moved]))
        machine = newer if stack_at and i >= min(stack_at) else plan.machine
        for r in range(plan.runs):
            j = i * plan.runs + r
            noise = np.exp(rng.normal(0, 0.02))  # the whole run's
            benches = {c: levels[c] * noise * np.exp(rng.normal(0, 0.01, 12)) for c in plan.cases}
            when = (T0 + dt.timedelta(hours=i)).isoformat()
            path = write_results(root / f"run{names[j]:04d}.json", benches, commit=commit(i), commit_time=when,
                                 machine=machine, hashes=hashes)  # fmt: skip
            _decorate(path, plan, rng, j == total - 1, T0 + dt.timedelta(hours=i, minutes=r))
            files.append(path)
    return files


def _decorate(path: Path, plan: Plan, rng: np.random.Generator, newest: bool, saved: dt.datetime) -> None:
    """Disturbed runs, the host probe, and each run's own save time."""
    doc = json.loads(path.read_text())
    doc["datetime"] = saved.isoformat()
    for b in doc["benchmarks"]:
        last = newest and plan.newest_disturbed and b["name"] == plan.cases[-1]
        if last or rng.random() < plan.disturbed:
            b["extra_info"]["disturbed"] = "load 3.1 on 2 cores (another process)"
    matmul = 100.0 * (1 + 0.001 * float(rng.normal()))
    doc["chipbench"]["host_probe"] = {
        "matmul": "m", "copy": "c", "version_hashes": ["p1", "p2"],
        "start": {"matmul_gflops": matmul, "copy_gbps": 20.0},
    }  # fmt: skip
    path.write_text(json.dumps(doc))
