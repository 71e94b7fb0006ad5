"""Suspects confirmed (`chipbench confirm DIR`): each change point `history` suspects is measured again by an
interleaved `ab` between the commits either side of it, as Chromium's Pinpoint confirms its dashboard's
anomalies. Each commit is checked out in a git worktree of its own and set up over this interpreter's torch
(`make setup TORCH=system`, the framework recipe's environments), once, whatever the number of suspects at
it: from this interpreter's packages first, with no download; where an older commit needs a package this
interpreter lacks, again with the package index for those (torch stays this interpreter's), unless
`offline`; the suspects of one pair of commits share one `ab` run, whose rounds stop when every case is
decided or when the pair's budget (per suspect, times its suspects) is spent.

A suspect is `confirmed` when the A/B's verdict is the change point's direction, `not confirmed` when it is
`unchanged` or the other direction, and `inconclusive` otherwise (undecided in the budget, disturbed, a
commit that could not be set up, a case that failed). The version hashes are not compared: the code is
meant to differ across a change point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chipbench.core.cases import Case
from chipbench.core.errors import UsageError
from chipbench.gate import ab
from chipbench.gate.compare import Comparison
from chipbench.gate.thresholds import Thresholds
from chipbench.results.typed import ResultsDocument

Status = Literal["confirmed", "not confirmed", "inconclusive"]


@dataclass(frozen=True)
class Suspect:
    """A change point to confirm: one case between two commits."""

    case: Case
    """The case as the newest results file of it asked for it (its params)."""
    name: str
    """Its name in the history."""
    before: str
    """The commit before the change point."""
    after: str
    direction: str
    """What history saw: regression or improvement."""
    ratio: float
    """History's ratio of medians, after over before."""


@dataclass(frozen=True)
class Confirmation:
    """What the A/B said of one suspect."""

    suspect: Suspect
    status: Status
    verdict: str | None = None
    """The A/B's verdict (A: the commit before, B: the commit after)."""
    ratio: float | None = None
    ci: tuple[float, float] | None = None
    rounds: int = 0
    seconds: float = 0.0
    """The A/B's wall time (the pair's, shared by its suspects); set-up not included."""
    note: str = ""


@dataclass(frozen=True)
class ConfirmOptions:
    """Where and how the suspects are measured again."""

    repo: Path
    """The git repository that holds the commits."""
    work_dir: Path
    """Where the worktrees, their environments and the A/B's results go."""
    python: str
    """The interpreter whose torch (and other packages) both commits' environments use."""
    thresholds: Thresholds
    budget_s: float = 300.0
    """Interleaved rounds per suspect, in seconds (set-up apart)."""
    rounds: int = 20
    min_rounds: int = 3
    time_budget_s: float = 0.3
    device: str = "auto"
    machine_id: str | None = None
    """The history's machine: an A/B measured on another says so in its note."""
    keep: bool = False
    """Keep the worktrees and environments (to look at them, or to confirm again sooner)."""
    offline: bool = False
    """Never use the package index: a commit that needs a package this interpreter lacks is not set up."""
    on_event: Callable[[str], None] | None = None
    """Told of each step (set-up, A/B started, each round)."""

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise UsageError(f"--budget must be > 0 seconds, got {self.budget_s}")


def suspects_of(
    change_points: list[tuple[str, str, str, str, float]], docs: list[tuple[Path, ResultsDocument]]
) -> list[Suspect]:
    """Suspects from history's change points (name, before, after, direction, ratio): each case as the
    newest results file that holds it asked for it."""
    params: dict[str, Mapping[str, object]] = {}
    for _, d in docs:
        for b in d.benchmarks:
            params[b.name] = b.params or {}
    return [
        Suspect(Case(name.split("[")[0], dict(params.get(name, {}))), name, before, after, direction, ratio)
        for name, before, after, direction, ratio in change_points
    ]


class SetupFailed(Exception):
    """A commit could not be checked out or set up (the message says which and where its log is)."""


