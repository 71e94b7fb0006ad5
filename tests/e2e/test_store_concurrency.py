"""Eight `chipbench ingest` processes at once, on overlapping sets of files, into one new store (SQLite
and PostgreSQL): every one exits 0 without a warning, and the store ends with each file exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sqlalchemy", reason="the store needs SQLAlchemy (make setup installs it)")

from chipbench.store import open_store
from tests.helpers import write_results

FILES, CASES, PROCS, EACH = 16, 20, 8, 8


def test_eight_writers_at_once_exact_rows(store_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = [
        write_results(
            tmp_path / "in" / f"run{i:02d}.json",
            {f"case{j}.x": rng.lognormal(-7, 0.02, 60) for j in range(CASES)},
            commit=f"c{i}",
            commit_time=f"2026-01-{i + 1:02d}T00:00:00+00:00",
        )
        for i in range(FILES)
    ]
    env = {**os.environ, "CI": "true"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "chipbench.cli", "ingest", "--store", store_url, "--reason", "commit",
             *(str(files[(2 * k + i) % FILES]) for i in range(EACH))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for k in range(PROCS)
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and err == "", (p.returncode, err, out)
    added = sum(int(out.split(" file(s) added")[0].rsplit(" ", 1)[-1]) for out, _ in outs)
    assert added == FILES  # each file added by exactly one process; the others found it there
    with open_store(store_url) as store:
        assert store.counts() == {
            "runs": FILES, "results": FILES * CASES, "samples": FILES * CASES, "change_points": 0,
        }  # fmt: skip
        assert [r.commit for r in store.runs("cpu-test-2c")] == [f"c{i}" for i in range(FILES)]
