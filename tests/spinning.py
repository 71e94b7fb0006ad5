"""Waiting for a benchmark process to spin in its hanging step (selftest `fail=hang`), to stop the run
mid-benchmark rather than while the process starts.

The hanging step is a pure-Python busy loop: it burns CPU and touches no new memory. Starting up
(importing torch, setting up the case) burns CPU too, but faults in thousands of pages every half
second. So a process that ran for two sampling windows in a row without a single new page fault is in
the step: known within about a second of its entering it, however loaded the machine, where a
threshold on its total CPU time has to wait out a margin over the slowest start. Linux (/proc).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil

WINDOW_S = 0.5
"""One sampling window."""
QUIET_WINDOWS = 2
"""Consecutive windows of running without a page fault that make a process count as spinning."""
MIN_CPU_S = 0.05
"""CPU seconds a process must take in each window to count as running: a spinning one takes 0.5 alone,
0.1 at a 1-minute load of 10 on 2 cores; an idle process (torchrun's agent polling its ranks, the CLI
waiting on its pipe) takes a few milliseconds, and faults no page in either."""


def _sample(pid: int) -> tuple[int, float]:
    """(minor page faults, CPU seconds) of a process, from /proc/PID/stat (fields after the name)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / _CLK_TCK


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def wait_spinning(
    candidates: Callable[[], list[psutil.Process]], timeout_s: float, count: int = 1
) -> list[psutil.Process]:
    """The first `count` of `candidates()` (asked again each window: processes come and go) seen
    spinning; AssertionError after `timeout_s`."""
    last: dict[int, tuple[int, float]] = {}
    quiet: dict[int, int] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            procs = {p.pid: p for p in candidates()}
        except psutil.Error:  # the parent is gone: nothing of it can spin any more
            procs = {}
        for pid in procs:
            try:
                now = _sample(pid)
            except (OSError, ValueError, IndexError):
                continue
            if pid in last:
                faults, cpu = now[0] - last[pid][0], now[1] - last[pid][1]
                quiet[pid] = quiet.get(pid, 0) + 1 if faults == 0 and cpu >= MIN_CPU_S else 0
            last[pid] = now
        spinning = [procs[pid] for pid in procs if quiet.get(pid, 0) >= QUIET_WINDOWS]
        if len(spinning) >= count:
            return spinning[:count]
        time.sleep(WINDOW_S)
    raise AssertionError(f"{count} process(es) never reached the hanging step within {timeout_s:.0f} s")
