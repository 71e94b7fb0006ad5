"""`chipbench ab --a ENV --b ENV [BENCH ...]`: interleaved A/B runs of two environments on one machine.

Two long-lived workers, `A/python -m chipbench.worker` and `B/python -m chipbench.worker`, run every case
round by round in the order A B, B A, A B, ... so that drift of a shared machine (other jobs, thermal
state, clocks) hits both sides alike and the order within a round cancels out. Each round is one run of
every case on each side; the rounds of a side are pooled and compared with `chipbench compare`'s
statistics (the two-level bootstrap treats each round as a run, so round-to-round variation is part of
the interval). Both sides' results files are written (samples of all rounds, pooled).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from chipbench.errors import UsageError
from chipbench.runner import CaseOutcome, RunOutcome, WorkerPool


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
    code = "import json; from chipbench import hardware; print(json.dumps(hardware.git_commit()))"
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


def cmd_ab(args: argparse.Namespace) -> int:
    from chipbench import bench, ceilings, compare, hardware, results
    from chipbench.config import parse_sets

    default = compare.parse_threshold(args.threshold)
    th = compare.load_thresholds(args.thresholds, default, (args.noise_floor_us or 0.0) * 1e-6)
    if args.rounds < 1:
        raise UsageError(f"--rounds must be >= 1, got {args.rounds}")
    if args.time_budget <= 0:
        raise UsageError(f"--time-budget must be > 0 seconds, got {args.time_budget}")
    pys = {"a": resolve_python(args.a, "--a"), "b": resolve_python(args.b, "--b")}
    cases = bench.build_cases(args.benchmarks, args.suite, parse_sets(args.set), None)
    if not cases:
        raise UsageError("nothing to run: no benchmark matches; see `chipbench list`")
    # Workers run outside any checkout, so each imports its own environment's chipbench.
    home = Path.home() if Path.home().is_dir() else None
    pools = {s: WorkerPool(args.device, 180.0, python=py, cwd=home) for s, py in pys.items()}
    for p in pools.values():
        p.launch()  # both import torch at once
    try:
        hellos = {s: p.wait_hello() for s, p in pools.items()}
        ids = {s: hardware.machine_id(h["env"]) for s, h in hellos.items()}
        if ids["a"] != ids["b"]:
            raise UsageError(f"the two environments see different devices ({ids['a']} vs {ids['b']})")
        env = hellos["a"]["env"]
        ceil = ceilings.load(ids["a"])
        # Both sides run the same concrete cases: fitted to the smaller of the two free memories.
        free = min(h["free_memory_bytes"] for h in hellos.values())
        cases = [bench.resolve_case(c, env, ceil, free) for c in cases]
        timeout = max(120.0, 20 * args.time_budget)
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {"a": {}, "b": {}}
        t0 = time.perf_counter()
        for r in range(args.rounds):
            for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
                for case in cases:
                    msg: dict[str, Any] = {"type": "run", "bench": case.bench, "overrides": case.overrides}
                    msg |= {"options": {"time_budget_s": args.time_budget}, "seed": 0}
                    reply = pools[side].run(msg, timeout)
                    runs[side].setdefault(case.name, []).append(reply)
                    if reply["type"] != "result":
                        print(f"[{side.upper()}] {case.name}: ERROR {reply.get('message')}", file=sys.stderr)
            print(
                f"round {r + 1}/{args.rounds} done ({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for p in pools.values():
            p.close()
    out_dir = args.output_dir or Path("results") / f"ab-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    sides: dict[str, compare.Side] = {}
    for side in ("a", "b"):
        outcomes = []
        entries: dict[str, compare.Entry] = {}
        for case in cases:
            replies = runs[side].get(case.name, [])
            good = [x for x in replies if x["type"] == "result"]
            if not good:
                bad = (
                    replies[-1] if replies else {"type": "error", "error_type": "error", "message": "not run"}
                )
                outcomes.append(CaseOutcome(case, False, bad, 0.0))
                continue
            per_round = [np.asarray(x["measurement"]["samples"], dtype=float) for x in good]
            merged = json.loads(json.dumps(good[-1]))
            merged["measurement"]["samples"] = [float(v) for v in np.concatenate(per_round)]
            merged["info"]["ab_rounds_samples"] = [int(x.size) for x in per_round]
            outcomes.append(CaseOutcome(case, True, merged, 0.0))
            e = compare.Entry(case.name, case.bench, {good[-1].get("version_hash")}, per_round)
            entries[case.name] = e
        h = hellos[side]
        run = RunOutcome(
            env=h["env"], kind=h["kind"], free_memory_bytes=h["free_memory_bytes"], outcomes=outcomes
        )
        doc = results.build(
            run, ceilings=ceil, suite=args.suite, argv=results.argv(), commit_info=commit_of(pys[side])
        )
        doc["chipbench"]["ab"] = {"side": side.upper(), "python": pys[side], "rounds": args.rounds}
        path = results.write(doc, out_dir / f"{side}.json")
        sides[side] = compare.Side([path], [doc], entries)
    stacks = {s: _stack(hellos[s]["env"]) for s in ("a", "b")}
    label = f"A: {pys['a']} ({stacks['a']}); B: {pys['b']} ({stacks['b']})"
    comps = compare.compare_sides(sides["a"], sides["b"], th)
    extra: dict[str, Any] = {"a": pys["a"], "b": pys["b"], "rounds": args.rounds, "output_dir": str(out_dir)}
    if not args.json:
        print(f"results: {out_dir / 'a.json'}, {out_dir / 'b.json'}")
    return compare.report(
        comps,
        title=f"chipbench ab: B / A over {args.rounds} interleaved rounds on {ids['a']}",
        label=label,
        as_json=args.json,
        markdown=args.markdown,
        strict=args.strict,
        extra=extra,
    )


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser] | None = None) -> None:
    from chipbench import compare, hardware
    from chipbench.bench import SUITES

    s = sub.add_parser(
        "ab", help="interleaved A/B runs of two environments (venvs or pythons) on this machine"
    )
    s.add_argument("--a", required=True, metavar="PYTHON_OR_VENV", help="baseline environment")
    s.add_argument("--b", required=True, metavar="PYTHON_OR_VENV", help="candidate environment")
    s.add_argument(
        "benchmarks", nargs="*", metavar="BENCH", help="benchmark names (default: the smoke suite)"
    )
    s.add_argument("--suite", choices=SUITES)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    s.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side (default 5)")
    s.add_argument(
        "--time-budget", type=float, default=0.3, metavar="SECONDS", help="per case and round (default 0.3)"
    )
    s.add_argument("--device", default="auto", choices=hardware.DEVICE_CHOICES)
    s.add_argument("--output-dir", type=Path, metavar="DIR", help="where a.json and b.json go")
    compare.add_gate_options(s)
    s.set_defaults(func=cmd_ab)
