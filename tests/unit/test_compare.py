"""The compare gate: verdicts on constructed samples, exit codes, bad inputs, machines, version hashes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chipbench.cli import main
from chipbench.core.errors import UsageError
from chipbench.gate import baseline, compare, thresholds
from tests.helpers import MACHINE, lognormal, write_results

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- verdicts on constructed samples


def test_equal_samples_unchanged() -> None:
    c = compare.compare_samples(lognormal(50, seed=1), lognormal(50, seed=2))
    assert c.verdict == "unchanged"
    assert c.ci_low is not None and c.ci_high is not None and c.ci_low < 1 < c.ci_high


@pytest.mark.parametrize(("factor", "verdict"), [(1.10, "regression"), (0.90, "improvement")])
def test_shift_detected(factor: float, verdict: str) -> None:
    c = compare.compare_samples(lognormal(40, seed=1), factor * lognormal(40, seed=2))
    assert c.verdict == verdict
    assert c.ratio == pytest.approx(factor, rel=0.02)
    assert c.p_value is not None and c.p_value < 0.01


def test_heavy_tailed_noise_is_not_a_regression() -> None:
    rng = np.random.default_rng(7)
    for trial in range(20):
        # lognormal body with Pareto outliers (preemption, page faults) on both sides, no shift
        def sample(n: int) -> np.ndarray:
            x = 1e-3 * np.exp(rng.normal(0, 0.05, n))
            hit = rng.random(n) < 0.15
            x[hit] *= 1 + rng.pareto(1.5, hit.sum())
            return x

        c = compare.compare_samples(sample(30), sample(30), seed=trial)
        assert c.verdict in ("unchanged", "inconclusive"), c


def test_tiny_samples_inconclusive() -> None:
    c = compare.compare_samples([1.0e-3, 1.01e-3, 0.99e-3], [1.2e-3, 1.21e-3, 1.19e-3])
    assert c.verdict == "inconclusive"
    assert c.more_samples and c.more_samples > 0
    assert "too few samples" in c.note


def test_straddling_reports_more_samples() -> None:
    c = compare.compare_samples(lognormal(8, sigma=0.08, seed=3), 1.05 * lognormal(8, sigma=0.08, seed=4))
    assert c.verdict == "inconclusive"
    assert c.more_samples is None or c.more_samples > 0


def test_noise_floor() -> None:
    base, new = (
        lognormal(40, median=2e-6, sigma=0.01, seed=1),
        lognormal(40, median=2.4e-6, sigma=0.01, seed=2),
    )
    assert compare.compare_samples(base, new).verdict == "regression"
    c = compare.compare_samples(base, new, noise_floor_s=1e-6)
    assert c.verdict == "unchanged" and "noise floor" in c.note


def test_pooled_runs_use_run_level_spread() -> None:
    # Three runs per side whose levels differ by +-8% from run to run: pooling samples alone would look
    # certain; the two-level bootstrap must not call a regression.
    rng = np.random.default_rng(3)
    levels_a, levels_b = [0.92, 1.0, 1.08], [1.08, 1.0, 1.08]
    a = [lv * 1e-3 * np.exp(rng.normal(0, 0.005, 30)) for lv in levels_a]
    b = [lv * 1e-3 * np.exp(rng.normal(0, 0.005, 30)) for lv in levels_b]
    assert compare.compare_samples(a, b).verdict != "regression"


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("2.5%", 0.025), ("0.05", 0.05), (" 10% ", 0.1)])
def test_parse_threshold(text: str, value: float) -> None:
    assert thresholds.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "0", "150%", "-5%", "nan"])
def test_parse_threshold_bad(text: str) -> None:
    with pytest.raises(UsageError):
        thresholds.parse_threshold(text)


def test_thresholds_toml(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text(
        'threshold = "4%"\nnoise_floor_us = 1\n[benchmarks]\n"calib.*" = "10%"\n'
        '"calib.matmul[dtype=bf16]" = { threshold = "2.5%", noise_floor_us = 3 }\n"dlrm.*" = "8%"\n'
    )
    th = thresholds.load_thresholds(f, 0.05, 0.0)
    assert th.for_benchmark("x", None) == pytest.approx((0.04, 1e-6))
    assert th.for_benchmark("calib.copy", "calib.copy") == pytest.approx((0.10, 1e-6))
    assert th.for_benchmark("calib.matmul[dtype=bf16]", "calib.matmul") == pytest.approx((0.025, 3e-6))
    assert th.for_benchmark("dlrm.step[batch_size=8]", "dlrm.step")[0] == pytest.approx(0.08)
    assert th.for_benchmark("other", "dlrm.x")[0] == pytest.approx(0.08)  # glob on the group


def test_example_thresholds_file_parses() -> None:
    th = thresholds.load_thresholds(ROOT / "ci" / "thresholds.example.toml", 0.05, 0.0)
    assert th.rules


# ---------------------------------------------------------------- the CLI: exit codes and output


def _pair(tmp_path: Path, factor: float, n: int = 40, **kw: Any) -> tuple[str, str]:
    """A baseline folder of three runs (what CI commits) and one new run."""
    for i in range(3):
        runs = {"b.x": lognormal(n, seed=1 + 10 * i), "b.y": lognormal(n, seed=3 + 10 * i)}
        write_results(tmp_path / "base" / f"{i}.json", runs, commit_time=f"2026-01-01T0{i}:00:00+00:00")
    base = tmp_path / "base"
    new = write_results(
        tmp_path / "new.json", {"b.x": factor * lognormal(n, seed=2), "b.y": lognormal(n, seed=4)}, **kw
    )
    return str(base), str(new)


def test_exit_0_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", *_pair(tmp_path, 1.0)]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_exit_1_regression_json_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md = tmp_path / "summary.md"
    assert main(["compare", *_pair(tmp_path, 1.2), "--json", "--markdown", str(md)]) == 1
    out = json.loads(capsys.readouterr().out)
    verdicts = {r["benchmark"]: r["verdict"] for r in out["results"]}
    assert verdicts == {"b.x": "regression", "b.y": "unchanged"}
    assert out["exit_code"] == 1 and out["summary"]["regression"] == 1
    assert "| b.x |" in md.read_text() and "regression" in md.read_text()


def test_exit_3_strict_inconclusive(tmp_path: Path) -> None:
    base, new = _pair(tmp_path, 1.05, n=3)
    assert main(["compare", base, new]) == 0
    assert main(["compare", base, new, "--strict"]) == 3


def test_threshold_option_changes_verdict(tmp_path: Path) -> None:
    base, new = _pair(tmp_path, 1.2)
    assert main(["compare", base, new, "--threshold", "50%"]) == 0
    assert main(["compare", base, new, "--threshold", "0.05"]) == 1


def test_folders_pool_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        write_results(tmp_path / "base" / f"{i}.json", {"b.x": lognormal(20, seed=i)})
        write_results(tmp_path / "new" / f"{i}.json", {"b.x": 1.3 * lognormal(20, seed=10 + i)})
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--json"]) == 1
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert r["base_n"] == 60 and r["new_n"] == 60 and "pooled 3 vs 3 runs" in r["note"]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("chipbench: error:") and "\n" not in err
    return err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = _pair(tmp_path, 1.0)
    assert main(["compare", base, str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in _one_line_error(capsys)


def test_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = _pair(tmp_path, 1.0)
    Path(new).write_text(Path(new).read_text()[:100])
    assert main(["compare", base, new]) == 2
    assert "not valid JSON" in _one_line_error(capsys)


def test_schema_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = _pair(tmp_path, 1.0)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"results": []}))
    assert main(["compare", base, str(other)]) == 2
    assert "no 'benchmarks' list" in _one_line_error(capsys)


def test_nothing_in_common_is_no_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_results(tmp_path / "a.json", {"b.x": lognormal(10)})
    b = write_results(tmp_path / "b.json", {"b.z": lognormal(10)})
    assert main(["compare", str(a), str(b)]) == compare.EMPTY_EXIT == 5
    err = capsys.readouterr().err.strip()
    assert "no verdict: no case in common (1 only in base, 1 only in new)" in err and "\n" not in err
    assert main(["compare", str(a), str(b), "--allow-empty", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["no_verdict"].startswith("no verdict: no case in common")


def test_every_case_at_another_hash_is_no_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_results(tmp_path / "a.json", {"b.x": lognormal(40)})
    b = write_results(tmp_path / "b.json", {"b.x": lognormal(40)}, hashes={"b.x": "h2"})
    assert main(["compare", str(a), str(b)]) == 5
    assert "every common case is at another version hash (1 not comparable)" in capsys.readouterr().err


def test_every_run_disturbed_says_so_and_asks_for_a_rerun() -> None:
    comps = [compare.Comparison("b.x", None, "disturbed"), compare.Comparison("b.y", None, "only in new")]
    assert compare.no_verdict(comps) == "no verdict: every run of the common cases was disturbed (1): rerun"
    assert compare.exit_code(comps, strict=False) == compare.RERUN_EXIT  # running again may decide it
    comps.append(compare.Comparison("b.z", None, "inconclusive"))
    assert compare.no_verdict(comps) is None and compare.exit_code(comps, strict=False) == 4


def test_bad_threshold_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", *_pair(tmp_path, 1.0), "--threshold", "lots"]) == 2
    _one_line_error(capsys)


def test_cross_machine_refused_then_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = json.loads(json.dumps(MACHINE))
    other["packages"]["torch"] = "2.12.0+cpu"
    base, new = _pair(tmp_path, 1.0, machine=other)
    assert main(["compare", base, new]) == 2
    err = _one_line_error(capsys)
    assert "different machines" in err and "torch 2.13.0+cpu vs 2.12.0+cpu" in err
    assert main(["compare", base, new, "--allow-cross-machine", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cross_machine"].startswith("CROSS-MACHINE")


def test_a_different_host_allocator_is_another_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = {
        "allocator": "glibc malloc 2.36",
        "tuned": True,
        "mmap_threshold_bytes": 1,
        "trim_threshold_bytes": 2,
    }
    tuned = {**json.loads(json.dumps(MACHINE)), "host_allocator": fixed}
    system = {**tuned, "host_allocator": {"allocator": "glibc malloc 2.36", "tuned": False, "why_not": "x"}}
    samples = {"b.x": [1.0 + 0.01 * i for i in range(20)]}
    base = write_results(tmp_path / "a.json", samples, machine=tuned)
    new = write_results(tmp_path / "b.json", samples, machine=system)
    assert main(["compare", str(base), str(new)]) == 2
    err = _one_line_error(capsys)
    assert (
        "host allocator glibc malloc 2.36, thresholds fixed (mmap 1, trim 2) vs glibc malloc 2.36, its defaults"
        in err
    )
    # Other threshold values are another setting too.
    other = {**tuned, "host_allocator": {**fixed, "trim_threshold_bytes": 3}}
    assert main(["compare", str(base), str(write_results(tmp_path / "d.json", samples, machine=other))]) == 2
    assert "trim 3" in _one_line_error(capsys)
    # A hostile host_allocator is one line, exit 2.
    hostile = {**tuned, "host_allocator": {"allocator": None}}
    assert (
        main(["compare", str(base), str(write_results(tmp_path / "e.json", samples, machine=hostile))]) == 2
    )
    assert "host_allocator.allocator" in _one_line_error(capsys)
    # A file from before the allocator was recorded compares with either.
    old = write_results(tmp_path / "c.json", samples, machine=MACHINE)
    assert main(["compare", str(old), str(new)]) == 0


def test_cross_machine_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = json.loads(json.dumps(MACHINE))
    other["chipbench_machine_id"] = "cuda-h100"
    other["device"] = {"kind": "cuda", "name": "NVIDIA H100", "count": 1}
    assert main(["compare", *_pair(tmp_path, 1.0, machine=other)]) == 2
    assert "machine id" in _one_line_error(capsys)


def test_version_hash_change_not_comparable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = _pair(tmp_path, 1.5, hashes={"b.x": "h2"})
    assert main(["compare", base, new, "--json"]) == 0  # never a regression
    rows = {r["benchmark"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rows["b.x"]["verdict"] == "not comparable" and "(h1 -> h2)" in rows["b.x"]["note"]
    # A refactor that moved the timed code: compared anyway on request, and the note says so.
    assert main(["compare", base, new, "--json", "--ignore-version-hash"]) == 1
    rows = {r["benchmark"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rows["b.x"]["verdict"] == "regression" and "version hash changed" in rows["b.x"]["note"]


def _pytest_benchmark_file(path: Path, data: Any, save_data: bool = True) -> Path:
    """What pytest-benchmark itself saves (.benchmarks/<machine>/0001_x.json), without chipbench fields."""
    st: dict[str, Any] = {"min": float(min(data)), "median": float(np.median(data)), "rounds": len(data)}
    if save_data:
        st["data"] = [float(v) for v in data]
    doc = {
        "machine_info": {"node": "n", "machine": "x86_64", "cpu": {"brand_raw": "Test CPU"}},
        "commit_info": {"id": "abc", "time": "2026-01-01T00:00:00+00:00"},
        "benchmarks": [
            {
                "group": None,
                "name": "test_step",
                "fullname": "benchmarks/test_suite.py::test_step",
                "stats": st,
            }
        ],
        "datetime": "2026-01-01T00:00:00",
        "version": "5.1.0",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_pytest_benchmark_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _pytest_benchmark_file(tmp_path / ".benchmarks" / "Linux" / "0001_a.json", lognormal(30, seed=1))
    b = _pytest_benchmark_file(
        tmp_path / ".benchmarks" / "Linux" / "0002_b.json", 2.5 * lognormal(30, seed=2)
    )
    # One run against one run: the host's drift cannot be told from a change, whatever it moved.
    assert main(["compare", str(a), str(b), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["verdict"] == "inconclusive"
    c = _pytest_benchmark_file(tmp_path / "c.json", lognormal(30), save_data=False)
    assert main(["compare", str(a), str(c)]) == 2
    assert "--benchmark-save-data" in _one_line_error(capsys)


def test_workflow_yaml_parses() -> None:
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "chipbench.yml").read_text())
    jobs = wf["jobs"]
    assert set(jobs) >= {"cpu-smoke", "gpu"}
    assert jobs["gpu"]["runs-on"] == ["self-hosted", "gpu"]
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert "pull_request" in on


# ---------------------------------------------------------------- ab


def test_ab_bad_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ab", "--a", str(tmp_path / "no-venv"), "--b", sys.executable, "selftest.busy"]) == 2
    assert "no such python or virtualenv" in _one_line_error(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["ab", "--a", str(tmp_path / "empty"), "--b", sys.executable, "selftest.busy"]) == 2
    assert "without bin/python" in _one_line_error(capsys)


def test_ab_resolves_relative_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from chipbench.gate.ab import resolve_python

    venv = Path(sys.executable).parent.parent
    monkeypatch.chdir(venv.parent)
    got = resolve_python(venv.name, "--a")
    assert Path(got).is_absolute() and Path(got).exists()


def test_two_level_bootstrap_reads_each_resample_median_at_its_own_length() -> None:
    """Runs of different lengths: each resample's median is of its own values (constant runs make it
    exact), and its distribution matches a plain loop of the same two-level draw."""
    from chipbench.gate.compare import _boot_medians_runs

    const = [np.full(3, 1.0), np.full(5, 2.0), np.full(1, 3.0), np.full(2, 4.0)]
    got = _boot_medians_runs(const, np.random.default_rng(1), 500)
    rng = np.random.default_rng(1)  # replay the draw: the runs picked set every row's median
    pick = rng.integers(0, len(const), size=(500, len(const)))
    want = [np.median(np.concatenate([const[j] for j in row])) for row in pick]
    assert np.array_equal(got, want) and len(set(got)) > 3
    runs = [np.arange(7.0), np.array([50.0, 51.0]), np.array([100.0])]
    rng = np.random.default_rng(2)
    loop = []
    for _ in range(20_000):
        drawn = [runs[j][rng.integers(0, runs[j].size, runs[j].size)] for j in rng.integers(0, 3, 3)]
        loop.append(np.median(np.concatenate(drawn)))
    fast = _boot_medians_runs(runs, np.random.default_rng(3), 20_000)
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    assert np.allclose(np.quantile(fast, q), np.quantile(loop, q), atol=1.0)


# ---------------------------------------------------------------- one run against one run; chosen baselines


def test_one_run_against_one_run_is_never_a_verdict() -> None:
    """Samples of one run share its host state: a tight 20% move between two single runs is no verdict,
    nor a 2.5x one (identical code has moved 2.26x between back-to-back runs on these hosts)."""
    base, new = lognormal(200, seed=1), 1.2 * lognormal(200, seed=2)
    c = compare.compare_samples([base], [new], single_run=compare.SingleRun())
    assert c.verdict == "inconclusive" and "one run against one run" in c.note and "2.26x" in c.note
    assert compare.compare_samples([base], [new]).verdict == "regression"  # samples alone: p ~ 1e-60
    far = compare.compare_samples([base], [2.5 * new], single_run=compare.SingleRun())
    assert far.verdict == "inconclusive"
    known = compare.SingleRun(baseline.RunSpread(0.05, 10, 12, "a history"))
    assert compare.compare_samples([base], [2.5 * new], single_run=known).verdict == "regression"


def test_the_machine_spread_is_a_floor_under_a_case_of_few_runs() -> None:
    """Three base runs of a case that all fell in one of the host's moods (sd 1%) do not make a 40% move a
    regression where the machine's cases together move 25% from run to run."""
    runs = [lognormal(50, seed=s) * f for s, f in ((1, 1.0), (2, 1.01), (3, 0.99))]
    new = 1.4 * lognormal(50, seed=4)
    tight = compare.compare_samples(runs, [new], single_run=compare.SingleRun())
    assert tight.verdict == "regression"
    machine = baseline.RunSpread(0.25, 40, 60, "the machine's 20 cases")
    floored = compare.compare_samples(runs, [new], single_run=compare.SingleRun(floor=machine))
    assert floored.verdict == "inconclusive" and "machine" in floored.test
    assert baseline.pooled(
        [baseline.RunSpread(0.1, 2, 3, "a"), baseline.RunSpread(0.2, 2, 3, "b"), None]
    ) == (baseline.RunSpread((0.025) ** 0.5, 4, 6, "the machine's 2 cases"))


