"""Play a job of `.github/workflows/chipbench.yml` on this machine, the way the runner would, in a scratch
layout: a git repository whose base commit has no chipbench (the pull request that adds it) and whose
head commit is this checkout. `uses:` steps are the runner's own (checkout, setup-python, artifacts) and
are skipped; every `run:` step runs with bash in the head's folder, `${{ ... }}` expressions filled in.

    .venv/bin/python ci/play_job.py [--job cpu-smoke] [--job main] [--keep DIR]

The head reuses this checkout's `.venv` (linked), so the set-up step finds it up to date and nothing is
downloaded. Several jobs play one after another in the same folder, each as its event would run it
(`main` as a push to main, with no store secret: its SQLite store); a step that an earlier job ran word
for word (the set-up, the smoke run) is not run again: its outputs are there. Exit status: the first
failing step's, else 0. `tests/e2e/test_ci_recipe.py` runs it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "chipbench.yml"
SKIP = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*_cache", ".benchmarks", "*.egg-info", "head*")


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@localhost",
           "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@localhost"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def layout(where: Path) -> tuple[Path, str]:
    """(head folder, base sha): a repository whose first commit has no chipbench, then this checkout."""
    head = where / "head"
    head.mkdir()
    _git(head, "init", "-q", "-b", "main")
    (head / "README.md").write_text("A project before chipbench.\n")
    _git(head, "add", "-A")
    _git(head, "commit", "-q", "-m", "base: no chipbench yet")
    base = _git(head, "rev-parse", "HEAD")
    shutil.copytree(ROOT, head, ignore=SKIP, dirs_exist_ok=True)
    _git(head, "add", "-A")
    _git(head, "commit", "-q", "-m", "head: add chipbench")
    (head / ".venv").symlink_to(ROOT / ".venv")
    return head, base


def fill(script: str, base: str, job: str = "cpu-smoke") -> str:
    """The workflow's expressions, as a pull request's run would see them (`main`: a push to main)."""
    values = {
        "github.event.pull_request.base.sha || github.sha": base,
        "github.ref": "refs/heads/main" if job == "main" else "refs/pull/1/merge",
        "github.sha": base,
        "secrets.CHIPBENCH_STORE_URL": "",  # no team store: the job's SQLite file
    }

    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr not in values:
            raise SystemExit(f"play_job: no value for ${{{{ {expr} }}}}")
        return values[expr]

    return re.sub(r"\$\{\{(.*?)\}\}", one, script)


def play(jobs: list[str], where: Path) -> int:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    head, base = layout(where)
    summary = where / "summary.md"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"CI": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(head)}
    failed = 0
    ran: dict[str, str] = {}  # a step's script -> the job that ran it
    for job in jobs:
        spec = workflow[job]
        job_env = env | {k: fill(str(v), base, job) for k, v in (spec.get("env") or {}).items()}
        for step in spec["steps"]:
            name = f"{job}: {step.get('name') or step.get('uses', '?')}"
            if "run" not in step:
                print(f"play_job: skip (runner's own) {name}", flush=True)
                continue
            if failed and "always()" not in str(step.get("if", "")):
                print(f"play_job: skip (an earlier step failed) {name}", flush=True)
                continue
            if step["run"] in ran:
                print(f"play_job: skip (ran word for word in {ran[step['run']]}) {name}", flush=True)
                continue
            ran[step["run"]] = job
            print(f"play_job: run {name}", flush=True)
            code = subprocess.run(
                ["bash", "-eo", "pipefail", "-c", fill(step["run"], base, job)], cwd=head, env=job_env
            ).returncode
            if code:
                print(f"play_job: step {name!r} exited {code}", flush=True)
                failed = failed or code
    print(f"play_job: summary in {summary}", flush=True)
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--job", action="append", help="a job to play (again for several, in order; default cpu-smoke)"
    )
    ap.add_argument("--keep", type=Path, help="play in this (new) folder and keep it")
    args = ap.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True)
        return play(args.job or ["cpu-smoke"], args.keep)
    with tempfile.TemporaryDirectory() as d:
        return play(args.job or ["cpu-smoke"], Path(d))


if __name__ == "__main__":
    sys.exit(main())
