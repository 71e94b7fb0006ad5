"""Runs cases in worker subprocesses with a time-out each; a crash, OOM or time-out becomes an error entry."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from chipbench.bench import Case
from chipbench.errors import UsageError


@dataclass
class CaseOutcome:
    """What came back for one case: a result or an error."""

    case: Case
    ok: bool
    payload: dict[str, Any]
    wall_s: float


@dataclass
class RunOutcome:
    env: dict[str, Any]
    kind: str
    free_memory_bytes: int
    outcomes: list[CaseOutcome] = field(default_factory=list)
    interrupted: bool = False


class WorkerPool:
    """One live worker at a time (benchmarks must not share a device with each other), replaced on failure."""

    def __init__(
        self, device: str, start_timeout_s: float = 120.0, python: str | None = None, cwd: Path | None = None
    ) -> None:
        self.device = device
        self.start_timeout_s = start_timeout_s
        self.python = python or sys.executable  # another environment's interpreter for A/B runs
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None

    def start(self) -> dict[str, Any]:
        self.launch()
        return self.wait_hello()

    def launch(self) -> None:
        """Start the worker process without waiting for it (it imports torch meanwhile)."""
        # A fresh interpreter (`python -m chipbench.worker FD`) rather than multiprocessing's spawn, which
        # re-imports the caller's __main__ (pytest, user scripts) and breaks when it is not guarded.
        parent, child = mp.Pipe()
        fd = child.fileno()
        self.proc = subprocess.Popen(
            [self.python, "-m", "chipbench.worker", str(fd), self.device],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=self.cwd,
        )
        child.close()
        self.conn = parent

    def wait_hello(self) -> dict[str, Any]:
        """Wait for the launched worker's hello: its environment, device kind and free memory."""
        parent = self.conn
        assert parent is not None and self.proc is not None
        if not parent.poll(self.start_timeout_s):
            self.kill()
            raise RuntimeError(f"worker did not start within {self.start_timeout_s:.0f} s")
        try:
            hello: dict[str, Any] = parent.recv()
        except EOFError:
            code = self.proc.poll() if self.proc else None
            self.kill()
            raise RuntimeError(f"worker died while starting (exit code {code})") from None
        if hello["type"] == "fatal":
            self.kill()
            if hello.get("error_type") == "UsageError":
                raise UsageError(hello["message"])
            raise RuntimeError(f"worker failed to start: {hello['message']}")
        return hello

    def run(self, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one case; return the worker's reply or an error entry for a time-out or crash."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.conn is not None and self.proc is not None
        self.conn.send(msg)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return {
                    "type": "error",
                    "error_type": "timeout",
                    "message": f"no result within {timeout_s:.0f} s",
                }
            if self.conn.poll(min(left, 0.5)):
                try:
                    reply: dict[str, Any] = self.conn.recv()
                except EOFError:
                    break
                if reply.get("restart"):
                    self.kill()
                return reply
            if self.proc.poll() is not None:
                break
        code = self.proc.wait()
        self.kill()
        hint = " (killed by SIGKILL: likely out of memory)" if code in (-9, 137) else ""
        return {"type": "error", "error_type": "crash", "message": f"worker exited with code {code}{hint}"}

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.conn is not None:
            try:
                self.conn.send({"type": "stop"})
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def run_cases(
    pool: WorkerPool,
    hello: dict[str, Any],
    cases: list[Case],
    *,
    options: dict[str, Any],
    timeout_s: float,
    seed: int = 0,
    on_start: Callable[[Case], None] | None = None,
    on_done: Callable[[CaseOutcome], None] | None = None,
) -> RunOutcome:
    """Run `cases` in order; Ctrl-C stops early and returns what finished (`interrupted`=True)."""
    out = RunOutcome(env=hello["env"], kind=hello["kind"], free_memory_bytes=hello["free_memory_bytes"])
    try:
        for case in cases:
            if on_start:
                on_start(case)
            t0 = time.perf_counter()
            msg = {
                "type": "run",
                "bench": case.bench,
                "overrides": case.overrides,
                "options": options,
                "seed": seed,
            }
            reply = pool.run(msg, timeout_s)
            oc = CaseOutcome(case, reply["type"] == "result", reply, time.perf_counter() - t0)
            out.outcomes.append(oc)
            if on_done:
                on_done(oc)
    except KeyboardInterrupt:
        out.interrupted = True
        pool.kill()  # the worker may be mid-step: do not wait for it
    finally:
        pool.close()
    return out
