"""The host probe: a short `calib.matmul` and `calib.copy` on the run's device, at the run's start and its
end, through the same worker and engine as every case, recorded in the results file's header
(results.header.HostProbe). Two runs' probes tell how much the host moved between them (gate.drift).

Each measurement has a timed-round budget of `RunOptions.probe_s` and as long again, at most, to warm up;
the sizes are small (a 512^3 fp32 matmul and a 32 MiB copy on a CPU), so the four measurements and their
set-ups take about a second on a 2-core CPU at the default budget.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chipbench.core.cases import Case
from chipbench.execution.options import RunOptions
from chipbench.execution.protocol import Reply, run_message
from chipbench.results.header import HostProbe, ProbePass

PROBE_S = 0.1
"""Each probe measurement's timed-round budget by default (four measurements per run)."""

_CPU = (
    Case("calib.matmul", {"m": 512, "n": 512, "k": 512, "dtype": "fp32"}),
    Case("calib.copy", {"size_mib": 32}),
)
"""On a CPU: fp32 (bf16 is emulated on many CPUs), a copy larger than most last-level caches' share."""
_ACCELERATOR = (
    Case("calib.matmul", {"m": 4096, "n": 4096, "k": 4096, "dtype": "auto"}),
    Case("calib.copy", {"size_mib": 256}),
)
"""On an accelerator: large enough that launches do not dominate (a few hundred microseconds a step)."""


def cases_for(kind: str) -> tuple[Case, Case]:
    """The probe's matmul and copy on a device of `kind` (dtype=auto still to be resolved)."""
    return _CPU if kind == "cpu" else _ACCELERATOR


@dataclass(frozen=True)
class Probed:
    """One pass's replies, read."""

    passed: ProbePass | None
    hashes: tuple[str, ...]


def rate(reply: Mapping[str, Any], work_key: str) -> float | None:
    """GFLOP/s or GB/s (`work_key` flops or bytes) of a reply's median step; None for an error."""
    if reply.get("type") != "result":
        return None
    samples = (reply.get("measurement") or {}).get("samples") or []
    work = (reply.get("work") or {}).get(work_key)
    if not samples or not work:
        return None
    median = float(np.median(samples))
    return float(work) / median / 1e9 if median > 0 else None


def _disturbed(reply: Mapping[str, Any]) -> bool:
    extra = (reply.get("measurement") or {}).get("extra") or {}
    return bool((extra.get("contention") or {}).get("disturbed"))


def read_pass(matmul: Mapping[str, Any], copy: Mapping[str, Any]) -> Probed:
    """The pass the two replies make (None when both failed) and the version hashes they carried."""
    mm, cp = rate(matmul, "flops"), rate(copy, "bytes")
    hashes = tuple(str(r.get("version_hash")) for r in (matmul, copy) if r.get("version_hash"))
    if mm is None and cp is None:
        return Probed(None, hashes)
    busy = any(_disturbed(r) for r in (matmul, copy) if r.get("type") == "result")
    return Probed(ProbePass(matmul_gflops=mm, copy_gbps=cp, disturbed=busy or None), hashes)


class Prober:
    """Runs the probe's passes on a started session's pool and gathers them into the header's record."""

    def __init__(self, cases: tuple[Case, Case], budget_s: float, seed: int = 0) -> None:
        self.cases = cases
        self.budget_s = budget_s
        self.seed = seed
        self.passes: dict[str, Probed] = {}
        self.wall_s = 0.0

    def run_pass(self, when: str, send: Any, limit_s: float) -> None:
        """One pass (`when`: start or end); `send(message, limit_s)` is the pool's run."""
        t0 = time.perf_counter()
        replies: list[Reply] = [send(self.message(c), limit_s) for c in self.cases]
        self.passes[when] = read_pass(replies[0], replies[1])
        self.wall_s += time.perf_counter() - t0

    def message(self, case: Case) -> Any:
        msg = run_message(case.bench, case.overrides, RunOptions(time_budget_s=self.budget_s, after=False))
        msg["seed"] = self.seed
        # Warm-up as long as the timed rounds at most (the engine's default is 2 s at least).
        msg["options"] = {**msg["options"], "warmup_max_s": self.budget_s}
        return msg

    def record(self) -> HostProbe | None:
        """The header's record; None when no pass ran."""
        if not self.passes:
            return None
        hashes = next((p.hashes for p in self.passes.values() if len(p.hashes) == 2), ())
        start, end = self.passes.get("start"), self.passes.get("end")
        probe = HostProbe(
            matmul=self.cases[0].name, copy=self.cases[1].name, version_hashes=hashes,
            budget_s=self.budget_s, wall_s=round(self.wall_s, 3),
        )  # fmt: skip
        return replace(probe, start=start.passed if start else None, end=end.passed if end else None)
