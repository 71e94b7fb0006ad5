"""The `chipbench` command end to end, as a process: results and Markdown written, the default path, a failed
benchmark recorded, calibrate, and the bad input that needs the device: one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chipbench.platform import allocator, ceilings
from chipbench.results import files
from tests.helpers import run_cli


def _has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_run_writes_results_and_markdown(tmp_path: Path) -> None:
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    p = run_cli("run", "calib.matmul", "calib.copy", "--suite", "smoke", "--time-budget", "0.1",
                "--output", str(out), "--markdown", str(md), env={"CHIPBENCH_PROBE_S": "0.02"})  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = files.load(out)
    names = [b["name"] for b in doc["benchmarks"]]
    assert names == ["calib.copy[size_mib=16]", "calib.matmul[dtype=fp32,k=256,m=256,n=256]"]
    assert all(len(b["stats"]["data"]) >= 5 for b in doc["benchmarks"])
    assert "calib.copy\\[size\\_mib=16\\]" in md.read_text() and "[1/2]" in p.stdout
    # The harness's own time: each case's set-up and parts pass, the run's wall time, and the line saying so.
    for b in doc["benchmarks"]:
        extra = b["extra_info"]["measurement"]["extra"]
        assert extra["setup_s"] > 0 and extra["after_s"] >= 0
    spent = sum(b["extra_info"]["measurement"]["extra"]["total_s"] for b in doc["benchmarks"])
    assert doc["chipbench"]["wall_s"] > doc["chipbench"]["startup_to_first_result_s"] > 0
    assert doc["chipbench"]["wall_s"] > spent
    assert "s from start to save; set-up" in p.stdout
    # The host probe ran at the start and the end, and the summary says so in one line.
    probe = doc["chipbench"]["host_probe"]
    assert probe["matmul"].startswith("calib.matmul[") and probe["budget_s"] == 0.02
    assert probe["start"]["matmul_gflops"] > 0 and probe["end"]["copy_gbps"] > 0
    assert sum("host probe (" in line for line in p.stdout.splitlines()) == 1
    # The worker fixed its allocator's thresholds before the first case, and the file says so.
    if (
        allocator._glibc()
        and allocator._preloaded() is None
        and os.environ.get("CHIPBENCH_MALLOC") != "system"
    ):
        assert doc["chipbench"]["environment"]["host_allocator"]["tuned"] is True
        assert doc["machine_info"]["host_allocator"] == doc["chipbench"]["environment"]["host_allocator"]


def test_default_output_path(tmp_path: Path) -> None:
    p = run_cli("run", "selftest.busy", "--time-budget", "0.05", "--no-probe", cwd=tmp_path,
                env={"CHIPBENCH_PROBE_S": "0.02"})  # fmt: skip
    assert p.returncode == 0, p.stderr
    files = list((tmp_path / "results" / "local").glob("*/*.json"))  # never among the baselines
    assert len(files) == 1 and files[0].parent.name.startswith("cpu-")
    assert "host_probe" not in json.loads(files[0].read_text())["chipbench"]  # --no-probe


def test_failed_benchmark_recorded_and_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = run_cli("run", "selftest.busy", "--set", "fail=raise", "--output", str(out))
    assert p.returncode == 1
    doc = files.load(out)
    assert doc["benchmarks"] == [] and doc["chipbench"]["errors"][0]["error_type"] == "RuntimeError"


def test_calibrate_stores_ceilings(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # --allow-busy: a busy machine refuses to store (tested in test_first_minutes); here the storing is tested.
    p = run_cli("calibrate", "--size", "256", "--copy-mib", "8", "--time-budget", "0.1", "--cache-dir", str(cache),
                "--output", str(tmp_path / "c.json"), "--allow-busy")  # fmt: skip
    assert p.returncode == 0, p.stderr
    stored = list((cache / "ceilings").glob("*.json"))
    assert len(stored) == 1
    data = json.loads(stored[0].read_text())
    assert data["matmul_tflops"]["fp32"] > 0 and data["matmul_tflops"]["bf16"] > 0 and data["copy_gbps"] > 0
    loaded = ceilings.load(data["machine_id"], cache)
    assert loaded is not None and loaded.to_json() == data
    # The bandwidth ceiling is the best of the copy, the in-place add and the AdamW step, each credited its own bytes.
    doc = json.loads((tmp_path / "c.json").read_text())
    bw = {b["extra_info"]["config"]["kernel"]: b for b in doc["benchmarks"] if b["group"] == "calib.copy"}
    assert set(bw) == {"copy", "add", "adamw"}
    assert data["copy_gbps"] == max(b["extra_info"]["metrics"]["gbps"] for b in bw.values())
    per_step = {k: b["extra_info"]["work"]["bytes"] for k, b in bw.items()}
    assert per_step["add"] == 1.5 * per_step["copy"] == 3 * 8 * 2**20


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        pytest.param(
            ["run", "calib.matmul", "--device", "cuda"],
            "device 'cuda' is not available here; available: cpu",
            marks=pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU"),
        ),
        (
            ["run", "calib.matmul", "--set", "m=400000", "--set", "n=400000", "--set", "k=400000"],
            "reduce its size",
        ),
    ],
)
def test_bad_input_needing_the_device(args: list[str], msg: str, tmp_path: Path) -> None:
    p = run_cli(*args, "--output", str(tmp_path / "r.json"))
    assert p.returncode == 2
    assert msg in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_existing_output_is_warned_about(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("{}")
    p = run_cli("run", "selftest.busy", "--time-budget", "0.05", "--output", str(out))
    assert p.returncode == 0 and "exists and will be replaced" in p.stderr
