"""Change-point detection over a synthetic history of results files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chipbench.cli import main
from tests.helpers import MACHINE, write_results

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def make_history(
    root: Path,
    n: int = 30,
    step_at: int | None = 18,
    factor: float = 1.2,
    seed: int = 0,
    *,
    hash_moves: bool = True,
    machines: dict[int, dict[str, Any]] | None = None,
) -> None:
    """n results files, commit i at T0 + i hours; benchmark b.step slows by `factor` from commit step_at on,
    where its version hash moves too (unless not hash_moves: then only the host moved). `machines`: the
    machine_info of some commits (another torch, ...).

    File names are shuffled relative to commit order, so ordering must come from commit_info.time.
    """
    rng = np.random.default_rng(seed)
    names = rng.permutation(n)
    for i in range(n):
        stepped = step_at is not None and i >= step_at
        level = factor if stepped else 1.0
        step = level * 1e-3 * np.exp(rng.normal(0, 0.01, 20)) * (1 + rng.normal(0, 0.02))  # run-level noise
        flat = 2e-3 * np.exp(rng.normal(0, 0.01, 20)) * (1 + rng.normal(0, 0.02))
        write_results(
            root / f"run{names[i]:03d}.json",
            {"b.step": step, "b.flat": flat},
            commit=f"commit{i:03d}",
            commit_time=(T0 + dt.timedelta(hours=i)).isoformat(),
            hashes={"b.step": "h2" if stepped and hash_moves else "h1"},
            machine=(machines or {}).get(i),
        )


def test_planted_step_found_at_the_right_commit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_history(tmp_path)
    assert main(["history", str(tmp_path), "--json"]) == 0
    cps = json.loads(capsys.readouterr().out)["change_points"]
    assert len(cps) == 1, cps
    cp = cps[0]
    assert cp["benchmark"] == "b.step"
    assert cp["commit"] == "commit018" and cp["previous_commit"] == "commit017"
    assert cp["ratio"] == pytest.approx(1.2, rel=0.03)
    assert cp["direction"] == "regression" and cp["changed"] == "code h1 -> h2"


def test_improvement_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_history(tmp_path, step_at=10, factor=0.8, seed=1)
    assert main(["history", str(tmp_path), "--json", "--benchmark", "b.st*"]) == 0
    cps = json.loads(capsys.readouterr().out)["change_points"]
    assert [(c["commit"], c["direction"]) for c in cps] == [("commit010", "improvement")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flat_noisy_history_gives_none(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int) -> None:
    make_history(tmp_path, step_at=None, seed=seed)
    assert main(["history", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["change_points"] == []


def test_small_step_below_min_magnitude_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_history(tmp_path, factor=1.2)
    assert main(["history", str(tmp_path), "--json", "--min-magnitude", "30%"]) == 0
    assert json.loads(capsys.readouterr().out)["change_points"] == []


def test_table_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_history(tmp_path / "h")
    md = tmp_path / "h.md"
    assert main(["history", str(tmp_path / "h"), "--markdown", str(md)]) == 0
    assert "commit018" in capsys.readouterr().out
    assert "| b.step | commit018 | commit017 |" in md.read_text()


def test_mixed_machines_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_history(tmp_path, n=8, step_at=None)
    other = {**MACHINE, "chipbench_machine_id": "cpu-other-4c"}
    write_results(tmp_path / "other.json", {"b.step": [1e-3] * 5}, machine=other)
    assert main(["history", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "mixes machines" in err and "\n" not in err
    assert main(["history", str(tmp_path), "--machine-id", "cpu-test-2c", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 8


def test_missing_dir(tmp_path: Path) -> None:
    assert main(["history", str(tmp_path / "nope")]) == 2


def test_a_step_at_unchanged_code_is_host_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same code on the same stack moved: reported apart with its size, never a regression."""
    make_history(tmp_path, hash_moves=False)
    assert main(["history", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["change_points"] == []
    (d,) = out["host_drift"]
    assert d["benchmark"] == "b.step" and d["commit"] == "commit018" and d["version_hash"] == "h1"
    assert d["ratio"] == pytest.approx(1.2, rel=0.03) and d["runs_before"] == 18 and d["runs_after"] == 12
    assert 0.005 < out["noise"]["b.flat"]["sd"] < 0.05 and out["noise"]["b.flat"]["runs"] == 30
    assert main(["history", str(tmp_path)]) == 0
    assert "host drift: the same code on the same stack moved" in capsys.readouterr().out


def test_a_change_of_the_stack_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    newer = json.loads(json.dumps(MACHINE))
    newer["packages"]["torch"] = "2.14.0+cpu"
    make_history(tmp_path, hash_moves=False, machines=dict.fromkeys(range(18, 30), newer))
    assert main(["history", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["host_drift"] == []
    (cp,) = out["change_points"]
    assert cp["commit"] == "commit018" and cp["changed"] == "torch 2.13.0+cpu -> 2.14.0+cpu"


def test_no_verdict_is_no_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_history(tmp_path, n=3, step_at=None)
    assert main(["history", str(tmp_path)]) == 5
    assert "no verdict: no change can be found with fewer than 4 results" in capsys.readouterr().err
    assert main(["history", str(tmp_path), "--allow-empty"]) == 0


def _probes(root: Path, matmul_at: Any) -> None:
    """Give every file of a history a host probe: commit i's matmul at matmul_at(i) GFLOP/s, copy 20 GB/s."""
    from chipbench.results.header import HostProbe, ProbePass

    for f in root.glob("*.json"):
        doc = json.loads(f.read_text())
        i = int(doc["commit_info"]["id"].removeprefix("commit"))
        probe = HostProbe(matmul="m", copy="c", version_hashes=("p1", "p2"),
                          start=ProbePass(matmul_gflops=matmul_at(i), copy_gbps=20.0))  # fmt: skip
        doc["chipbench"]["host_probe"] = probe.to_json()
        f.write_text(json.dumps(doc))


@pytest.mark.parametrize(("host", "direction"), [(1.2, "host drift"), (1.0, "regression")])
def test_a_change_point_the_probe_moved_with_is_host_drift_and_the_probes_series_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: float, direction: str
) -> None:
    make_history(tmp_path, n=12, step_at=6)  # the hash moved at commit 6, and the case slowed by 1.2
    _probes(tmp_path, lambda i: 100.0 / (host if i >= 6 else 1.0))
    assert main(["history", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (cp,) = out["change_points"]
    assert cp["direction"] == direction and cp["probe"] == f"probe {host:.3f}|1.000"
    assert out["host_probe"][0] == "host probe in 12 of 12 runs (oldest -> newest, the newest 10):"
    assert main(["history", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "matmul GFLOP/s: 100 100" in text and f"range {100 / host:.3g}-100" in text


def test_the_prefix_sum_cost_is_ruptures_l2_cost() -> None:
    """history's L2 cost from prefix sums gives ruptures' own (the variance of each slice) and its breaks."""
    import ruptures

    from chipbench.gate.history import _prefix_l2

    y = np.log(1e-3 * np.exp(np.random.default_rng(5).normal(0, 0.03, 300)) * np.repeat([1.0, 1.2, 0.9], 100))
    ours, theirs = _prefix_l2(ruptures).fit(y), ruptures.costs.CostL2().fit(y.reshape(-1, 1))
    for a, b in [(0, 300), (0, 2), (17, 150), (99, 101), (250, 300)]:
        assert ours.error(a, b) == pytest.approx(theirs.error(a, b), rel=1e-9, abs=1e-15)
    pen = 2 * 0.03**2 * np.log(300)
    got = ruptures.Pelt(custom_cost=_prefix_l2(ruptures), min_size=2, jump=1).fit(y).predict(pen=pen)
    assert got == ruptures.Pelt(model="l2", min_size=2, jump=1).fit(y.reshape(-1, 1)).predict(pen=pen)
    assert got[:-1] == [100, 200]
