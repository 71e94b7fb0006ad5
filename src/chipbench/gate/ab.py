"""Interleaved A/B runs of two environments on one machine (`chipbench ab --a ENV --b ENV [BENCH ...]`).

Two long-lived workers, `A/python -m chipbench.worker` and `B/python -m chipbench.worker`, run every case
round by round in the order A B, B A, A B, ... so that drift of a shared machine (other jobs, thermal
state, clocks) hits both sides alike and the order within a round cancels out. Each round is one run of
every case on each side; the rounds of a side are pooled and compared with `chipbench compare`'s
statistics (the two-level bootstrap treats each round as a run, so round-to-round variation is part of
the interval). Both sides' results files are written (samples of all rounds, pooled).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chipbench.core.cases import Case
from chipbench.core.errors import UsageError
from chipbench.execution.pools import WorkerPool
from chipbench.execution.session import Session
from chipbench.gate import sequential
from chipbench.gate.compare import Comparison, Entry, Side, compare_sides
from chipbench.gate.thresholds import Thresholds
from chipbench.results import files
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


def commit_of(python: str) -> dict[str, Any]:
    """The git commit of the chipbench that `python` imports (its checkout when installed editable)."""
    # The other environment may hold a chipbench from before or after the move to chipbench.platform.
    code = (
        "import json\ntry:\n    from chipbench.platform.hardware import git_commit\n"
        "except ImportError:\n    from chipbench.hardware import git_commit\nprint(json.dumps(git_commit()))"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        info: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return info
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {"id": "unknown", "time": None}


def _stack(env: dict[str, Any]) -> str:
    pk = env.get("packages") or {}
    return ", ".join(
        f"{k} {v}" for k, v in pk.items() if v and k in ("torch", "fbgemm-gpu", "fbgemm-gpu-cpu", "torchrec")
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


def run_ab(
    cases: list[Case],
    *,
    pythons: dict[str, str],
    device: str,
    rounds: int,
    time_budget_s: float,
    thresholds: Thresholds,
    out_dir: Path,
    suite: str | None,
    argv: list[str],
    on_round: Callable[[int, float], None] | None = None,
    on_error: Callable[[str, str, str], None] | None = None,
    ignore_version_hash: bool = False,
    min_rounds: int | None = None,
) -> ABResult:
    """Run every case on both sides in interleaved rounds, write a.json and b.json, compare B to A.

    With `min_rounds`, stop early once every case is decided, looking after each round from `min_rounds`
    on at the level `gate.sequential` sets; without it, run all `rounds` and look once (95%).
    `on_round(round, elapsed_s)` after each round; `on_error(side, case, message)` for a failed case.
    """
    if rounds < 1:
        raise UsageError(f"--rounds must be >= 1, got {rounds}")
    if min_rounds is not None and not 2 <= min_rounds <= rounds:
        raise UsageError(f"--min-rounds must be between 2 and --rounds ({rounds}), got {min_rounds}")
    confidence = sequential.look_confidence(rounds, min_rounds) if min_rounds is not None else 0.95
    if time_budget_s <= 0:
        raise UsageError(f"--time-budget must be > 0 seconds, got {time_budget_s}")
    # Workers run outside any checkout, so each imports its own environment's chipbench.
    home = Path.home() if Path.home().is_dir() else None
    timeout = max(120.0, 20 * time_budget_s)
    sessions = {
        s: Session(
            WorkerPool(device, 180.0, python=py, cwd=home),
            time_budget_s=time_budget_s,
            timeout_s=timeout,
            after=False,  # the gate compares timed rounds: no roofline pass in every round
        )
        for s, py in pythons.items()
    }
    for s in sessions.values():
        s.pool.launch()  # both import torch at once
    try:
        for s in sessions.values():
            s.start()
        ids = {side: s.machine_id for side, s in sessions.items()}
        if ids["a"] != ids["b"]:
            raise UsageError(f"the two environments see different devices ({ids['a']} vs {ids['b']})")
        # Both sides run the same concrete cases: fitted to the smaller of the two free memories.
        free = min(s.free_memory_bytes for s in sessions.values())
        cases = sessions["a"].resolve(cases, free)
        runs: dict[str, dict[str, list[CaseOutcome]]] = {"a": {}, "b": {}}
        t0 = time.perf_counter()
        done = 0
        decided: list[Comparison] | None = None
        for r in range(rounds):
            for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
                for case in cases:
                    oc = sessions[side].run_case(case)
                    runs[side].setdefault(case.name, []).append(oc)
                    if not oc.ok and on_error:
                        on_error(side, case.name, str(oc.payload.get("message")))
            done = r + 1
            if on_round:
                on_round(done, time.perf_counter() - t0)
            if min_rounds is not None and min_rounds <= done < rounds:
                sides_now = {s: Side([], [], _pool_rounds(cases, runs[s])[1]) for s in ("a", "b")}
                look = compare_sides(
                    sides_now["a"],
                    sides_now["b"],
                    thresholds,
                    ignore_version_hash=ignore_version_hash,
                    confidence=confidence,
                )  # fmt: skip  (the same statistics as the final verdict: stopping means it is decided)
                if sequential.decided(look):
                    decided = look  # the verdicts: the files below hold these same rounds
                    break
    finally:
        for s in sessions.values():
            s.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    sides: dict[str, Side] = {}
    paths: dict[str, Path] = {}
    for side, session in sessions.items():
        outcomes, entries = _pool_rounds(cases, runs[side])
        run = RunOutcome(session.env, session.kind, session.free_memory_bytes, outcomes)
        doc = session.document(run, suite=suite, argv=argv, commit_info=commit_of(pythons[side]))
        doc["chipbench"]["ab"] = {
            "side": side.upper(), "python": pythons[side], "rounds": done, "max_rounds": rounds,
            "min_rounds": min_rounds, "confidence": confidence,
        }  # fmt: skip
        paths[side] = files.save(doc, out_dir / f"{side}.json").path
        sides[side] = Side([paths[side]], [doc], entries)
    stacks = {s: _stack(sessions[s].env) for s in ("a", "b")}
    label = f"A: {pythons['a']} ({stacks['a']}); B: {pythons['b']} ({stacks['b']})"
    if decided is None:
        decided = compare_sides(
            sides["a"], sides["b"], thresholds, ignore_version_hash=ignore_version_hash, confidence=confidence
        )
    return ABResult(
        decided,
        paths,
        ids["a"],
        label,
        done,
        confidence,
    )


def _pool_rounds(
    cases: list[Case], replies: dict[str, list[CaseOutcome]]
) -> tuple[list[CaseOutcome], dict[str, Entry]]:
    """One outcome per case with the samples of every round that succeeded (each round kept as a run)."""
    outcomes: list[CaseOutcome] = []
    entries: dict[str, Entry] = {}
    for case in cases:
        got = replies.get(case.name, [])
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
        entries[case.name] = Entry(
            case.name, case.bench, {good[-1].get("version_hash")}, runs, [w for w in why if w]
        )
    return outcomes, entries


def _disturbed(payload: dict[str, Any]) -> str | None:
    seen = (payload.get("measurement", {}).get("extra") or {}).get("contention") or {}
    return seen.get("disturbed")
