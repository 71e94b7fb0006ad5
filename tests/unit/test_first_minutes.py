"""What a newcomer meets: suggestions for a mistyped name, what a listed benchmark needs, verdicts across
machines that never gate, why a history is empty, unstable and impossible figures flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chipbench.cli import main
from chipbench.platform.ceilings import Ceilings, best_of
from tests.helpers import MACHINE, write_results


def test_a_mistyped_benchmark_gets_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "dlrm.train"]) == 2
    assert "did you mean dlrm.train_step" in capsys.readouterr().err


def test_list_says_what_needs_several_processes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("comm.all_reduce"))
    assert "needs 2+ processes: --nproc-per-node 2" in line


def test_cross_machine_compare_is_information_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    data = {"b.x": rng.lognormal(np.log(1e-3), 0.01, 30)}
    base = write_results(tmp_path / "a.json", data)
    other = {**MACHINE, "chipbench_machine_id": "cpu-other-4c"}
    new = write_results(tmp_path / "b.json", {"b.x": data["b.x"] * 1.5}, machine=other)
    assert main(["compare", str(base), str(new), "--allow-cross-machine"]) == 0  # a 50% gap, still exit 0
    assert "regression" in capsys.readouterr().out


def test_history_of_one_commit_says_why_it_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_results(tmp_path / "a.json", {"b.x": [1e-3] * 5})
    assert main(["history", str(tmp_path)]) == 5  # no verdict: said, and not a pass
    assert "fewer than 4 results" in capsys.readouterr().err
    assert main(["history", str(tmp_path), "--allow-empty"]) == 0


def test_unstable_and_impossible_figures_are_flagged() -> None:
    from chipbench.results.render import summary_rows

    doc = {
        "benchmarks": [
            {"name": "a", "stats": {"median": 1.0, "median_ci95": [0.5, 1.8], "rounds": 5},
             "extra_info": {"metrics": {"share_of_ceiling_flops": 1.68}}},
        ],
        "chipbench": {"errors": []},
    }  # fmt: skip
    (row,) = summary_rows(doc)
    assert row[2] == "unstable" and row[7] == "168%!"


def test_a_share_above_100_percent_is_flagged_in_the_results() -> None:
    from tests.helpers import result_doc as _doc

    doc = _doc()  # ceilings of 0.4 TFLOP/s fp32 against a step of 2 GFLOP in about 10 ms: 50%
    assert doc["benchmarks"][0]["extra_info"]["flags"] == []
    from chipbench.platform import hardware
    from chipbench.platform.ceilings import Ceilings as C
    from chipbench.results import document
    from tests.helpers import run_outcome as _run_outcome

    low = C("cpu-test", matmul_tflops={"fp32": 0.05}, copy_gbps=1.0)
    doc = document.build(_run_outcome(), ceilings=low, suite=None, argv=[], commit_info=hardware.git_commit())
    flags = doc["benchmarks"][0]["extra_info"]["flags"]
    assert any("share_of_ceiling_flops" in f and "above 100%" in f for f in flags)


def test_ceilings_keep_the_best_seen_with_the_same_torch() -> None:
    old = Ceilings("m", matmul_tflops={"fp32": 0.22, "bf16": 0.9}, matmul_sizes={"fp32": 2048, "bf16": 2048},
                   copy_gbps=46.0, copy_mib=512, torch="2.13.0")  # fmt: skip
    busy = Ceilings("m", matmul_tflops={"fp32": 0.10, "bf16": 0.95}, matmul_sizes={"fp32": 2048, "bf16": 2048},
                    copy_gbps=20.0, copy_mib=512, torch="2.13.0")  # fmt: skip
    best, kept = best_of(old, busy)
    assert best.matmul_tflops == {"fp32": 0.22, "bf16": 0.95} and best.copy_gbps == 46.0
    assert kept == ["matmul fp32", "copy"]
    other_torch = Ceilings("m", matmul_tflops={"fp32": 0.10}, torch="2.14.0")
    assert best_of(old, other_torch) == (other_torch, [])


def test_headline_in_human_units_names_its_ceiling() -> None:
    from chipbench.results.render import headline, human

    assert human(3.1e6, "samples/s") == "3.1 M samples/s" and human(5.81e10, "B/s") == "58.1 GB/s"
    doc = {
        "benchmarks": [
            {"name": "dlrm.train_step[x]", "group": "dlrm.train_step",
             "extra_info": {"dtype": "fp32", "metrics": {"samples_per_s": 3.1e6, "step_ms_p99": 12.4, "tflops": 0.1,
                                                          "share_of_ceiling_flops": 0.42, "peak_mem_gib": 12.4}}},
            {"name": "selftest.busy", "group": "selftest.busy", "extra_info": {"metrics": {}}},
        ],
        "chipbench": {"ceilings": {"measured_at": "2026-11-29T03:00:00+00:00"}},
    }  # fmt: skip
    (row,) = headline(doc)
    assert row[1] == "3.1 M samples/s" and row[2] == "12.4 ms" and row[5] == "12.4 GiB"
    assert row[4] == "42% of the fp32 matmul ceiling (2026-11-29)"


def test_describe_resolves_for_this_machine_and_says_if_it_fits(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["describe", "dlrm.train_step", "--set", "preset=model1", "--set", "max_rows=-1", "--json"]) == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["dtype"] in ("fp32", "bf16") and d["config"]["max_rows"] > 0  # as `run` resolves them
    assert d["fits_here"].startswith("yes: needs about") and d["memory_estimate"].endswith("GiB")
    assert (
        d["parameters_human"].endswith("M")
        and d["resolved_for"]["resolved"]["max_rows"] == d["config"]["max_rows"]
    )
    big = [
        "describe",
        "calib.matmul",
        "--set",
        "m=400000",
        "--set",
        "n=400000",
        "--set",
        "k=400000",
        "--json",
    ]
    assert main(big) == 0
    assert json.loads(capsys.readouterr().out)["fits_here"].startswith("no: needs about")
