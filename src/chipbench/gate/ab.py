"""Interleaved A/B runs of two environments on one machine (`chipbench ab --a ENV --b ENV [BENCH ...]`).

Two long-lived workers, `A/python -m chipbench.worker` and `B/python -m chipbench.worker`, run every case
round by round in the order A B, B A, A B, ... so that drift of a shared machine (other jobs, thermal
state, clocks) hits both sides alike and the order within a round cancels out. Each round is one run of
every case on each side; the rounds of a side are pooled and compared with `chipbench compare`'s
statistics (the two-level bootstrap treats each round as a run, so round-to-round variation is part of
the interval). Both sides' results files are written (samples of all rounds, pooled).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from chipbench.core.cases import Case
from chipbench.core.errors import UsageError
from chipbench.execution.options import RunOptions
from chipbench.execution.pools import WorkerPool
from chipbench.execution.session import Session
from chipbench.gate import sequential
from chipbench.gate.compare import Comparison, Entry, Side, compare_sides
from chipbench.gate.thresholds import Thresholds
from chipbench.results import document, files, validate
from chipbench.results.header import ABSide, CommitInfo
from chipbench.results.measurement import Measurement
from chipbench.results.outcomes import CaseOutcome, RunOutcome


def resolve_python(spec: str, flag: str) -> str:
    """A python executable from a path to one, a virtualenv folder, or a name on PATH."""
    # Absolute, not resolved: the worker runs from another folder, and resolving a venv's python
    # symlink would leave the venv.
    p = Path(spec).expanduser().absolute()
    if p.is_dir():
        for cand in (p / "bin" / "python", p / "Scripts" / "python.exe"):
            if cand.exists():
                return str(cand)
        raise UsageError(
            f"{flag} {spec}: a folder without bin/python; give a virtualenv or a python executable"
        )
    if p.exists():
        if not os.access(p, os.X_OK):
            raise UsageError(f"{flag} {spec} is not executable")
        return str(p)
    found = shutil.which(spec)
    if found:
        return found
    raise UsageError(f"{flag} {spec}: no such python or virtualenv")


@functools.cache
def commit_of(python: str) -> CommitInfo:
    """The git commit of the chipbench that `python` imports (its checkout when installed editable); asked
    once per python. An answer that is not a commit as results files hold one is bad input from that
    environment (UsageError naming it), never a results file the gate would then refuse."""
    # The other environment may hold a chipbench from before or after the move to chipbench.platform.
    code = (
        "import json\ntry:\n    from chipbench.platform.hardware import git_commit\n"
        "except ImportError:\n    from chipbench.hardware import git_commit\nprint(json.dumps(git_commit()))"
    )
    try:
        # Another environment's python imports its own chipbench: PYTHONPATH would point it at this one.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" or python == sys.executable}
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
        )
        last = out.stdout.strip().splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):  # no answer: no git there, or no commit
        return CommitInfo(id="unknown", time=None)
    try:
        info = json.loads(last)
    except ValueError:
        info = last[:80]  # truncated or not JSON: said as malformed below
    why = validate.commit_problem(info)
    if why:
        raise UsageError(
            f"the chipbench of {python} answered its commit malformed ({why}); is it a chipbench checkout?"
        )
    return CommitInfo.from_json(info)


def _stack(env: Mapping[str, Any]) -> str:
    pk = env.get("packages") or {}
    return ", ".join(
        f"{k} {v}" for k, v in pk.items() if v and k in ("torch", "fbgemm-gpu", "fbgemm-gpu-cpu", "torchrec")
    )


@dataclass(frozen=True)
class ABOptions:
    """How `run_ab` runs the two environments and judges them."""

    pythons: Mapping[str, str]
    """Side ("a", "b") -> its python executable."""
    device: str
    """The device kind asked for (auto, cpu, cuda, ...)."""
    rounds: int
    """Most interleaved rounds per side."""
    time_budget_s: float
    """Per case and round."""
    thresholds: Thresholds
    out_dir: Path
    """Where a.json and b.json go."""
    suite: str | None = None
    argv: tuple[str, ...] = ()
    on_round: Callable[[int, float], None] | None = None
    """Called after each round with the rounds done and the seconds since the first began."""
    on_error: Callable[[str, str, str], None] | None = None
    """Called with (side, case, message) for a failed case."""
    ignore_version_hash: bool = False
    min_rounds: int | None = None
    """Look after each round from this one on and stop once every case is decided; None: run every
    round and look once (95%)."""
    deadline_s: float | None = None
    """Stop after the round that ends this long after the first began (two rounds at least), and look
    once more at the same level (`chipbench confirm`'s budget); None: no deadline."""

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise UsageError(f"--rounds must be >= 1, got {self.rounds}")
        if self.min_rounds is not None and not 2 <= self.min_rounds <= self.rounds:
            raise UsageError(
                f"--min-rounds must be between 2 and --rounds ({self.rounds}), got {self.min_rounds}"
            )
        if self.time_budget_s <= 0:
            raise UsageError(f"--time-budget must be > 0 seconds, got {self.time_budget_s}")
        if set(self.pythons) != {"a", "b"}:
            raise ValueError("pythons must name sides a and b")

    @property
    def confidence(self) -> float:
        """Of each look's intervals (0.95 with one look)."""
        return (
            sequential.look_confidence(self.rounds, self.min_rounds) if self.min_rounds is not None else 0.95
        )


@dataclass
class ABResult:
    """The verdicts of B / A and where both sides' results files went."""

    comparisons: list[Comparison]
    paths: dict[str, Path]
    """Side ("a", "b") -> its results file (samples of every round, pooled)."""
    machine_id: str
    label: str
    """Which environment is which, with its stack."""
    rounds: int
    """Rounds run (fewer than asked when every case was decided early)."""
    confidence: float
    """Of each look's intervals (0.95 with one look)."""


Rounds = dict[str, dict[str, list[CaseOutcome]]]
"""Side -> pair name -> its outcome in each round."""


@dataclass(frozen=True)
class CasePair:
    """One case as each side runs it: the same case, or (an A/B of a config) the case under A's config
    and under B's, matched as one for the verdict."""

    a: Case
    b: Case

    @property
    def name(self) -> str:
        """The verdict's name: the case's, or where the configs differ, each differing key as `key=A|B`
        (`llama.train_step[flavor=tiny,n_layers=4|8]`)."""
        if self.a.name == self.b.name:
            return self.a.name
        keys = sorted(set(self.a.overrides) | set(self.b.overrides))
        parts = []
        for k in keys:
            va, vb = (_value(c, k) for c in (self.a, self.b))
            parts.append(f"{k}={va}" if va == vb else f"{k}={va}|{vb}")
        return f"{self.a.bench}[{','.join(parts)}]"

    def side(self, side: str) -> Case:
        return self.a if side == "a" else self.b


def _value(case: Case, key: str) -> str:
    """A config value as a case name writes it; `-` where the case leaves it at its default."""
    if key not in case.overrides:
        return "-"
    return Case(case.bench, {key: case.overrides[key]}).label.partition("=")[2]


def pair_cases(a: list[Case], b: list[Case]) -> list[CasePair]:
    """Side A's and side B's cases, matched in order (both built from the same benchmarks and suite)."""
    if len(a) != len(b) or any(x.bench != y.bench for x, y in zip(a, b, strict=False)):
        raise UsageError("the two configs give different cases; give the same benchmarks to both sides")
    pairs = [CasePair(x, y) for x, y in zip(a, b, strict=True)]
    names = [p.name for p in pairs]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise UsageError(f"{twice} is asked for twice; give each case once")
    return pairs


def config_note(pairs: list[CasePair]) -> str | None:
    """What an A/B of a config says of its matching (None when both sides run the same cases)."""
    differ = [p for p in pairs if p.a.name != p.b.name]
    if not differ:
        return None
    return (
        f"A/B of a config: {len(differ)} case(s) run under A's config and under B's, each matched as one "
        "case named key=A|B where they differ (the results files keep each side's own names); their "
        "version hashes cover the config, so they are not compared"
    )


def run_ab(cases: list[Case], options: ABOptions, b_cases: list[Case] | None = None) -> ABResult:
    """Run every case on both sides in interleaved rounds, write a.json and b.json, compare B to A.

    `b_cases`: side B's cases where they differ from A's (an A/B of a config: the same benchmarks under
    another config, matched to A's in order); None: both sides run `cases`. With `options.min_rounds`, stop
    early once every case is decided, looking after each round from `min_rounds` on at the level
    `gate.sequential` sets; without it, run all rounds and look once (95%).
    """
    for python in options.pythons.values():
        commit_of(python)  # a malformed answer stops the A/B before it runs, not after
    sessions = _start(options)
    try:
        ids = {side: s.machine_id for side, s in sessions.items()}
        if ids["a"] != ids["b"]:
            raise UsageError(f"the two environments see different devices ({ids['a']} vs {ids['b']})")
        # Both sides run the same concrete cases: fitted to the smaller of the two free memories.
        free = min(s.free_memory_bytes for s in sessions.values())
        pairs = pair_cases(sessions["a"].resolve(cases, free), sessions["a"].resolve(b_cases or cases, free))
        runs, done, decided = _rounds(pairs, sessions, options)
    finally:
        for s in sessions.values():
            s.close()
    paths, sides = _write_sides(pairs, sessions, runs, done, options)
    stacks = {s: _stack(sessions[s].env) for s in ("a", "b")}
    label = f"A: {options.pythons['a']} ({stacks['a']}); B: {options.pythons['b']} ({stacks['b']})"
    if note := config_note(pairs):
        label = f"{label}\n{note}"
    if decided is None:
        decided = compare_sides(
            sides["a"], sides["b"], options.thresholds, ignore_version_hash=options.ignore_version_hash,
            confidence=options.confidence,
        )  # fmt: skip
    return ABResult(decided, paths, ids["a"], label, done, options.confidence)


def _start(options: ABOptions) -> dict[str, Session]:
    """Both sides' workers, launched together and started (a failure closes both)."""
    # Workers run outside any checkout, so each imports its own environment's chipbench.
    home = Path.home() if Path.home().is_dir() else None
    # The gate compares timed rounds: no roofline pass in every round.
    run = RunOptions(time_budget_s=options.time_budget_s, after=False)
    sessions = {
        s: Session(WorkerPool(options.device, 180.0, python=py, cwd=home), run)
        for s, py in options.pythons.items()
    }
    for s in sessions.values():
        s.pool.launch()  # both import torch at once
    try:
        for s in sessions.values():
            s.start()
    except BaseException:
        for s in sessions.values():
            s.close()
        raise
    return sessions


def _rounds(
    pairs: list[CasePair], sessions: Mapping[str, Session], options: ABOptions
) -> tuple[Rounds, int, list[Comparison] | None]:
    """Run the rounds: (every outcome, rounds done, the verdicts when a look decided every case early)."""
    runs: Rounds = {"a": {}, "b": {}}
    t0 = time.perf_counter()
    done = 0
    for r in range(options.rounds):
        for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
            for pair in pairs:
                case = pair.side(side)
                oc = sessions[side].run_case(case)
                runs[side].setdefault(pair.name, []).append(oc)
                if not oc.ok and options.on_error:
                    options.on_error(side, case.name, str(oc.payload.get("message")))
        done = r + 1
        if options.on_round:
            options.on_round(done, time.perf_counter() - t0)
        if options.min_rounds is not None and options.min_rounds <= done < options.rounds:
            look = _look(pairs, runs, options)
            if look is not None:
                return runs, done, look  # the verdicts: the files hold these same rounds
        if options.deadline_s is not None and done >= 2 and time.perf_counter() - t0 >= options.deadline_s:
            break  # fewer looks than planned: each at the planned level, so no less strict
    return runs, done, None


def _look(pairs: list[CasePair], runs: Rounds, options: ABOptions) -> list[Comparison] | None:
    """The verdicts after this round when every case is decided, else None (run another round)."""
    sides_now = {s: Side([], [], _pool_rounds(pairs, runs[s], s)[1]) for s in ("a", "b")}
    # The same statistics as the final verdict: stopping means it is decided.
    look = compare_sides(
        sides_now["a"], sides_now["b"], options.thresholds, ignore_version_hash=options.ignore_version_hash,
        confidence=options.confidence,
    )  # fmt: skip
    return look if sequential.decided(look) else None


def _write_sides(
    pairs: list[CasePair], sessions: Mapping[str, Session], runs: Rounds, done: int, options: ABOptions
) -> tuple[dict[str, Path], dict[str, Side]]:
    """Each side's results file (every round's samples, pooled) and its side for the verdict."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    sides: dict[str, Side] = {}
    paths: dict[str, Path] = {}
    for side, session in sessions.items():
        outcomes, entries = _pool_rounds(pairs, runs[side], side)
        run = RunOutcome(session.env, session.kind, session.free_memory_bytes, outcomes)
        doc = document.build_document(
            run, ceilings=session.ceilings, suite=options.suite, argv=list(options.argv),
            commit_info=commit_of(options.pythons[side]), price=session.price,
        )  # fmt: skip
        ab = ABSide(
            side=side.upper(), python=options.pythons[side], rounds=done, max_rounds=options.rounds,
            min_rounds=options.min_rounds, confidence=options.confidence,
        )  # fmt: skip
        doc = replace(doc, chipbench=replace(doc.header, ab=ab))
        paths[side] = files.save(doc, options.out_dir / f"{side}.json").path
        sides[side] = Side([paths[side]], [doc], entries)
    return paths, sides


def _pool_rounds(
    pairs: list[CasePair], replies: dict[str, list[CaseOutcome]], side: str
) -> tuple[list[CaseOutcome], dict[str, Entry]]:
    """One outcome per case of `side` with the samples of every round that succeeded (each round kept as
    a run), and its entry for the verdict under the pair's name."""
    outcomes: list[CaseOutcome] = []
    entries: dict[str, Entry] = {}
    for pair in pairs:
        case = pair.side(side)
        got = replies.get(pair.name, [])
        good = [oc.payload for oc in got if oc.ok]
        if not good:
            bad = got[-1].payload if got else {"type": "error", "error_type": "error", "message": "not run"}
            outcomes.append(CaseOutcome(case, False, bad, 0.0))
            continue
        # A round measured while the machine was disturbed is left out of the verdict (and of the file,
        # unless every round was).
        why = [_disturbed(x) for x in good]
        clean = [x for x, w in zip(good, why, strict=True) if not w] or good
        per_round = [np.asarray(x["measurement"]["samples"], dtype=float) for x in clean]
        merged = json.loads(json.dumps(clean[-1]))
        merged["measurement"]["samples"] = [float(v) for v in np.concatenate(per_round)]
        merged["info"]["ab_rounds_samples"] = [int(x.size) for x in per_round]
        merged["info"]["ab_rounds_disturbed"] = sum(1 for w in why if w)
        outcomes.append(CaseOutcome(case, True, merged, 0.0))
        runs = [] if all(why) else per_round
        # Configs that differ differ in their hash too: a config's A/B compares no hashes.
        same = pair.a.name == pair.b.name
        entries[pair.name] = Entry(
            pair.name,
            case.bench,
            {good[-1].get("version_hash") if same else None},
            runs,
            [w for w in why if w],
        )
    return outcomes, entries


def _disturbed(payload: Mapping[str, Any]) -> str | None:
    """Why the machine was disturbed while the worker's reply was measured, or None."""
    m = payload.get("measurement")
    return Measurement.from_json(m).extra.disturbed if isinstance(m, dict) else None
