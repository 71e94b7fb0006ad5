"""Children die with their parent: a `kill -9` of `chipbench run` leaves no worker, torchrun or rank
running, and no temporary folder behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from chipbench.execution.pools import DIST_DIR_PREFIX, remove_stale_dirs
from tests.helpers import wait_for
from tests.spinning import wait_spinning

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process model")


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "chipbench.cli", "run", "selftest.busy", "--set", "fail=hang",
         "--output", str(tmp_path / "r.json"), *extra],
        env={**os.environ, "CI": "true", "CHIPBENCH_QUIET_RANKS": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_worker_dies_with_a_killed_chipbench(tmp_path: Path) -> None:
    p = _start(tmp_path)
    parent = psutil.Process(p.pid)
    # Killed mid-benchmark, not while the worker starts.
    wait_spinning(lambda: parent.children(recursive=True), 120)
    kids = parent.children(recursive=True)
    p.send_signal(signal.SIGKILL)
    p.wait()
    _, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive, [k.cmdline() for k in alive]


def test_torchrun_and_ranks_die_with_a_killed_chipbench(tmp_path: Path) -> None:
    p = _start(tmp_path, "--nproc-per-node", "2")
    parent = psutil.Process(p.pid)
    folders = lambda: list(Path(tempfile.gettempdir()).glob(f"{DIST_DIR_PREFIX}{p.pid}-*"))  # noqa: E731
    ranks_up = lambda: folders() and len(list(folders()[0].glob("rank*.pid"))) == 2  # noqa: E731
    assert wait_for(ranks_up, 180)
    wait_spinning(lambda: parent.children(recursive=True), 180)
    kids = parent.children(recursive=True)
    assert len(kids) >= 3  # torchrun's agent and two ranks
    p.send_signal(signal.SIGKILL)
    p.wait()
    _, alive = psutil.wait_procs(kids, timeout=30)
    assert not alive, [k.cmdline() for k in alive]
    remove_stale_dirs()  # what a later run does first: folders of dead owners go
    assert not folders()
