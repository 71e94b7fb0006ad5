"""Worker pools: a benchmark worker subprocess (or a torchrun job of ranks) that runs one case at a time
with a time-out; a crash, OOM or time-out becomes an error reply, and the next case gets a fresh worker."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.execution.lifeline import PARENT_ENV
from chipbench.execution.process_groups import is_symptom, is_timeout
from chipbench.execution.protocol import Hello, Message, Reply, loads


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
        self.hello: Hello | None = None
        """The running worker's hello once read: a second session on this worker reads it again."""

    def start(self) -> Hello:
        self.launch()
        return self.wait_hello()

    def launch(self) -> None:
        """Start the worker process without waiting for it (it imports torch meanwhile)."""
        # A fresh interpreter (`python -m chipbench.worker FD`) rather than multiprocessing's spawn, which
        # re-imports the caller's __main__ (pytest, user scripts) and breaks when it is not guarded. The
        # module name is the stable entry every chipbench version has: `ab` starts another checkout's.
        parent, child = mp.Pipe()
        fd = child.fileno()
        self.proc = subprocess.Popen(
            [self.python, "-m", "chipbench.worker", str(fd), self.device],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            env={**self._env(), "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())},
            cwd=self.cwd,
        )
        child.close()
        self.conn, self.hello = parent, None

    def _env(self) -> dict[str, str]:
        """This process's environment; for another environment's interpreter (`ab`), without PYTHONPATH,
        which would have it import this chipbench instead of its own."""
        if self.python == sys.executable:
            return dict(os.environ)
        return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def wait_hello(self) -> Hello:
        """Wait for the launched worker's hello: its environment, device kind and free memory."""
        if self.hello is not None:
            return self.hello
        parent = self.conn
        assert parent is not None and self.proc is not None
        if not parent.poll(self.start_timeout_s):
            self.kill()
            raise RuntimeError(f"worker did not start within {self.start_timeout_s:.0f} s")
        try:
            data = parent.recv_bytes()
        except (EOFError, OSError):  # gone, or gone mid-message (a truncated message)
            code = self.proc.poll() if self.proc else None
            self.kill()
            raise RuntimeError(f"worker died while starting (exit code {code})") from None
        hello: Hello = self._message(data, "hello")
        if not isinstance(hello, dict) or not isinstance(hello.get("type"), str):
            self.kill()
            raise self._malformed("hello", "not a message")
        if hello["type"] == "fatal":
            self.kill()
            if hello.get("error_type") == "UsageError":
                raise UsageError(hello["message"])
            raise RuntimeError(f"worker failed to start: {hello['message']}")
        self.hello = hello
        return hello

    def run(self, msg: Message, timeout_s: float) -> Reply:
        """Send one case; return the worker's reply or an error entry for a time-out or crash."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.conn is not None and self.proc is not None
        deadline = time.monotonic() + timeout_s
        try:
            self.conn.send(msg)
        except OSError:  # the worker died since the last case: report it as the crash it is
            deadline = time.monotonic() + 10
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
                    data = self.conn.recv_bytes()
                except (EOFError, OSError):  # gone, or gone mid-message: the crash it is
                    break
                try:
                    reply: Reply = self._message(data, "message")
                    if not isinstance(reply, dict) or not isinstance(reply.get("type"), str):
                        self.kill()
                        raise self._malformed("message", "not a reply")
                except RuntimeError as exc:  # our own worker: recorded as the crash it is; the rest runs
                    return {"type": "error", "error_type": "crash", "message": str(exc)}
                if reply.get("restart"):
                    self.kill()
                return reply
            if self.proc.poll() is not None:
                break
        code = self.proc.wait()
        self.kill()
        hint = " (killed by SIGKILL: likely out of memory)" if code in (-9, 137) else ""
        return {"type": "error", "error_type": "crash", "message": f"worker exited with code {code}{hint}"}

    def _message(self, data: bytes, what: str) -> Any:
        """A message from its bytes; one this version cannot read, or one naming code, ends the pool."""
        try:
            return loads(data)
        except Exception as exc:  # whatever a malformed pickle raises
            self.kill()
            raise self._malformed(what, f"{type(exc).__name__}: {str(exc)[:120]}") from None

    def _malformed(self, what: str, why: str) -> Exception:
        """Another environment's worker is untrusted input (a one-line usage error, exit 2, nothing of it
        written); our own sending garbage is a bug (RuntimeError)."""
        text = f"worker {self.python} sent a malformed {what} ({why})"
        if self.python != sys.executable:
            return UsageError(f"{text}; check that environment's chipbench, or rebuild it")
        return RuntimeError(text)

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn, self.hello = None, None, None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.conn is not None:
            try:
                self.conn.send({"type": "stop"})
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


@dataclass(frozen=True)
class Launch:
    """How to start a multi-process job with torchrun."""

    nproc_per_node: int
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    """HOST:PORT of node 0 (multi-node); None on a single box (torchrun --standalone)."""
    collective_timeout_s: float = 300.0

    def torchrun_args(self) -> list[str]:
        args = ["-m", "torch.distributed.run", f"--nproc-per-node={self.nproc_per_node}", "--max-restarts=0"]
        if self.nnodes == 1 and self.rdzv_endpoint is None:
            return [*args, "--standalone"]
        if self.rdzv_endpoint is None:
            raise UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (node 0's address)")
        host, _, port = self.rdzv_endpoint.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(
                f"--rdzv-endpoint must be HOST:PORT (a port 1-65535), got {self.rdzv_endpoint!r}"
            )
        # Static rendezvous: --node-rank is honoured, so global rank 0 (which writes the results) lives
        # on node 0, where the results file is written.
        return [
            *args, f"--nnodes={self.nnodes}", f"--node-rank={self.node_rank}",
            f"--master-addr={host}", f"--master-port={port}",
        ]  # fmt: skip

    def command(self, python: str, device: str, address: str) -> list[str]:
        """torchrun running chipbench's rank program; `address` is rank 0's socket to the parent."""
        # Through the lifeline: torchrun gets SIGTERM (and stops its ranks) when chipbench dies.
        return [
            python, "-m", "chipbench.execution.lifeline", "--", python, *self.torchrun_args(),
            "-m", "chipbench.execution.dist_worker", device, address, str(self.collective_timeout_s),
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        """OMP_NUM_THREADS per rank, unless set: this node's cores divided among its ranks."""
        threads = max(1, (os.cpu_count() or 1) // self.nproc_per_node)
        return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}


