"""The host probe (execution.probe) as the results header records it, and the host's drift between two
runs' probes (gate.drift)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chipbench.cli.run import PROBE_ENV, probe_budget
from chipbench.core.errors import UsageError
from chipbench.execution.probe import PROBE_S, Prober, cases_for, read_pass
from chipbench.gate.drift import host_drift
from chipbench.results.files import load_typed
from chipbench.results.header import HostProbe, ProbePass
from chipbench.results.typed import ResultsDocument
from tests.helpers import write_results

MM, CP = "calib.matmul[dtype=fp32,k=512,m=512,n=512]", "calib.copy[size_mib=32]"


def probe(mm: float | None, cp: float | None, end: tuple[float, float] | None = None, **kw: Any) -> HostProbe:
    args: dict[str, Any] = {"matmul": MM, "copy": CP, "version_hashes": ("h1", "h2"), "budget_s": 0.1}
    args.update(kw)
    last = ProbePass(matmul_gflops=end[0], copy_gbps=end[1]) if end else None
    return HostProbe(start=ProbePass(matmul_gflops=mm, copy_gbps=cp), end=last, **args)


def reply(samples: list[float], flops: float = 0.0, nbytes: float = 0.0, disturbed: str | None = None) -> Any:
    extra = {"contention": {"disturbed": disturbed}}
    return {"type": "result", "measurement": {"samples": samples, "extra": extra},
            "work": {"flops": flops, "bytes": nbytes}, "version_hash": "h"}  # fmt: skip


def test_a_pass_reads_the_rates_of_its_replies_median_and_a_failed_case_is_none() -> None:
    got = read_pass(reply([2e-3, 1e-3, 4e-3], flops=2e9), {"type": "error", "message": "oom"})
    assert got.passed == ProbePass(matmul_gflops=pytest.approx(1000.0), copy_gbps=None)
    busy = read_pass(reply([1e-3], flops=1e9), reply([1e-2], nbytes=2e8, disturbed="waited 40%"))
    assert busy.passed is not None and busy.passed.disturbed and busy.passed.copy_gbps == pytest.approx(20.0)
    assert read_pass({"type": "error"}, {"type": "error"}).passed is None


def test_the_probe_message_bounds_its_warm_up_and_the_record_names_its_cases() -> None:
    prober = Prober(cases_for("cpu"), 0.05, seed=3)
    msg = prober.message(prober.cases[0])
    assert msg["options"] == {"time_budget_s": 0.05, "warmup_max_s": 0.05} and msg["after"] is False
    assert prober.record() is None  # no pass ran
    calls: list[Any] = []

    def send(m: Any, limit: float) -> Any:
        calls.append(m["bench"])
        return reply([1e-3], flops=1e8, nbytes=1e7)

    prober.run_pass("start", send, 10.0)
    rec = prober.record()
    assert calls == ["calib.matmul", "calib.copy"] and rec is not None and rec.end is None
    assert (rec.matmul, rec.copy, rec.version_hashes) == (MM, CP, ("h", "h"))
    assert "host probe" in rec.describe() and "100 GFLOP/s" in rec.describe()


def test_a_header_with_a_probe_round_trips_and_a_file_without_one_reads_as_before(tmp_path: Path) -> None:
    path = write_results(tmp_path / "r.json", {"a": [1.0, 1.1]})
    doc = json.loads(path.read_text())
    assert load_typed(path).header.host_probe is None
    doc["chipbench"]["host_probe"] = probe(100.0, 20.0, (90.0, 19.0)).to_json()
    path.write_text(json.dumps(doc))
    typed = load_typed(path)
    assert typed.header.host_probe == probe(100.0, 20.0, (90.0, 19.0))
    again = ResultsDocument.from_json(typed.to_json()).to_json()
    assert again["chipbench"]["host_probe"] == doc["chipbench"]["host_probe"]  # read and written: the same
    doc["chipbench"]["host_probe"]["end"]["copy_gbps"] = -1
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=r"chipbench\.host_probe\.end\.copy_gbps"):
        load_typed(path)


def test_host_drift_is_new_over_base_step_time_of_the_pooled_probes() -> None:
    base = [probe(100.0, 20.0), probe(110.0, 22.0, (90.0, 18.0)), None]  # None: an older file
    got = host_drift(base, [probe(80.0, 20.0)])
    # Base: medians of 100 and sqrt(110*90)=99.5 (matmul), 20 and 19.9 (copy).
    assert got.matmul == pytest.approx(99.75 / 80.0, rel=1e-3) and got.copy == pytest.approx(
        19.95 / 20, rel=1e-3
    )
    assert got.base is not None and got.base.runs == 2 and "matmul 1.247" in got.describe()


@pytest.mark.parametrize(
    ("base", "new", "why"),
    [
        ([None], [probe(1.0, 1.0)], "no host probe on the base side"),
        ([probe(1.0, 1.0)], [probe(1.0, 1.0, version_hashes=("h9", "h2"))], "different probes"),
        ([probe(1.0, 1.0), probe(1.0, 1.0, matmul="x")], [probe(1.0, 1.0)], "base side's runs ran different"),
        ([probe(1.0, None)], [probe(None, 2.0)], "no probe figure on both sides"),
    ],
)
def test_no_drift_where_the_probes_cannot_say(base: Any, new: Any, why: str) -> None:
    got = host_drift(base, new)
    assert got.matmul is None and got.copy is None and why in got.note and "unknown" in got.describe()


def test_the_probe_budget_comes_from_the_environment_or_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROBE_ENV)
    assert probe_budget() == PROBE_S
    monkeypatch.setenv(PROBE_ENV, "0")
    assert probe_budget() == 0.0
    monkeypatch.setenv(PROBE_ENV, "0.02")
    assert probe_budget() == 0.02
    for bad in ("-1", "nan", "soon"):
        monkeypatch.setenv(PROBE_ENV, bad)
        with pytest.raises(UsageError, match=PROBE_ENV):
            probe_budget()


def test_the_reports_machines_table_gives_the_probes_range_over_the_runs() -> None:
    from chipbench.report.machines import _probe_range
    from chipbench.results.typed import RunHeader

    docs: Any = [
        (Path(f"{i}.json"), ResultsDocument(chipbench=RunHeader(host_probe=p)))
        for i, p in enumerate([probe(100.0, 20.0, (90.0, 19.0)), probe(120.0, None), None])
    ]
    assert _probe_range(docs) == "host probe over 2 run(s): matmul 90-120 GFLOP/s, copy 19-20 GB/s"
    assert _probe_range(docs[2:]) == ""


def test_the_worker_settles_its_heap_so_a_cases_collections_scan_only_what_is_new() -> None:
    import gc

    from chipbench.execution import worker

    try:
        worker.settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # this process's modules and objects, out of the collector's sight
        young = [[i] for i in range(100)]
        assert gc.get_freeze_count() == frozen and young  # what is made after stays collectable
    finally:
        gc.unfreeze()


def drifted(mm: float | None, cp: float | None) -> Any:
    from chipbench.gate.drift import HostDrift

    return HostDrift(mm, cp)


@pytest.mark.parametrize(
    ("ratio", "mm", "cp", "expected"),
    [
        (1.22, 1.20, 1.01, ("matmul", 1.20)),  # moved as the matmul did
        (0.83, 1.0, 0.85, ("copy", 0.85)),  # faster, as the copy was
        (1.11, 1.20, 1.08, ("copy", 1.08)),  # both moved: the nearer
        (1.40, 1.20, 1.01, None),  # moved much more than the host
        (1.06, 1.02, 1.01, None),  # a flat probe explains nothing
        (1.20, 0.80, None, None),  # the other direction
        (1.20, None, None, None),
    ],
)
def test_a_case_is_host_drift_only_where_the_probe_moved_its_way_by_about_as_much(
    ratio: float, mm: float | None, cp: float | None, expected: Any
) -> None:
    from chipbench.gate.drift import explains

    got = explains(ratio, drifted(mm, cp), 0.05)
    assert got == (expected if expected is None else (expected[0], pytest.approx(expected[1])))


def _with_probe(path: Path, mm: float, cp: float) -> Path:
    doc = json.loads(path.read_text())
    doc["chipbench"]["host_probe"] = probe(mm, cp).to_json()
    path.write_text(json.dumps(doc))
    return path


def test_compare_calls_a_move_with_the_probes_host_drift_and_the_rest_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chipbench.cli import main
    from chipbench.gate.compare import Comparison, exit_code
    from tests.helpers import lognormal

    for i in range(3):
        runs = {"b.x": lognormal(40, seed=1 + 10 * i), "b.y": lognormal(40, seed=3 + 10 * i)}
        f = write_results(tmp_path / "base" / f"{i}.json", runs, commit_time=f"2026-01-01T0{i}:00:00+00:00")
        _with_probe(f, 100.0, 20.0)
    # The host computes 25% slower: b.x moved with it, b.y moved 60%.
    new = {"b.x": 1.25 * lognormal(40, seed=2), "b.y": 1.6 * lognormal(40, seed=4)}
    _with_probe(write_results(tmp_path / "new.json", new), 80.0, 20.0)
    args = ["compare", str(tmp_path / "base"), str(tmp_path / "new.json")]
    assert main([*args, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    got = {r["benchmark"]: (r["verdict"], r["probe"]) for r in out["results"]}
    assert got == {"b.x": ("host drift", "probe 1.250|1.000"), "b.y": ("regression", "probe 1.250|1.000")}
    assert out["host_drift"]["matmul"] == pytest.approx(1.25) and out["summary"]["host drift"] == 1
    _with_probe(write_results(tmp_path / "new.json", {"b.x": new["b.x"]}), 80.0, 20.0)
    assert main([*args, "--strict"]) == 3  # a strict gate wants the code's own verdict
    text = capsys.readouterr().out
    assert "host drift" in text and "matmul 1.250" in text
    assert exit_code([Comparison("b.x", None, "host drift")], strict=False) == 0  # it passes
