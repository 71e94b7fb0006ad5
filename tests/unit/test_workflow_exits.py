"""The workflow's gate steps read `ab`'s exit code as the CI owner expects: a regression, bad input and
no verdict at all (5, with its reason) fail the job; disturbed three times passes with a warning. The
steps' own shell lines, from the line that files the verdict table on, run with the code set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "chipbench.yml"
REASON = "no verdict: every common case is at another version hash (22 not comparable)"


def verdict_lines(job: str) -> str:
    """The gate step's lines from the verdict table's filing on (after the A/B's loop)."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    script = next(s["run"] for s in steps if s.get("name", "").startswith("A/B base vs head"))
    return script[script.index('cat gate.md >> "$GITHUB_STEP_SUMMARY"') :]


@pytest.mark.parametrize("job", ["cpu-smoke", "gpu"])
@pytest.mark.parametrize(
    ("code", "exit", "says"),
    [(0, 0, ""), (1, 1, ""), (2, 2, ""), (4, 0, "::warning::"), (5, 5, f"::error::{REASON}")],
)
def test_the_gate_fails_on_a_regression_and_on_no_verdict(
    tmp_path: Path, job: str, code: int, exit: int, says: str
) -> None:
    (tmp_path / "gate.md").write_text(
        f"### chipbench ab\n\n0 regression\n\n{REASON}\n" if code == 5 else "x\n"
    )
    (tmp_path / "head.md").write_text("head\n")
    got = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", f"code={code}\n{verdict_lines(job)}"],
        cwd=tmp_path, env={"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert got.returncode == exit, got.stdout + got.stderr
    assert (says in got.stdout) if says else "::" not in got.stdout.replace("::warning::still", "")
