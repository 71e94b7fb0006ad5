"""The CI recipe works when copied: the workflow is valid for GitHub (its published schema), the GPU job
runs only where asked, and the CPU job's steps pass when played in a repository whose base commit has no
chipbench yet (the pull request that adds it)."""

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
    assert "if" not in jobs["cpu-smoke"]
    setup = next(s["run"] for s in jobs["cpu-smoke"]["steps"] if s.get("name", "").startswith("Set up"))
    assert "--extra-index-url" in setup  # the +cpu wheels are not on the default index


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_cpu_job_passes_on_the_pull_request_that_adds_chipbench(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "ci" / "play_job.py"), "--keep", str(tmp_path / "play")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    summary = (tmp_path / "play" / "summary.md").read_text()
    assert "no baseline: the base commit has no chipbench" in summary
    assert "### chipbench results" in summary  # the head's smoke run is in the job summary
