"""A competitor planted on every core: `chipbench run` marks the case disturbed from the kernel's evidence."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from chipbench.platform import contention
from tests.helpers import run_cli, spin


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="needs Linux's per-thread scheduler statistics"
)
def test_a_planted_competitor_marks_the_case_disturbed(tmp_path: Path) -> None:
    # One busy process per core for the whole run: torch's threads must wait for their CPUs.
    ctx = mp.get_context("spawn")
    spinners = [ctx.Process(target=spin, args=(time.time() + 120,)) for _ in range(os.cpu_count() or 2)]
    for p in spinners:
        p.start()
    try:
        out = tmp_path / "r.json"
        p = run_cli("run", "calib.matmul", "--suite", "smoke", "--output", str(out), "--time-budget", "0.5")
    finally:
        for s in spinners:
            s.kill()
            s.join()
    assert p.returncode == 0, p.stderr
    (b,) = json.loads(out.read_text())["benchmarks"]
    seen = b["extra_info"]["measurement"]["extra"]["contention"]
    assert seen["run_delay_share"] > contention.RUN_DELAY_LIMIT, seen
    assert b["extra_info"]["disturbed"] and "waited" in b["extra_info"]["disturbed"]
    assert "disturbed: 1 of 1 cases (calib.matmul [1] worst" in p.stderr  # one line, not one per case
