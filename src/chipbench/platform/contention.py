"""Was the machine disturbed while a benchmark was timed? Evidence read from the kernel, not guessed from the
load average (which lags by a minute and counts chipbench's own previous run).

- Run-queue wait of this process's threads (`/proc/self/task/*/schedstat`, Linux): time a thread was ready
  to run but another task held its CPU. A quiet machine keeps it near 0; a competing process on the same
  cores shows up at once, however tight the samples look (threads that stall each other give consistent,
  wrong step times).
- Steal time (`/proc/stat`): time the hypervisor gave this VM's CPUs to another guest.
- CPU time over wall time of the process: reported, not judged (memory-bound and accelerator steps idle
  their threads honestly).

Where the kernel does not tell (macOS, Windows), the evidence is absent and says why: never guessed.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RUN_DELAY_LIMIT = 0.10
"""A case is disturbed when its threads spent more than this share of their runnable time waiting for a CPU
(measured on the 2-core AMX VM: a quiet default suite 0.2-2.8%; beside one competing busy process 27-35%)."""
STEAL_LIMIT = 0.10
"""...or when the hypervisor stole more than this share of the machine's CPU time."""
PROC = Path("/proc")


@dataclass(frozen=True)
class Contention:
    """What the kernel says about the timed window of one benchmark."""

    wall_s: float
    threads: int
    """Compute threads the step uses (torch's intra-op threads on a CPU, one host thread otherwise)."""
    run_delay_share: float | None
    """Of the time this process's threads were runnable, the share spent waiting in the run queue for a CPU
    another task held (None: not readable here)."""
    steal_share: float | None
    """Stolen CPU time over all CPU time of the machine in the window (None: not readable here)."""
    cpu_share: float | None
    """CPU time of the process over wall time x `threads`."""
    disturbed: str | None
    """Why the window was disturbed, with the evidence; None when it was not (or nothing could tell)."""
    unavailable: str | None = None
    """Why run-queue evidence is missing, where it is."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_delays() -> dict[str, tuple[int, int]] | None:
    """Thread id -> (ns on a CPU, ns waiting in the run queue), for every thread of this process (None:
    not Linux)."""
    try:
        tids = os.listdir(PROC / "self" / "task")
    except OSError:
        return None
    out = {}
    for tid in tids:
        try:
            fields = (PROC / "self" / "task" / tid / "schedstat").read_text().split()
            out[tid] = (int(fields[0]), int(fields[1]))
        except (OSError, IndexError, ValueError):
            continue  # the thread ended between the listing and the read
    return out or None


def _cpu_times() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat (None: not readable)."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu" or len(first) < 9:
        return None
    vals = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return vals[7], sum(vals)


class Monitor:
    """Reads the evidence at the start and the end of a timed window."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._delays = _run_delays()
        self._cpu = _cpu_times()
        self._proc = time.process_time()
        self._t0 = time.perf_counter()

    def stop(self) -> Contention:
        wall = time.perf_counter() - self._t0
        proc = time.process_time() - self._proc
        delays, cpu = _run_delays(), _cpu_times()
        run_share = steal = None
        why_missing = None
        if self._delays is not None and delays is not None and wall > 0:
            # The share of the time our threads wanted a CPU that they spent waiting for one: wait over
            # (wait + run), summed over threads, so helper threads (a CUDA or gloo thread, a pipe reader)
            # weigh by how much they ran. A thread that started inside the window counts from 0; one that
            # ended is lost.
            ran = waited = 0
            for tid, (run, wait) in delays.items():
                run0, wait0 = self._delays.get(tid, (0, 0))
                ran, waited = ran + run - run0, waited + wait - wait0
            run_share = max(0.0, waited / (waited + ran)) if waited + ran > 0 else 0.0
        else:
            why_missing = "no per-thread scheduler statistics (/proc/self/task/*/schedstat): not Linux"
        if self._cpu is not None and cpu is not None and cpu[1] > self._cpu[1]:
            steal = (cpu[0] - self._cpu[0]) / (cpu[1] - self._cpu[1])
        reasons = []
        if run_share is not None and run_share > RUN_DELAY_LIMIT:
            reasons.append(
                f"its threads waited {run_share:.0%} of their runnable time for a CPU another process held "
                f"(limit {RUN_DELAY_LIMIT:.0%})"
            )
        if steal is not None and steal > STEAL_LIMIT:
            reasons.append(f"the hypervisor stole {steal:.0%} of the CPU time (limit {STEAL_LIMIT:.0%})")
        return Contention(
            wall_s=wall,
            threads=self.threads,
            run_delay_share=run_share,
            steal_share=steal,
            cpu_share=proc / (wall * self.threads) if wall > 0 else None,
            disturbed="; ".join(reasons) or None,
            unavailable=why_missing,
        )
