"""benchmarks/store_scale.py at a toy size (2 machines x 6 commits x 3 cases, SQLite, no browser), so that
the scale benchmark cannot rot: every command it times runs and exits as it should, the files it makes
pass the strict reader, and its JSON holds each figure. Its figures at scale are in docs/measured.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the store needs SQLAlchemy (make setup installs it)")

ROOT = Path(__file__).resolve().parents[2]


def test_store_scale_runs_at_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "store_scale.py"), "--machines", "2", "--commits", "6",
         "--cases", "3", "--samples", "12", "--work", str(tmp_path / "work"), "--no-browser", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["files"] == 12 and got["fleet"]["machines"] == 2
    timed = {(t["backend"], t["what"]): t for t in got["timed"]}
    assert timed[("sqlite", "ingest (every file)")]["tail"].startswith("ingest: 12 file(s) added")
    assert "2 machine(s), 12 run(s)" in timed[("sqlite", "dashboard")]["tail"]
    for key in [("folder", "history one machine"), ("sqlite", "history one machine"), ("sqlite", "compare --base-last 5"),
                ("folder", "compare --base-last 5")]:  # fmt: skip
        assert timed[key]["exit_code"] in (0, 1, 3, 5), timed[
            key
        ]  # a verdict or too little history: no error
        assert timed[key]["peak_rss_mib"] > 10 and timed[key]["wall_s"] > 0
