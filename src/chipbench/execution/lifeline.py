"""Children die with their parent: a benchmark worker, torchrun and its ranks never outlive the
`chipbench` that started them (a `kill -9` of it, a closed terminal).

On Linux the kernel delivers a signal when the parent dies (prctl PR_SET_PDEATHSIG, which survives an
exec, so it also covers torchrun, started through `python -m chipbench.execution.lifeline`); everywhere
a daemon thread also watches the parent's pid and ends the process when it changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

PARENT_ENV = "CHIPBENCH_PARENT_PID"
"""The pid of the chipbench process a worker belongs to."""
PR_SET_PDEATHSIG = 1


def _pdeathsig(sig: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # the watch thread still works
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _watch(parent: int, interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        if os.getppid() != parent:
            os._exit(1)  # reparented: the parent is gone


def die_with_parent(
    sig: int = signal.SIGKILL, expected_parent: int | None = None, interval_s: float = 1.0
) -> None:
    """End this process (with `sig` on Linux, at once; by the watch within `interval_s` elsewhere) when
    the process that started it dies. Exits now if it already has: the parent is not `expected_parent`,
    or this process was handed to init."""
    parent = os.getppid()
    _pdeathsig(sig)
    if parent == 1 or (expected_parent is not None and parent != expected_parent):
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, interval_s), daemon=True, name="lifeline").start()


def expected_parent() -> int | None:
    """The chipbench pid this worker was started by (PARENT_ENV), when it says."""
    v = os.environ.get(PARENT_ENV, "")
    return int(v) if v.isdigit() else None


def main(argv: list[str]) -> None:
    """`python -m chipbench.execution.lifeline -- PROGRAM ARGS...`: arm the parent-death signal (SIGTERM,
    which torchrun answers by stopping its ranks) and become PROGRAM."""
    args = argv[1:] if argv and argv[0] == "--" else argv
    _pdeathsig(signal.SIGTERM)
    if os.getppid() == 1:
        sys.exit(1)
    os.execvp(args[0], args)


if __name__ == "__main__":
    main(sys.argv[1:])
