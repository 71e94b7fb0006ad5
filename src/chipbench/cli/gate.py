"""`chipbench compare`, `ab` and `history`: the performance gate's commands."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from chipbench import workloads
from chipbench.cli import history as history_cli
from chipbench.cli.device_args import add_device_args
from chipbench.cli.output import Parser, count, finite, print_notes, print_table, say, seconds, warn
from chipbench.core.cases import Case
from chipbench.core.config import parse_sets
from chipbench.core.errors import UsageError
from chipbench.core.fileio import check_apart, check_writable, write_text_or_elsewhere
from chipbench.core.registry import SUITES
from chipbench.gate import ab, confirm, drift, history
from chipbench.gate.baseline import Side, choose_baseline, load_side, machine_differences
from chipbench.gate.compare import (
    COLUMNS,
    EMPTY_EXIT,
    Comparison,
    compare_sides,
    exit_code,
    no_verdict,
    rows,
    summary_line,
    to_json,
    to_markdown,
)
from chipbench.gate.thresholds import Thresholds, load_thresholds, parse_threshold


def report(
    comps: list[Comparison],
    *,
    title: str,
    label: str | None,
    as_json: bool,
    markdown: Path | None,
    strict: bool,
    extra: Mapping[str, object],
    allow_empty: bool = False,
) -> int:
    """Print the table (or JSON), write the Markdown, return the exit code; where nothing was compared,
    one line says why."""
    code = exit_code(comps, strict, allow_empty)
    empty = no_verdict(comps)
    if markdown:
        write_output(markdown, to_markdown(title, comps, label) + (f"\n{empty}\n" if empty else ""))
    if as_json:
        out = to_json(comps, **extra, cross_machine=label, exit_code=code)
        print(json.dumps({**out, "no_verdict": empty} if empty else out, indent=2))
    else:
        if label:
            say(label)
        print_table(title, list(COLUMNS), rows(comps))
        print(summary_line(comps))
    if empty:
        say(empty + (f" (exit {EMPTY_EXIT}; --allow-empty to pass)" if code == EMPTY_EXIT else ""), err=True)
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


def _compare_sides(args: argparse.Namespace) -> tuple[str, Side, Side]:
    """(what the base is, the base side narrowed, the new side): BASE NEW, or --base-store URL NEW."""
    if args.base_store is None:
        new = load_side([args.new])
        return str(args.base), choose_baseline(load_side([args.base]), new, args.base_last), new
    from chipbench.gate import stored  # sqlalchemy is needed only here

    new = load_side([args.new])
    return "the store", stored.base_side(args.base_store, new, branch=args.branch, last=args.base_last), new


def cmd_compare(args: argparse.Namespace) -> int:
    th = _thresholds(args)
    if args.base_store is not None:  # one path: NEW
        if args.new is not None:
            raise UsageError(
                "compare reads its base from a folder (BASE) or a store (--base-store), not both"
            )
        args.base, args.new = None, args.base
    elif args.new is None:
        raise UsageError("compare needs BASE and NEW (or --base-store URL and NEW)")
    elif args.branch is not None:
        raise UsageError("--branch picks the base runs of a store: give it with --base-store")
    paths = [("BASE", args.base), ("NEW", args.new), ("--thresholds", args.thresholds)]
    check_apart([("--markdown", args.markdown)], [(k, v) for k, v in paths if v is not None])
    if args.markdown:
        check_writable(args.markdown, "--markdown")
    where, base, new = _compare_sides(args)
    diffs = machine_differences(base.docs, new.docs)
    label = None
    if diffs:
        if not args.allow_cross_machine:
            raise UsageError(
                f"results come from different machines ({'; '.join(diffs)}); "
                "pass --allow-cross-machine to compare anyway"
            )
        label = f"CROSS-MACHINE comparison, not a regression gate: {'; '.join(diffs)}"
    comps = compare_sides(base, new, th, ignore_version_hash=args.ignore_version_hash, family_wise=True)
    new_probes = drift.probes_of(new.files, new.docs)
    drift.judge(comps, drift.probes_of(base.files, base.docs), {k: e.files for k, e in new.entries.items()},
                new_probes)  # fmt: skip
    host = drift.host_drift(drift.probes_of(base.files, base.docs).values(), new_probes.values())
    code = report(
        comps,
        title=f"chipbench compare: {where} -> {args.new}",
        label=label,
        as_json=args.json,
        markdown=args.markdown,
        strict=args.strict,
        extra={"base": [str(f) for f in base.files], "new": [str(f) for f in new.files],
               "host_drift": {"matmul": host.matmul, "copy": host.copy, "note": host.note}},
        allow_empty=args.allow_empty,
    )  # fmt: skip
    notes = [
        host.describe() + ("; `probe M|C` in a note: over that case's own files" if host.note == "" else "")
    ]
    if base.files:
        shown = ", ".join(f.name for f in base.files[:6]) + (" ..." if len(base.files) > 6 else "")
        notes.append(
            f"baseline: per case the newest runs at one version hash, from {len(base.files)} file(s): {shown}"
        )
    if not args.json:
        print_notes(notes)  # folded to the terminal's width
    # Across machines the verdicts are information, never a gate: exit 0 whatever they say.
    return 0 if label else code


def _ab_sides(args: argparse.Namespace) -> tuple[dict[str, str], list[Case], list[Case] | None]:
    """Each side's python and cases: two environments (--a, --b), two configs (--a-set, --b-set; this
    python unless --a/--b name others), or both."""
    configs = bool(args.a_set or args.b_set)
    if not configs and (args.a is None or args.b is None):
        raise UsageError(
            "ab needs two sides: --a and --b (two environments), or --a-set/--b-set KEY=VALUE (two configs)"
        )
    pys = {
        s: ab.resolve_python(v, f"--{s}") if v else sys.executable for s, v in (("a", args.a), ("b", args.b))
    }
    sets = parse_sets(args.set)
    cases = workloads.build_cases(
        args.benchmarks, args.suite, {**sets, **parse_sets(args.a_set, "--a-set")}, None
    )
    if not cases:
        raise UsageError("nothing to run: no benchmark matches; see `chipbench list`")
    if not configs:
        return pys, cases, None
    b_cases = workloads.build_cases(
        args.benchmarks, args.suite, {**sets, **parse_sets(args.b_set, "--b-set")}, None
    )
    return pys, cases, b_cases


def cmd_ab(args: argparse.Namespace) -> int:
    th = _thresholds(args)  # --rounds and --time-budget: checked by their argparse types (and run_ab)
    pys, cases, b_cases = _ab_sides(args)
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
    got = ab.run_ab(cases, options, b_cases)
    if not args.json:
        print(f"results: {got.paths['a']}, {got.paths['b']}")
        if got.rounds < args.rounds:
            say(f"stopped after {got.rounds} of at most {args.rounds} rounds: every case was decided")
    extra = {"a": pys["a"], "b": pys["b"], "rounds": got.rounds, "max_rounds": args.rounds,
             "confidence": got.confidence, "output_dir": str(out_dir), "a_set": args.a_set or [],
             "b_set": args.b_set or []}  # fmt: skip
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
        allow_empty=args.allow_empty,
    )


CONFIRM_COLUMNS = ("benchmark", "before", "after", "history", "status", "ab_verdict", "ab_ratio", "ci95",
                   "rounds", "note")  # fmt: skip


def cmd_confirm(args: argparse.Namespace) -> int:
    """History's suspects, each measured again by an interleaved A/B of its two commits."""
    mag = parse_threshold(args.min_magnitude, "--min-magnitude")
    if not 0 < args.p_value < 1:
        raise UsageError(f"--p-value must be between 0 and 1, got {args.p_value}")
    options = confirm.ConfirmOptions(
        repo=args.repo, work_dir=args.work_dir or Path(tempfile.gettempdir()) / f"chipbench-confirm-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}",
        python=sys.executable, thresholds=_thresholds(args), budget_s=args.budget, rounds=args.rounds,
        min_rounds=args.min_rounds, time_budget_s=args.time_budget, device=args.device, keep=args.keep,
        offline=args.offline,
        on_event=lambda line: say(line, err=True),
    )  # fmt: skip
    if not (args.repo / ".git").exists():
        raise UsageError(
            f"--repo {args.repo} is not a git checkout; give the repository that holds the commits"
        )
    mid, docs = history.load_history(args.dir, args.machine_id)
    options = replace(options, machine_id=mid)
    per, _ = history.series(docs, args.benchmark)
    probes = drift.probes_of([f for f, _ in docs], [d for _, d in docs])
    cps: list[history.ChangePoint] = []
    for name in sorted(per):
        found = history.detect(name, per[name], p_value=args.p_value, min_magnitude=mag)
        history.against_probe(found, per[name], probes)
        cps.extend(c for c in found if c.direction != "host drift")  # the host moved: nothing to confirm
    cps.sort(key=lambda c: -abs(c.ratio - 1))  # the largest first
    picked = cps[: args.max_suspects]
    say(
        f"{len(cps)} suspect(s) in {args.dir}; confirming the {len(picked)} largest, {args.budget:.0f} s of rounds each"
    )
    suspects = confirm.suspects_of(
        [(c.benchmark, c.previous_commit, c.commit, c.direction, c.ratio) for c in picked], docs
    )
    got = confirm.confirm(suspects, options)
    if args.json:
        print(json.dumps([{**asdict(c), "suspect": {**asdict(c.suspect), "case": c.suspect.case.name}} for c in got],
                         indent=2, default=str))  # fmt: skip
    else:
        print_table(
            f"chipbench confirm: {len(got)} suspect(s) of {args.dir}",
            list(CONFIRM_COLUMNS),
            _confirm_rows(got),
        )
        counts = {s: sum(c.status == s for c in got) for s in ("confirmed", "not confirmed", "inconclusive")}
        print(", ".join(f"{n} {s}" for s, n in counts.items()))
    regressed = any(c.status == "confirmed" and c.suspect.direction == "regression" for c in got)
    return 1 if regressed else 0


