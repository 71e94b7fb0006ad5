"""`chipbench ab` end to end: both sides' workers started, rounds interleaved, the early stop."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from chipbench.cli import main


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
    # Each side's 2 rounds are pooled, less those a co-tenant disturbed (left out, and said so).
    m = re.search(r"pooled (\d+) vs (\d+) runs(?:; (\d+) disturbed run\(s\) left out)?", r["note"])
    # With 2 of the 4 left out, one run against one run remains: said so, never a verdict.
    one = re.search(r"(\d+) disturbed run\(s\) left out; one run against one run", r["note"])
    assert m or one, r["note"]
    pooled_a, pooled_b, left = (int(m[1]), int(m[2]), int(m[3] or 0)) if m else (1, 1, int(one[1]))  # type: ignore[index]
    assert pooled_a >= 1 and pooled_b >= 1 and pooled_a + pooled_b + left == 4, r["note"]
    for side in ("a", "b"):
        doc = json.loads((tmp_path / f"{side}.json").read_text())
        assert doc["chipbench"]["ab"]["side"] == side.upper()
        assert (
            1 <= len(doc["benchmarks"][0]["extra_info"]["info"]["ab_rounds_samples"]) <= 2
        )  # less disturbed
    assert out["rounds"] == 2 and out["confidence"] == 0.95  # two rounds: one look, at 95%


def test_ab_stops_early_when_every_case_is_decided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 2 ms busy loop against itself, each look at 1 - 0.05 / 5 (looks after rounds 2..5). How soon it is
    # decided depends on the host (a co-tenant's rounds are left out): the loop's stop at the first deciding
    # look is held exactly in tests/unit/test_confirm.py; here, the two workers, the flags and the files.
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
    assert 2 <= out["rounds"] <= 6
    if out["rounds"] < 6:  # stopped early: only when the look decided, and identical code is unchanged
        assert code == 0 and r["verdict"] == "unchanged", r
    assert json.loads((tmp_path / "a.json").read_text())["chipbench"]["ab"]["rounds"] == out["rounds"]
    assert main([*args[:-1], "--min-rounds", "1"]) == 2  # one round gives no spread to look at


def test_ab_of_a_config_matches_each_sides_case_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same busy loop at 0.5 ms (A) and 1.5 ms (B), on this python: one case, named key=A|B.
    args = ["ab", "selftest.busy", "--a-set", "step_us=500", "--b-set", "step_us=1500", "--rounds", "3"]
    args += ["--time-budget", "0.05", "--output-dir", str(tmp_path), "--json"]
    code = main(args)
    out = json.loads(capsys.readouterr().out)
    (r,) = out["results"]
    assert r["benchmark"] == "selftest.busy[step_us=500|1500]" and out["b_set"] == ["step_us=1500"]
    for side, us in (("a", 500), ("b", 1500)):
        doc = json.loads((tmp_path / f"{side}.json").read_text())
        assert [b["name"] for b in doc["benchmarks"]] == [f"selftest.busy[step_us={us}]"]
    if r["verdict"] == "disturbed":  # a host that stole the CPUs through both rounds: rerun, never judged
        assert code == 4
        return
    if r["verdict"] == "inconclusive":  # a co-tenant's rounds left out, too few runs for a verdict: said
        assert code == 0 and "disturbed run(s) left out" in r["note"], r
        return
    assert code == 1 and r["verdict"] == "regression" and r["ratio"] > 2
