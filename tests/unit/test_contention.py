"""A disturbed machine must not raise an alarm: the kernel's evidence of contention is recorded per case,
and `compare`, `ab` and `history` say "disturbed: rerun" (exit 4) instead of judging such a run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chipbench.cli import main
from chipbench.core.cases import Case
from chipbench.gate import ab, compare
from chipbench.platform import contention
from chipbench.results.outcomes import CaseOutcome
from tests.helpers import lognormal, write_results

WHY = "its threads waited 30% of the time for a CPU another process held (limit 10%)"


def _fake_proc(root: Path, delays: dict[str, tuple[int, int]], steal: int, total: int) -> None:
    for tid, (run, wait) in delays.items():
        (root / "self" / "task" / tid).mkdir(parents=True, exist_ok=True)
        (root / "self" / "task" / tid / "schedstat").write_text(f"{run} {wait} 7\n")
    (root / "stat").write_text(f"cpu  {total - steal} 0 0 0 0 0 0 {steal} 0 0\ncpu0 1 2 3\n")


def test_run_queue_wait_and_steal_shares(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contention, "PROC", tmp_path)
    _fake_proc(tmp_path, {"1": (0, 0), "2": (0, 0)}, steal=0, total=1000)
    clock = iter([100.0, 101.0])
    monkeypatch.setattr(contention.time, "perf_counter", lambda: next(clock))
    mon = contention.Monitor(threads=2)
    # 1.5 s of running and 0.5 s of waiting over three threads (the third started inside the window): 25%.
    ms = 1_000_000
    _fake_proc(tmp_path, {"1": (600 * ms, 200 * ms), "2": (600 * ms, 100 * ms), "3": (300 * ms, 200 * ms)},
               steal=30, total=1100)  # fmt: skip
    got = mon.stop()
    assert got.run_delay_share == pytest.approx(0.25) and got.steal_share == pytest.approx(0.30)
    assert got.disturbed is not None and "waited 25%" in got.disturbed and "stole 30%" in got.disturbed
    assert got.cpu_share is not None


def test_quiet_window_is_not_disturbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contention, "PROC", tmp_path)
    _fake_proc(tmp_path, {"1": (0, 0), "2": (0, 0)}, steal=0, total=1000)
    mon = contention.Monitor(threads=1)
    time.sleep(0.05)
    # A helper thread waited as long as it ran, but ran 1 ms against the main thread's 49: 2% in all.
    _fake_proc(tmp_path, {"1": (49_000_000, 0), "2": (1_000_000, 1_000_000)}, steal=1, total=1100)
    got = mon.stop()
    assert got.run_delay_share is not None and got.run_delay_share < contention.RUN_DELAY_LIMIT
    assert got.disturbed is None


def test_no_kernel_evidence_is_said_not_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contention, "PROC", tmp_path / "absent")
    got = contention.Monitor(threads=2).stop()
    assert got.run_delay_share is None and got.steal_share is None and got.disturbed is None
    assert got.unavailable and "schedstat" in got.unavailable


def _disturb(path: Path, names: list[str] | None = None) -> None:
    doc = json.loads(path.read_text())
    for b in doc["benchmarks"]:
        if names is None or b["name"] in names:
            b["extra_info"]["disturbed"] = WHY
    path.write_text(json.dumps(doc))


def test_compare_says_rerun_not_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_results(tmp_path / "a.json", {"x": lognormal(60), "y": lognormal(60, seed=1)})
    new = write_results(tmp_path / "b.json", {"x": lognormal(60, 2e-3, seed=2), "y": lognormal(60, seed=3)})
    _disturb(new, ["x"])  # twice as slow, but only because another process held the cores
    assert main(["compare", str(base), str(new), "--json"]) == compare.RERUN_EXIT
    res = {r["benchmark"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert (
        res["x"]["verdict"] == "disturbed"
        and "rerun" in res["x"]["note"]
        and "waited 30%" in res["x"]["note"]
    )
    assert res["y"]["verdict"] == "inconclusive" and "one run against one run" in res["y"]["note"]
    # A real regression elsewhere still fails (against a base of two runs: one run against one run is no
    # verdict): exit 1 wins over a rerun.
    runs = [
        write_results(
            tmp_path / "base" / f"{i}.json", {"x": lognormal(60, seed=i), "y": lognormal(60, seed=5 + i)}
        )
        for i in range(2)
    ]
    new2 = write_results(
        tmp_path / "c.json", {"x": lognormal(60, 2e-3, seed=2), "y": lognormal(60, 2e-3, seed=4)}
    )
    _disturb(new2, ["x"])
    assert main(["compare", str(runs[0].parent), str(new2)]) == 1


def test_disturbed_runs_left_out_of_a_pooled_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [write_results(tmp_path / "base" / f"{i}.json", {"x": lognormal(40, seed=i)}) for i in range(3)]
    new = [write_results(tmp_path / "new" / f"{i}.json", {"x": lognormal(40, seed=10 + i)}) for i in range(3)]
    slow = write_results(tmp_path / "new" / "3.json", {"x": lognormal(40, 3e-3, seed=20)})
    _disturb(slow)
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)["results"]
    assert r["verdict"] == "unchanged" and "1 disturbed run(s) left out" in r["note"] and r["new_n"] == 120
    assert base and new


def test_history_leaves_disturbed_runs_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(8):
        write_results(tmp_path / f"{i}.json", {"x": lognormal(30, seed=i)}, commit=f"c{i}",
                      commit_time=f"2026-01-0{i + 1}T00:00:00+00:00")  # fmt: skip
    last = write_results(tmp_path / "9.json", {"x": lognormal(30, 3e-3, seed=9)}, commit="c9",
                         commit_time="2026-01-09T12:00:00+00:00")  # fmt: skip
    _disturb(last)
    assert main(["history", str(tmp_path)]) == compare.RERUN_EXIT
    out = " ".join(capsys.readouterr().out.split())  # the title wraps at the table's width
    assert "0 change point(s)" in out and "disturbed: rerun" in out


def _payload(samples: np.ndarray, why: str | None) -> dict[str, Any]:
    return {
        "measurement": {"samples": [float(v) for v in samples], "extra": {"contention": {"disturbed": why}}},
        "info": {},
        "version_hash": "h",
    }


def test_ab_leaves_disturbed_rounds_out() -> None:
    case = Case("x", {})
    rounds = [
        CaseOutcome(case, True, _payload(lognormal(20, seed=i), WHY if i == 1 else None), 0.0)
        for i in range(3)
    ]
    outcomes, entries = ab._pool_rounds([ab.CasePair(case, case)], {case.name: rounds}, "a")
    e = entries[case.name]
    assert len(e.runs) == 2 and e.disturbed == [WHY]
    assert outcomes[0].payload["info"]["ab_rounds_disturbed"] == 1
    assert len(outcomes[0].payload["measurement"]["samples"]) == 40
    every = [CaseOutcome(case, True, _payload(lognormal(20, seed=i), WHY), 0.0) for i in range(2)]
    _, entries = ab._pool_rounds([ab.CasePair(case, case)], {case.name: every}, "a")
    assert entries[case.name].runs == [] and len(entries[case.name].disturbed) == 2