def kill_tree(proc: subprocess.Popen[Any]) -> None:
    """Kill a torchrun job: torchrun, and every rank, each of which torchrun starts in a session of
    its own (so killing torchrun's process group, or torchrun alone, would orphan them)."""
    import psutil

    if proc.poll() is None:
        try:
            ranks = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            ranks = []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for r in ranks:
            with contextlib.suppress(psutil.Error):
                r.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


DIST_DIR_PREFIX = "chipbench-dist-"
"""Temporary folders of torchrun jobs: chipbench-dist-<pid of the chipbench that owns it>-XXXX."""


def kill_ranks(folder: Path) -> None:
    """Kill the ranks that registered in `folder` (rank<N>.pid), each through its session (torchrun
    starts every rank in a session of its own), if it is still one of this job's ranks."""
    import psutil

    for f in folder.glob("rank*.pid"):
        try:
            pid = int(f.read_text())
            if psutil.Process(pid).environ().get("CHIPBENCH_DIST_DIR") != str(folder):
                continue  # the pid was reused by another process
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError, psutil.Error):
            continue


def remove_stale_dirs() -> None:
    """Remove the temporary folders of jobs whose chipbench died without cleaning up (kill -9), after
    killing any rank still registered there."""
    import psutil

    for d in Path(tempfile.gettempdir()).glob(f"{DIST_DIR_PREFIX}*"):
        owner = d.name[len(DIST_DIR_PREFIX) :].split("-", 1)[0]
        if not owner.isdigit() or psutil.pid_exists(int(owner)):
            continue
        kill_ranks(d)
        shutil.rmtree(d, ignore_errors=True)


def _agent_died(code: int | None, fallback: str | None) -> str:
    """The message for a job whose torchrun agent ended without any rank reporting an error."""
    if code is None and fallback:
        m = re.search(r"code (-?\d+)", fallback)
        code = int(m.group(1)) if m else None
    how = f"exit code {code}"
    if code is not None and code < 0:
        how = f"killed by signal {-code} (from outside, or out of memory)"
    return f"the torchrun agent ended ({how}) and no rank reported an error; its ranks were stopped"


# torchrun's failure summary: "rank      : 1 (local_rank: 1)" then "exitcode  : 3 (pid: 4466)".
_FAILURE = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank.*?\n\s*exitcode\s*:\s*(-?\d+)")


