"""`chipbench confirm`: history's suspects as cases between two commits, the A/B's verdict read as
confirmed / not confirmed / inconclusive, a commit that cannot be set up, and the A/B's deadline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chipbench.core.cases import Case
from chipbench.gate import ab, confirm
from chipbench.gate.thresholds import Thresholds
from chipbench.results.outcomes import CaseOutcome
from chipbench.results.typed import ResultsDocument
from tests.helpers import lognormal, write_results


@pytest.mark.parametrize(
    ("direction", "verdict", "status"),
    [
        ("regression", "regression", "confirmed"),
        ("improvement", "improvement", "confirmed"),
        ("regression", "unchanged", "not confirmed"),
        ("regression", "improvement", "not confirmed"),
        ("regression", "inconclusive", "inconclusive"),
        ("regression", "disturbed", "inconclusive"),
        ("regression", None, "inconclusive"),
    ],
)
def test_the_ab_verdict_reads_as_a_status(direction: str, verdict: str | None, status: str) -> None:
    assert confirm.status_of(direction, verdict) == status


def test_a_suspect_is_its_case_as_the_newest_file_asked_for_it(tmp_path: Path) -> None:
    path = write_results(tmp_path / "r.json", {"calib.copy[size_mib=16]": [1e-3, 1.1e-3]})
    doc = ResultsDocument.from_json(__import__("json").loads(path.read_text()))
    doc_with = ResultsDocument.from_json(
        {**doc.to_json(), "benchmarks": [{**doc.to_json()["benchmarks"][0], "params": {"size_mib": 16}}]}
    )
    (s,) = confirm.suspects_of(
        [("calib.copy[size_mib=16]", "c1", "c2", "regression", 1.1)], [(path, doc_with)]
    )
    assert s.case == Case("calib.copy", {"size_mib": 16}) and (s.before, s.after) == ("c1", "c2")


def test_a_commit_that_cannot_be_checked_out_leaves_its_suspects_inconclusive(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    options = confirm.ConfirmOptions(
        repo=repo, work_dir=tmp_path / "w", python=sys.executable, thresholds=Thresholds(), budget_s=1.0
    )
    s = confirm.Suspect(Case("calib.copy", {}), "calib.copy", "0" * 40, "1" * 40, "regression", 1.2)
    (got,) = confirm.confirm([s], options)
    assert (
        got.status == "inconclusive"
        and got.note.startswith("not set up: git -C")
        and "setup-000000000000" in got.note
    )


@pytest.mark.parametrize("offline", [False, True])
def test_an_older_commit_missing_a_package_is_set_up_again_with_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: bool
) -> None:
    """Offline first (no download); where that fails (a dependency this interpreter no longer has), again
    with the package index, unless --offline."""
    (tmp_path / "w" / "tree-cccccccccccc").mkdir(parents=True)  # the worktree is there already
    options = confirm.ConfirmOptions(
        repo=tmp_path,
        work_dir=tmp_path / "w",
        python=sys.executable,
        thresholds=Thresholds(),
        offline=offline,
    )
    calls: list[bool] = []

    def run(self: confirm.Checkouts, cmd: list[str], log: Path, offline: bool = True) -> None:
        calls.append(offline)
        if offline:
            raise confirm.SetupFailed("make -C tree setup exited 2")

    monkeypatch.setattr(confirm.Checkouts, "_run", run)
    checkouts = confirm.Checkouts(options)
    if offline:
        with pytest.raises(confirm.SetupFailed):
            checkouts.python_for("c" * 40)
        assert calls == [True]
    else:
        assert checkouts.python_for("c" * 40).endswith("tree-cccccccccccc/.venv/bin/python")
        assert calls == [True, False]


class _FakeSession:
    """A worker whose every run is the same busy loop: `scale` times 1 ms, a 2% spread, a new seed per run
    (so run medians differ a little, as a quiet machine's do)."""

    def __init__(self, scale: float = 1.0, seed: int = 1) -> None:
        self.scale, self.seed = scale, seed

    def run_case(self, case: Case) -> CaseOutcome:
        self.seed += 1
        samples = [float(v) for v in self.scale * lognormal(10, seed=self.seed)]
        payload = {
            "type": "result",
            "version_hash": "h",
            "info": {},
            "measurement": {"samples": samples, "extra": {}},
        }
        return CaseOutcome(case, True, payload, 0.0)


def test_the_ab_stops_at_its_deadline_after_two_rounds_at_least(tmp_path: Path) -> None:
    case = Case("x", {})
    options = ab.ABOptions(
        pythons={"a": sys.executable, "b": sys.executable}, device="cpu", rounds=8, time_budget_s=0.1,
        thresholds=Thresholds(), out_dir=tmp_path, deadline_s=0.0,
    )  # fmt: skip
    sessions: Any = {"a": _FakeSession(), "b": _FakeSession()}
    runs, done, decided = ab._rounds([ab.CasePair(case, case)], sessions, options)
    assert done == 2 and decided is None and len(runs["a"]["x"]) == 2
    _, done, _ = ab._rounds(
        [ab.CasePair(case, case)], sessions, ab.ABOptions(**{**options.__dict__, "deadline_s": None})
    )
    assert done == 8


@pytest.mark.parametrize(("scale", "verdict"), [(1.0, "unchanged"), (3.0, "regression")])
def test_the_ab_stops_at_the_first_look_that_decides_every_case(
    scale: float, verdict: str, tmp_path: Path
) -> None:
    # Quiet runs: a 3x slowdown is decided at the first look (round 2); identical code once 2-4 run
    # medians a side bound it within 5% at 99%. The rounds after the deciding look are not run.
    case = Case("x", {})
    options = ab.ABOptions(
        pythons={"a": sys.executable, "b": sys.executable}, device="cpu", rounds=6, time_budget_s=0.1,
        thresholds=Thresholds(), out_dir=tmp_path, min_rounds=2,
    )  # fmt: skip
    sessions: Any = {"a": _FakeSession(), "b": _FakeSession(scale, seed=100)}
    runs, done, decided = ab._rounds([ab.CasePair(case, case)], sessions, options)
    assert (done == 2 if verdict == "regression" else 2 <= done < 6) and len(runs["b"]["x"]) == done
    assert decided is not None and [c.verdict for c in decided] == [verdict]
    # Without a first look, every round runs.
    _, done, decided = ab._rounds(
        [ab.CasePair(case, case)], sessions, ab.ABOptions(**{**options.__dict__, "min_rounds": None})
    )
    assert done == 6 and decided is None


def test_confirm_outside_a_git_checkout_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chipbench.cli import main

    assert main(["confirm", str(tmp_path), "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a git checkout" in err and "\n" not in err