def _confirm_rows(got: list[confirm.Confirmation]) -> list[list[str]]:
    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    return [
        [
            c.suspect.name,
            c.suspect.before[:12],
            c.suspect.after[:12],
            f"{c.suspect.ratio:.3f} {c.suspect.direction}",
            c.status,
            c.verdict or "-",
            num(c.ratio),
            f"[{num(c.ci[0])}, {num(c.ci[1])}]" if c.ci else "-",
            str(c.rounds),
            c.note,
        ]
        for c in got
    ]


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
    s.add_argument(
        "--allow-empty", action="store_true", help=f"exit 0, not {EMPTY_EXIT}, when nothing was compared"
    )


class _Intermixed(Parser):
    """compare's parser: BASE and NEW on either side of options (`compare BASE --base-last 2 NEW`). With
    NEW optional (--base-store takes BASE's place), argparse alone would fill it empty at BASE and leave the
    real NEW unrecognized; intermixed parsing reads every option first, then the positionals."""

    _inner = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        if self._inner:  # parse_known_intermixed_args' own two passes
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("compare", help="compare two results files or folders: the CI regression gate")
    s.__class__ = _Intermixed
    s.add_argument("base", type=Path, metavar="BASE", help="baseline results file or folder (or NEW)")
    s.add_argument("new", nargs="?", type=Path, metavar="NEW", help="new results file or folder")
    _gate_options(s)
    s.add_argument("--allow-cross-machine", action="store_true", help="compare results of different machines")
    s.add_argument(
        "--base-last", type=count, metavar="K", help="per case, only the newest K baseline runs at its hash"
    )
    s.add_argument(
        "--base-store", metavar="URL", help="the baseline runs from a store (then give NEW alone), not BASE"
    )
    s.add_argument("--branch", metavar="B", help="with --base-store: only the base runs of this branch")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser(
        "ab",
        help="interleaved A/B runs of two environments (venvs or pythons) or two configs on this machine",
    )
    s.add_argument(
        "--a", metavar="PYTHON_OR_VENV", help="baseline environment (default with --a-set: this one)"
    )
    s.add_argument(
        "--b", metavar="PYTHON_OR_VENV", help="candidate environment (default with --b-set: this one)"
    )
    s.add_argument(
        "--a-set", action="append", metavar="KEY=VALUE", help="side A's config: override a field (repeatable)"
    )
    s.add_argument(
        "--b-set", action="append", metavar="KEY=VALUE",
        help="side B's config (an A/B of a config change: each case matched to A's as one)",
    )  # fmt: skip
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
    add_device_args(s)
    s.add_argument("--output-dir", type=Path, metavar="DIR", help="where a.json and b.json go")
    _gate_options(s)
    s.set_defaults(func=cmd_ab)

    _confirm_parser(sub)

    history_cli.add_parsers(sub)