class DistWorkerPool(WorkerPool):
    """The worker is a torchrun job: its rank 0 talks to us over a Unix socket; a failure on any rank
    ends the job (torchrun stops the others) and the next case starts a fresh one."""

    def __init__(self, device: str, launch: Launch, start_timeout_s: float = 300.0) -> None:
        super().__init__(device, start_timeout_s)
        self.spec = launch
        self.dir: Path | None = None
        self.listener: socket.socket | None = None
        self.stderr_tail: list[str] = []
        self._reader: threading.Thread | None = None
        self.launched = 0

    def launch(self) -> None:
        self._clean_dir()  # the previous job's error files were read when it failed
        remove_stale_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{DIST_DIR_PREFIX}{os.getpid()}-"))
        address = str(self.dir / "ctl.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(address)
        self.listener.listen(1)
        cmd = self.spec.command(self.python, self.device, address)
        env = {
            **os.environ, **self.spec.env(), "PYTHONUNBUFFERED": "1", "CHIPBENCH_DIST_DIR": str(self.dir),
            PARENT_ENV: str(os.getpid()),
        }  # fmt: skip
        # Its own session, so a time-out kills torchrun's whole process tree, ranks included.
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
        )
        # Each job's pump keeps its own tail: a previous job's pump may still be draining its pipe.
        self.stderr_tail = []
        self._reader = threading.Thread(target=self._pump, args=(self.proc, self.stderr_tail), daemon=True)
        self._reader.start()
        self.launched += 1

    @staticmethod
    def _pump(proc: subprocess.Popen[bytes], tail: list[str]) -> None:
        """Pass torchrun's stderr through, keeping the tail to name a failed rank."""
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            tail.append(line)
            del tail[:-200]
            if "SyncActivityProfilerHandler" in line:
                continue  # kineto announces every profiler start and stop (the comm-share steps)
            if os.environ.get("CHIPBENCH_QUIET_RANKS") != "1":
                sys.stderr.write(line)

    def wait_hello(self) -> Hello:
        assert self.listener is not None and self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        self.listener.settimeout(0.5)
        while True:
            try:
                sock, _ = self.listener.accept()
                break
            except TimeoutError:
                if self.proc.poll() is not None:
                    reply = self._crash_reply(self.proc.returncode)
                    self.kill()
                    raise RuntimeError(f"distributed job failed to start: {reply['message']}") from None
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(
                        f"rank 0 did not connect within {self.start_timeout_s:.0f} s "
                        "(are all nodes started with the same --rdzv-endpoint?)"
                    ) from None
        sock.setblocking(True)
        self.conn = Connection(sock.detach())
        return super().wait_hello()

    def run(self, msg: Message, timeout_s: float) -> Reply:
        if self.spec.nnodes > 1 and self.launched and (self.proc is None or self.proc.poll() is not None):
            # The other nodes' ranks went with the failed job, and their `chipbench` has exited.
            return {
                "type": "error",
                "error_type": "not_run",
                "message": "the multi-node job ended at an earlier failure; run this case again",
            }
        reply = super().run(msg, timeout_s)
        if reply.get("error_type") == "crash":
            return self._crash_reply(None, reply["message"])
        return reply

    def _crash_reply(self, code: int | None, fallback: str | None = None) -> Reply:
        """An error entry naming the rank that failed first-hand. A rank that raised wrote its error
        file; a rank that was killed or crashed shows only in torchrun's failure summary; a rank that
        merely lost its peer (connection reset, collective time-out) is a symptom, named last."""
        if self._reader is not None:
            self._reader.join(timeout=5)
        errs = [json.loads(f.read_text()) for f in sorted(self.dir.glob("rank*.json"))] if self.dir else []
        filed = {e["rank"] for e in errs}
        died = [
            (int(r), int(c))
            for r, c in _FAILURE.findall("".join(self.stderr_tail))
            if int(r) not in filed and int(c) != 0
        ]
        causes = [e for e in errs if not is_symptom(e["message"])]
        failed = sorted(filed | {r for r, _ in died})
        if causes:
            e = min(causes, key=lambda x: x["rank"])
            return {
                "type": "error", "error_type": e["error_type"], "message": f"rank {e['rank']}: {e['message']}",
                "traceback": e.get("traceback"), "ranks_failed": failed,
            }  # fmt: skip
        # SIGTERM is torchrun stopping the survivors after another rank failed, SIGABRT NCCL's watchdog
        # ending a rank whose collective timed out: symptoms.
        killed = [d for d in died if d[1] not in (-signal.SIGTERM, -signal.SIGABRT)]
        if not killed and "watchdog caught collective operation timeout" in "".join(self.stderr_tail).lower():
            ranks = [r for r, _ in died]
            return {
                "type": "error", "error_type": "collective_timeout",
                "message": f"rank(s) {ranks} waited past the collective time-out "
                f"({self.spec.collective_timeout_s:.0f} s) for a peer that hung or died (NCCL watchdog)",
                "ranks_failed": failed,
            }  # fmt: skip
        if killed or (died and not errs):
            rank, exitcode = min(killed or died)
            how = f"killed by signal {-exitcode}" if exitcode < 0 else f"exit code {exitcode}"
            return {
                "type": "error", "error_type": "rank_died",
                "message": f"rank {rank} died ({how}); torchrun stopped the other ranks",
                "ranks_failed": failed,
            }  # fmt: skip
        if errs:
            e = min(errs, key=lambda x: x["rank"])
            timeout = is_timeout(e["message"])
            return {
                "type": "error",
                "error_type": "collective_timeout" if timeout else "peer_lost",
                "message": (
                    f"rank {e['rank']} waited past the collective time-out "
                    f"({self.spec.collective_timeout_s:.0f} s) for a peer that hung or died"
                    if timeout
                    else f"rank {e['rank']} lost its connection to a peer that died"
                )
                + f": {e['message'][:200]}",
                "traceback": e.get("traceback"),
                "ranks_failed": failed,
            }
        return {
            "type": "error",
            "error_type": "crash",
            "message": _agent_died(code, fallback),
        }

    def kill(self) -> None:
        if self.proc is not None:
            kill_tree(self.proc)
        if self.dir is not None:
            kill_ranks(self.dir)  # ranks whose torchrun agent is gone are no longer its children
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        super().kill()

    def _clean_dir(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def close(self) -> None:
        super().close()
        self._clean_dir()