def test_a_known_drift_widens_one_run_against_one_run() -> None:
    base, new = lognormal(200, seed=1), 1.2 * lognormal(200, seed=2)
    tight = baseline.RunSpread(0.01, 10, 11, "11 base runs at one hash")
    c = compare.compare_samples([base], [new], single_run=compare.SingleRun(tight))
    assert c.verdict == "regression" and "t on run drift (sd 1.0% from 11 base runs" in c.test
    loose = baseline.RunSpread(0.15, 4, 6, "6 base runs at one hash")
    c = compare.compare_samples([base], [new], single_run=compare.SingleRun(loose))
    assert c.verdict == "inconclusive" and c.ci_low is not None and c.ci_low < 1.0


def _run(path: Path, factor: float, seed: int, hour: int, h: str = "h1") -> Path:
    return write_results(
        path, {"b.x": factor * lognormal(40, seed=seed)}, commit=f"c{hour}",
        commit_time=f"2026-01-01T{hour:02d}:00:00+00:00", hashes={"b.x": h},
    )  # fmt: skip


def test_folder_baseline_takes_the_newest_runs_at_one_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base"
    old = [_run(base / f"old{i}.json", 3.0, i, i, "h1") for i in range(2)]  # older code, 3x slower
    newest = [_run(base / f"new{i}.json", 1.0, 10 + i, 5 + i, "h2") for i in range(2)]
    head = _run(tmp_path / "head.json", 1.0, 20, 9, "h2")
    assert main(["compare", str(base), str(head), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (r,) = out["results"]
    assert r["verdict"] != "regression" and sorted(r["base_files"]) == sorted(map(str, newest))
    assert sorted(out["base"]) == sorted(map(str, newest)) and not set(out["base"]) & set(map(str, old))
    # A head at the older hash is compared with the runs at that hash, not pooled with the newest.
    assert main(["compare", str(base), str(_run(tmp_path / "h1.json", 3.0, 30, 9, "h1")), "--json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["base"]) == sorted(map(str, old))
    # At a hash the baseline lacks: the note names the baseline's newest hash and the head's.
    assert main(["compare", str(base), str(_run(tmp_path / "h3.json", 1.0, 40, 9, "h3")), "--json"]) == 5
    (r,) = json.loads(capsys.readouterr().out)["results"]
    assert "version hash changed (h2 -> h3)" in r["note"]


def test_base_last_keeps_the_newest_k_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base"
    runs = [_run(base / f"{i}.json", 1.0, i, i) for i in range(4)]
    head = _run(tmp_path / "head.json", 1.0, 9, 9)
    assert main(["compare", str(base), str(head), "--base-last", "1", "--json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)["results"]
    assert r["base_files"] == [str(runs[-1])] and r["base_n"] == 40
    # One run a side, but the baseline's history knows the run-to-run spread at this hash.
    assert r["test"].startswith("t on run drift") and "4 base runs at one hash" in r["test"]
    assert main(["compare", str(base), str(head), "--base-last", "0"]) == 2
    capsys.readouterr()
    assert main(["compare", str(base), str(head)]) == 0
    assert "baseline: per case the newest runs at one version hash, from 4 file(s)" in capsys.readouterr().out
