"""The compare gate: verdicts on constructed samples, exit codes, bad inputs, machines, version hashes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chipbench.cli import main

MACHINE = {
    "chipbench_machine_id": "cpu-test-2c",
    "device": {"kind": "cpu", "name": "Test CPU", "count": 1},
    "packages": {"torch": "2.13.0+cpu", "fbgemm-gpu-cpu": "1.8.0", "torchrec": "1.8.0"},
    "cpu": {"brand_raw": "Test CPU", "arch": "x86_64", "count": 2},
    "machine": "x86_64",
}


def bench_entry(
    name: str, data: Any, version_hash: str | None = "h1", group: str | None = None
) -> dict[str, Any]:
    data = [float(v) for v in data]
    return {
        "name": name,
        "group": group or name.split("[")[0],
        "fullname": f"chipbench::{name}",
        "extra_info": {"version_hash": version_hash, "metrics": {}},
        "stats": {"data": data, "median": float(np.median(data)), "rounds": len(data)},
    }


def write_results(
    path: Path,
    benches: dict[str, Any],
    *,
    commit: str = "c0",
    commit_time: str = "2026-01-01T00:00:00+00:00",
    machine: dict[str, Any] | None = None,
    hashes: dict[str, str] | None = None,
) -> Path:
    """A synthetic chipbench results file: {name: samples}."""
    mi = json.loads(json.dumps(machine or MACHINE))
    doc = {
        "machine_info": mi,
        "commit_info": {"id": commit, "time": commit_time},
        "benchmarks": [bench_entry(n, d, (hashes or {}).get(n, "h1")) for n, d in benches.items()],
        "datetime": commit_time,
        "version": "5.1.0",
        "chipbench": {"schema_version": 1, "machine_id": mi["chipbench_machine_id"], "errors": []},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def lognormal(n: int, median: float = 1e-3, sigma: float = 0.02, seed: int = 0) -> np.ndarray:
    return median * np.exp(np.random.default_rng(seed).normal(0, sigma, n))


def test_ab_same_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    venv = str(Path(sys.executable).parent.parent)  # a venv folder resolves to <venv>/bin/python
    args = ["ab", "--a", venv, "--b", sys.executable, "selftest.busy", "--set", "step_us=500"]
    args += ["--rounds", "2", "--time-budget", "0.05", "--output-dir", str(tmp_path), "--json"]
    code = main(args)
    out = json.loads(capsys.readouterr().out)
    (r,) = out["results"]
    assert r["benchmark"] == "selftest.busy[step_us=500]"
    if r["verdict"] == "disturbed":  # a host that stole the CPUs through both rounds: rerun, never judged
        assert code == 4
        return
    assert code == 0 and r["verdict"] in ("unchanged", "inconclusive")
    assert "pooled 2 vs 2 runs" in r["note"]
    for side in ("a", "b"):
        doc = json.loads((tmp_path / f"{side}.json").read_text())
        assert doc["chipbench"]["ab"]["side"] == side.upper()
        assert len(doc["benchmarks"][0]["extra_info"]["info"]["ab_rounds_samples"]) == 2
    assert out["rounds"] == 2 and out["confidence"] == 0.95  # two rounds: one look, at 95%


def test_ab_stops_early_when_every_case_is_decided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 2 ms busy loop against itself: decided "unchanged" at the first look (round 2) on a quiet machine;
    # each look at 1 - 0.05 / 5 (looks after rounds 2..6).
    args = ["ab", "--a", sys.executable, "--b", sys.executable, "selftest.busy", "--set", "step_us=2000"]
    args += [
        "--rounds",
        "6",
        "--min-rounds",
        "2",
        "--time-budget",
        "0.1",
        "--output-dir",
        str(tmp_path),
        "--json",
    ]
    code = main(args)
    out = json.loads(capsys.readouterr().out)
    assert out["max_rounds"] == 6 and out["confidence"] == pytest.approx(0.99)
    (r,) = out["results"]
    if r["verdict"] == "unchanged":
        assert code == 0 and out["rounds"] < 6
    else:  # a disturbed or noisy machine: every round was needed
        assert out["rounds"] == 6
    assert json.loads((tmp_path / "a.json").read_text())["chipbench"]["ab"]["rounds"] == out["rounds"]
    assert main([*args[:-1], "--min-rounds", "1"]) == 2  # one round gives no spread to look at
