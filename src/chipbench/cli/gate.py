"""`chipbench compare`, `ab` and `history`: the performance gate's commands."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chipbench import workloads
from chipbench.cli.output import count, finite, print_table, say, seconds, warn
from chipbench.core.config import parse_sets
from chipbench.core.errors import UsageError
from chipbench.core.fileio import check_apart, check_writable, write_text_or_elsewhere
from chipbench.core.registry import SUITES
from chipbench.gate import ab, history
from chipbench.gate.compare import (
    COLUMNS,
    RERUN_EXIT,
    Comparison,
    compare_sides,
    exit_code,
    load_side,
    machine_differences,
    rows,
    summary_line,
    to_json,
    to_markdown,
)
from chipbench.gate.thresholds import Thresholds, load_thresholds, parse_threshold
from chipbench.platform.device import DEVICE_CHOICES


def report(
    comps: list[Comparison],
    *,
    title: str,
    label: str | None,
    as_json: bool,
    markdown: Path | None,
    strict: bool,
    extra: Mapping[str, object],
) -> int:
    """Print the table (or JSON), write the Markdown, return the exit code."""
    code = exit_code(comps, strict)
    if markdown:
        write_output(markdown, to_markdown(title, comps, label))
    if as_json:
        print(json.dumps(to_json(comps, **extra, cross_machine=label, exit_code=code), indent=2))
    else:
        if label:
            say(label)
        print_table(title, list(COLUMNS), rows(comps))
        print(summary_line(comps))
    return code


def write_output(path: Path, text: str) -> None:
    """Write an output whole; where that fails (a full disk, a symlink loop), elsewhere with a warning."""
    _, why = write_text_or_elsewhere(path, text)
    if why:
        warn(why)


def _thresholds(args: argparse.Namespace) -> Thresholds:
    default = parse_threshold(args.threshold)
    if args.noise_floor_us is not None and args.noise_floor_us < 0:
        raise UsageError("--noise-floor-us must be >= 0")
    return load_thresholds(args.thresholds, default, (args.noise_floor_us or 0.0) * 1e-6)


def cmd_compare(args: argparse.Namespace) -> int:
    th = _thresholds(args)
    check_apart(
        [("--markdown", args.markdown)],
        [("BASE", args.base), ("NEW", args.new), ("--thresholds", args.thresholds)],
    )
    if args.markdown:
        check_writable(args.markdown, "--markdown")
    base = load_side([args.base])
    new = load_side([args.new])
    if not set(base.entries) & set(new.entries):
        raise UsageError(f"no benchmarks in common between {args.base} and {args.new}")
    diffs = machine_differences(base.docs, new.docs)
    label = None
    if diffs:
        if not args.allow_cross_machine:
            raise UsageError(
                f"results come from different machines ({'; '.join(diffs)}); "
                "pass --allow-cross-machine to compare anyway"
            )
        label = f"CROSS-MACHINE comparison, not a regression gate: {'; '.join(diffs)}"
    comps = compare_sides(base, new, th, ignore_version_hash=args.ignore_version_hash)
    code = report(
        comps,
        title=f"chipbench compare: {args.base} -> {args.new}",
        label=label,
        as_json=args.json,
        markdown=args.markdown,
        strict=args.strict,
        extra={"base": [str(f) for f in base.files], "new": [str(f) for f in new.files]},
    )
    # Across machines the verdicts are information, never a gate: exit 0 whatever they say.
    return 0 if label else code


def cmd_ab(args: argparse.Namespace) -> int:
    th = _thresholds(args)  # --rounds and --time-budget: checked by their argparse types (and run_ab)
    pys = {"a": ab.resolve_python(args.a, "--a"), "b": ab.resolve_python(args.b, "--b")}
    cases = workloads.build_cases(args.benchmarks, args.suite, parse_sets(args.set), None)
    if not cases:
        raise UsageError("nothing to run: no benchmark matches; see `chipbench list`")
    out_dir = args.output_dir or Path("results") / f"ab-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    check_writable(out_dir, "--output-dir", folder=True)
    check_apart([("--markdown", args.markdown), ("a.json", out_dir / "a.json"), ("b.json", out_dir / "b.json")],
                [("--thresholds", args.thresholds)])  # fmt: skip
    if args.markdown:
        check_writable(args.markdown, "--markdown")

    def on_round(r: int, elapsed: float) -> None:
        print(f"round {r} of at most {args.rounds} done ({elapsed:.0f} s)", file=sys.stderr, flush=True)

    def on_error(side: str, case: str, message: str) -> None:
        say(f"[{side.upper()}] {case}: ERROR {message}", err=True)

    options = ab.ABOptions(
        pythons=pys,
        device=args.device,
        rounds=args.rounds,
        time_budget_s=args.time_budget,
        thresholds=th,
        out_dir=out_dir,
        suite=args.suite,
        argv=tuple(sys.argv),
        on_round=on_round,
        on_error=on_error,
        ignore_version_hash=args.ignore_version_hash,
        # One look (at 95%) when early stopping is off or has no round to save.
        min_rounds=None if args.no_early_stop or args.rounds <= args.min_rounds else args.min_rounds,
    )
    got = ab.run_ab(cases, options)
    if not args.json:
        print(f"results: {got.paths['a']}, {got.paths['b']}")
        if got.rounds < args.rounds:
            say(f"stopped after {got.rounds} of at most {args.rounds} rounds: every case was decided")
    extra = {"a": pys["a"], "b": pys["b"], "rounds": got.rounds, "max_rounds": args.rounds,
             "confidence": got.confidence, "output_dir": str(out_dir)}  # fmt: skip
    return report(
        got.comparisons,
        title=(
            f"chipbench ab: B / A over {got.rounds} interleaved rounds on {got.machine_id} "
            f"({got.confidence:.1%} intervals)"
        ),
        label=got.label,
        as_json=args.json,
        markdown=args.markdown,
        strict=args.strict,
        extra=extra,
    )


def cmd_history(args: argparse.Namespace) -> int:
    mag = parse_threshold(args.min_magnitude, "--min-magnitude")
    check_apart([("--markdown", args.markdown)], [("DIR", args.dir)])
    if args.markdown:
        check_writable(args.markdown, "--markdown")
    if not 0 < args.p_value < 1:
        raise UsageError(f"--p-value must be between 0 and 1, got {args.p_value}")
    mid, docs = history.load_history(args.dir, args.machine_id)
    per, disturbed = history.series(docs, args.benchmark)
    if not per and not disturbed:
        raise UsageError(f"no benchmark under {args.dir} matches {args.benchmark!r}")
    cps: list[history.ChangePoint] = []
    for name in sorted(per):
        cps.extend(history.detect(name, per[name], p_value=args.p_value, min_magnitude=mag))
    title = (
        f"chipbench history: {len(docs)} results of {mid}, {len(per)} benchmark(s), "
        f"{len(cps)} change point(s) (p < {args.p_value:g}, |ratio - 1| >= {mag:.3g})"
    )
    if args.markdown:
        write_output(args.markdown, history.to_markdown(title, cps))
    longest = max((len(p) for p in per.values()), default=0)
    commits = len({p.commit for pts in per.values() for p in pts})
    why = None
    if longest < history.MIN_POINTS:
        why = (
            f"no change point can be found with fewer than {history.MIN_POINTS} results of a benchmark "
            f"(the longest history here has {longest}, from {commits} commit(s))"
        )
    rerun = [d for d in disturbed if d.newest]
    if args.json:
        out = {"machine_id": mid, "files": len(docs), "change_points": [asdict(c) for c in cps],
               "disturbed": [asdict(d) for d in disturbed]}  # fmt: skip
        if why:
            out["note"] = why
        print(json.dumps(out, indent=2))
    else:
        print_table(title, list(history.COLUMNS), history.rows(cps))
        if why:
            say(why)
        for d in disturbed:
            say(f"left out {d.benchmark} of {d.file}: disturbed{': rerun' if d.newest else ''} ({d.why})")
    # The newest run of a benchmark was disturbed: its change cannot be told yet, so CI runs it again.
    return RERUN_EXIT if rerun else 0


def _gate_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("--threshold", default="5%", help="relative change that counts (default 5%%; 2.5%%, 0.05)")
    s.add_argument("--thresholds", type=Path, metavar="FILE.toml", help="per-benchmark thresholds")
    s.add_argument(
        "--noise-floor-us", type=finite, metavar="US", help="differences of medians below this are unchanged"
    )
    s.add_argument("--strict", action="store_true", help="exit 3 when something is inconclusive")
    s.add_argument("--markdown", type=Path, metavar="PATH", help="write the verdict table as Markdown")
    s.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    s.add_argument(
        "--ignore-version-hash",
        action="store_true",
        help="compare benchmarks whose timed code changed (check that a refactor kept the figures)",
    )


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("compare", help="compare two results files or folders: the CI regression gate")
    s.add_argument("base", type=Path, metavar="BASE", help="baseline results file or folder")
    s.add_argument("new", type=Path, metavar="NEW", help="new results file or folder")
    _gate_options(s)
    s.add_argument("--allow-cross-machine", action="store_true", help="compare results of different machines")
    s.set_defaults(func=cmd_compare)

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
    s.add_argument("--rounds", type=count, default=10, help="most interleaved rounds per side (default 10)")
    s.add_argument(
        "--min-rounds", type=count, default=3,
        help="first look after this many rounds; then stop once every case is decided (default 3)",
    )  # fmt: skip
    s.add_argument(
        "--no-early-stop",
        action="store_true",
        help="run every round and look once, at 95%% (the old behaviour)",
    )
    s.add_argument(
        "--time-budget", type=seconds, default=0.3, metavar="SECONDS", help="per case and round (default 0.3)"
    )
    s.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    s.add_argument("--output-dir", type=Path, metavar="DIR", help="where a.json and b.json go")
    _gate_options(s)
    s.set_defaults(func=cmd_ab)

    s = sub.add_parser("history", help="change points in a folder of results files (one machine)")
    s.add_argument("dir", type=Path, metavar="DIR", help="folder of results files")
    s.add_argument("--benchmark", metavar="GLOB", help="only benchmarks whose name or group matches")
    s.add_argument("--machine-id", help="the machine to analyse when DIR holds several")
    s.add_argument("--min-magnitude", default="5%", help="smallest change of the median that counts (5%%)")
    s.add_argument("--p-value", type=finite, default=0.01, help="Welch t-test significance level (0.01)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--markdown", type=Path, metavar="PATH")
    s.set_defaults(func=cmd_history)