@dataclass
class Checkouts:
    """Each commit's worktree and environment, made once and removed at the end (unless kept)."""

    options: ConfirmOptions
    made: dict[str, str | SetupFailed] = field(default_factory=dict)
    trees: list[Path] = field(default_factory=list)

    def python_for(self, commit: str) -> str:
        """The commit's environment's python; SetupFailed when it cannot be made."""
        if commit not in self.made:
            try:
                self.made[commit] = self._make(commit)
            except SetupFailed as exc:
                self.made[commit] = exc
        got = self.made[commit]
        if isinstance(got, SetupFailed):
            raise got
        return got

    def _make(self, commit: str) -> str:
        tree = (self.options.work_dir / f"tree-{commit[:12]}").absolute()
        log = tree.parent / f"setup-{commit[:12]}.log"
        tree.parent.mkdir(parents=True, exist_ok=True)
        if self.options.on_event:
            self.options.on_event(f"setting up {commit[:12]} in {tree} (log: {log})")
        if not tree.exists():
            self._run(
                ["git", "-C", str(self.options.repo), "worktree", "add", "--detach", str(tree), commit], log
            )
            self.trees.append(tree)
        venv = tree / ".venv"
        setup = [
            "make",
            "-C",
            str(tree),
            "setup",
            "TORCH=system",
            f"PYTHON={self.options.python}",
            f"VENV={venv}",
        ]
        try:
            self._run(setup, log)
        except SetupFailed:
            if self.options.offline:
                raise
            # An older commit may need what this interpreter no longer has (a dependency since dropped).
            if self.options.on_event:
                self.options.on_event(f"{commit[:12]}: set up again with the package index (log: {log})")
            self._run(setup, log, offline=False)
        return str(venv / "bin" / "python")

    def _run(self, cmd: list[str], log: Path, offline: bool = True) -> None:
        # The environment's own chipbench, not this one's; TORCH=system links the interpreter's torch.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        if offline:
            env["PIP_NO_INDEX"] = "1"
        try:
            with log.open("a") as out:
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=1200,
                                      env=env, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SetupFailed(f"{' '.join(cmd[:4])} failed ({exc}); see {log}") from None
        if done.returncode:
            raise SetupFailed(f"{' '.join(cmd[:4])} exited {done.returncode}; see {log}")

    def close(self) -> None:
        if self.options.keep:
            return
        for tree in self.trees:
            subprocess.run(["git", "-C", str(self.options.repo), "worktree", "remove", "--force", str(tree)],
                           capture_output=True, check=False)  # fmt: skip
            shutil.rmtree(tree, ignore_errors=True)


def status_of(direction: str, verdict: str | None) -> Status:
    if verdict == direction:
        return "confirmed"
    if verdict in ("unchanged", "regression", "improvement"):
        return "not confirmed"
    return "inconclusive"


def confirm(suspects: list[Suspect], options: ConfirmOptions) -> list[Confirmation]:
    """Each suspect's confirmation, one `ab` per pair of commits (the commit before as A)."""
    pairs: dict[tuple[str, str], list[Suspect]] = {}
    for s in suspects:
        pairs.setdefault((s.before, s.after), []).append(s)
    checkouts = Checkouts(options)
    out: list[Confirmation] = []
    try:
        for (before, after), group in pairs.items():
            out.extend(_confirm_pair(before, after, group, checkouts, options))
    finally:
        checkouts.close()
    return out


def _confirm_pair(
    before: str, after: str, group: list[Suspect], checkouts: Checkouts, options: ConfirmOptions
) -> list[Confirmation]:
    try:
        pythons = {"a": checkouts.python_for(before), "b": checkouts.python_for(after)}
    except SetupFailed as exc:
        return [Confirmation(s, "inconclusive", note=f"not set up: {exc}") for s in group]
    cases = list({s.case.name: s.case for s in group}.values())
    say = options.on_event
    if say:
        say(
            f"A/B {before[:12]} -> {after[:12]}: {len(cases)} case(s), budget {options.budget_s * len(group):.0f} s"
        )
    t0 = time.perf_counter()
    ab_options = ab.ABOptions(
        pythons=pythons, device=options.device, rounds=options.rounds, time_budget_s=options.time_budget_s,
        thresholds=options.thresholds, out_dir=options.work_dir / f"ab-{before[:12]}-{after[:12]}",
        on_round=(lambda r, s: say(f"  round {r} ({s:.0f} s)")) if say else None, ignore_version_hash=True,
        min_rounds=options.min_rounds if options.min_rounds < options.rounds else None,
        deadline_s=options.budget_s * len(group),
    )  # fmt: skip
    try:
        got = ab.run_ab(cases, ab_options)
    except UsageError as exc:
        return [Confirmation(s, "inconclusive", note=str(exc)) for s in group]
    spent = time.perf_counter() - t0
    by_case = {c.benchmark: c for c in got.comparisons}
    missing = Comparison("", None, "missing")
    elsewhere = ""
    if options.machine_id is not None and got.machine_id != options.machine_id:
        elsewhere = f"measured on {got.machine_id}, not the history's {options.machine_id}"
    return [_read(s, by_case.get(s.case.name, missing), got.rounds, spent, elsewhere) for s in group]


def _read(s: Suspect, c: Comparison, rounds: int, spent: float, elsewhere: str) -> Confirmation:
    ci = (c.ci_low, c.ci_high) if c.ci_low is not None and c.ci_high is not None else None
    note = "; ".join(n for n in (elsewhere, c.note) if n)
    return Confirmation(s, status_of(s.direction, c.verdict), c.verdict, c.ratio, ci, rounds, spent, note)
