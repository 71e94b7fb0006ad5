"""The CI recipe works when copied: the workflow is valid for GitHub (its published schema), the GPU job
runs only where asked, the CPU job's steps pass when played in a repository whose base commit has no
chipbench yet (the pull request that adds it), and the main-branch job's then keep that run in a store,
put its history into the summary and make the dashboard."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "chipbench.yml"


def test_workflow_is_valid_for_github() -> None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    p = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_gpu_job_runs_only_where_asked() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert "CHIPBENCH_GPU" in jobs["gpu"]["if"] and "inputs.gpu" in jobs["gpu"]["if"]
    assert jobs["cpu-smoke"]["if"] == "github.event_name != 'push'"  # pull requests: the A/B gate
    assert "github.event_name != 'push'" in jobs["gpu"]["if"]
    assert jobs["main"]["if"] == "github.event_name == 'push'"  # a push to main: run, ingest, dashboard
    setup = next(s["run"] for s in jobs["cpu-smoke"]["steps"] if s.get("name", "").startswith("Set up"))
    assert "--extra-index-url" in setup  # the +cpu wheels are not on the default index
    steps = "\n".join(s.get("run", "") for s in jobs["main"]["steps"])
    assert "ingest head.json" in steps and "--branch main --reason commit" in steps


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_cpu_job_passes_on_the_pull_request_that_adds_chipbench(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "ci" / "play_job.py"), "--job", "cpu-smoke", "--job", "main",
         "--keep", str(tmp_path / "play")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    summary = (tmp_path / "play" / "summary.md").read_text()
    assert "no baseline: the base commit has no chipbench" in summary
    assert "### chipbench results" in summary  # the head's smoke run is in the job summary
    # main, played after it in the same folder (its smoke run reused): the run kept, its history, the pages.
    assert "### chipbench history of cpu-" in summary
    index = (tmp_path / "play" / "head" / "dashboard" / "index.html").read_text()
    assert "1 machine(s)" in index and 'href="machine-cpu-' in index