def _confirm_parser(sub: Any) -> None:
    s = sub.add_parser(
        "confirm", help="history's suspects, each measured again by an A/B of its two commits (worktrees)"
    )
    s.add_argument("dir", type=Path, metavar="DIR", help="folder of results files (one machine)")
    s.add_argument("--benchmark", metavar="GLOB", help="only benchmarks whose name or group matches")
    s.add_argument("--machine-id", help="the machine to analyse when DIR holds several")
    s.add_argument("--min-magnitude", default="5%", help="smallest change of the median that counts (5%%)")
    s.add_argument("--p-value", type=finite, default=0.01, help="Welch t-test significance level (0.01)")
    s.add_argument(
        "--repo", type=Path, default=Path("."), help="the git repository of the commits (default .)"
    )
    s.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="worktrees, environments and A/B results (default: a temp folder)",
    )
    s.add_argument(
        "--max-suspects", type=count, default=10, help="confirm the N largest suspects (default 10)"
    )
    s.add_argument(
        "--budget", type=seconds, default=300.0, metavar="SECONDS",
        help="interleaved rounds per suspect (default 300; each commit's set-up apart)",
    )  # fmt: skip
    s.add_argument("--rounds", type=count, default=20, help="most interleaved rounds (default 20)")
    s.add_argument(
        "--min-rounds", type=count, default=3, help="first look after this many rounds (default 3)"
    )
    s.add_argument("--time-budget", type=seconds, default=0.3, metavar="SECONDS", help="per case and round")
    add_device_args(s)
    s.add_argument("--keep", action="store_true", help="keep the worktrees and their environments")
    s.add_argument(
        "--offline", action="store_true", help="never use the package index to set up an older commit"
    )
    s.add_argument("--threshold", default="5%", help="relative change that counts (default 5%%)")
    s.add_argument("--thresholds", type=Path, metavar="FILE.toml", help="per-benchmark thresholds")
    s.add_argument("--noise-floor-us", type=finite, metavar="US", help="differences below this are unchanged")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_confirm)
