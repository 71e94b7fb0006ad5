"""`chipbench history`: change points in one machine's results, from a folder of results files or a store."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chipbench.cli.output import finite, print_table, say, warn
from chipbench.core.errors import UsageError
from chipbench.core.fileio import check_apart, check_writable, write_text_or_elsewhere
from chipbench.gate import drift, history
from chipbench.gate.compare import EMPTY_EXIT, RERUN_EXIT
from chipbench.gate.thresholds import parse_threshold


def _analysed(args: argparse.Namespace, mag: float) -> tuple[str, str, history.Analysed]:
    """(machine id, where from, the history analysed) from DIR or --store."""
    if args.store is not None and args.dir is not None:
        raise UsageError("history reads a folder (DIR) or a store (--store URL), not both: drop one")
    if args.store is not None:
        from chipbench.gate import stored  # sqlalchemy is needed only here

        got = stored.history_of(
            args.store, args.machine_id, args.benchmark, p_value=args.p_value, min_magnitude=mag
        )
        return got.machine_id, f"{got.machine_id} in the store", got
    if args.dir is None:
        raise UsageError("history needs a folder of results files (DIR) or a store (--store URL)")
    mid, docs = history.load_history(args.dir, args.machine_id)
    runs = [history.record(f, d) for f, d in docs]
    return mid, str(args.dir), history.analyse_runs(mid, runs, args.benchmark, p_value=args.p_value,
                                                    min_magnitude=mag)  # fmt: skip


def cmd_history(args: argparse.Namespace) -> int:
    mag = parse_threshold(args.min_magnitude, "--min-magnitude")
    check_apart([("--markdown", args.markdown)], [("DIR", args.dir)] if args.dir is not None else [])
    if args.markdown:
        check_writable(args.markdown, "--markdown")
    if not 0 < args.p_value < 1:
        raise UsageError(f"--p-value must be between 0 and 1, got {args.p_value}")
    mid, where, got = _analysed(args, mag)
    per, disturbed = got.per, got.disturbed
    if not per and not disturbed:
        raise UsageError(f"no benchmark under {where} matches {args.benchmark!r}")
    cps = [c for a in got.analyses for c in a.change_points]
    drifts = [d for a in got.analyses for d in a.drifts]
    noise = {
        a.benchmark: None if a.noise is None else {"sd": a.noise.sd, "runs": a.noise.runs, "df": a.noise.df}
        for a in got.analyses
    }
    probes = [r.probe for r in got.runs]
    title = (
        f"chipbench history: {len(got.runs)} results of {mid}, {len(per)} benchmark(s), "
        f"{len(cps)} change point(s) of code or stack, {len(drifts)} host drift "
        f"(p < {args.p_value:g}, |ratio - 1| >= {mag:.3g})"
    )
    if args.markdown:
        _, failed = write_text_or_elsewhere(args.markdown, history.to_markdown(title, cps, drifts))
        if failed:
            warn(failed)
    why = _history_empty(per, disturbed)
    rerun = [d for d in disturbed if d.newest]
    if args.json:
        out = {"machine_id": mid, "files": len(got.runs), "change_points": [asdict(c) for c in cps],
               "host_drift": [asdict(d) for d in drifts], "noise": noise,
               "host_probe": drift.series_lines(probes), "disturbed": [asdict(d) for d in disturbed]}  # fmt: skip
        if why:
            out["note"] = why
        print(json.dumps(out, indent=2))
    else:
        print_table(title, list(history.COLUMNS), history.rows(cps))
        for line in drift.series_lines(probes):
            say(line)
        if drifts:
            print_table(
                "host drift: the same code on the same stack moved (not a regression)",
                list(history.DRIFT_COLUMNS),
                history.drift_rows(drifts),
            )
        for d in disturbed:
            say(f"left out {d.benchmark} of {d.file}: disturbed{': rerun' if d.newest else ''} ({d.why})")
    # The newest run of a benchmark was disturbed: its change cannot be told yet, so CI runs it again.
    code = RERUN_EXIT if rerun else EMPTY_EXIT if why and not args.allow_empty else 0
    if why:
        say(why + (f" (exit {EMPTY_EXIT}; --allow-empty to pass)" if code == EMPTY_EXIT else ""), err=True)
    return code


def _history_empty(per: Mapping[str, list[history.Point]], disturbed: list[history.Disturbed]) -> str | None:
    """Why the history holds no verdict at all, or None."""
    if not per:
        return f"no verdict: every run of the matching benchmarks was disturbed ({len(disturbed)}): rerun"
    longest = max(len(p) for p in per.values())
    if longest >= history.MIN_POINTS:
        return None
    commits = len({p.commit for pts in per.values() for p in pts})
    return (
        f"no verdict: no change can be found with fewer than {history.MIN_POINTS} results of a benchmark "
        f"(the longest history here has {longest}, from {commits} commit(s))"
    )


def add_parsers(sub: Any) -> None:
    s = sub.add_parser(
        "history", help="change points in one machine's results: a folder of results files, or a store"
    )
    s.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="folder of results files")
    s.add_argument(
        "--store",
        metavar="URL",
        help="read the runs from a store (a SQLite path or postgresql://...), not DIR",
    )
    s.add_argument("--benchmark", metavar="GLOB", help="only benchmarks whose name or group matches")
    s.add_argument("--machine-id", help="the machine to analyse when DIR (or the store) holds several")
    s.add_argument("--min-magnitude", default="5%", help="smallest change of the median that counts (5%%)")
    s.add_argument(
        "--p-value", type=finite, default=0.01, help="false change points per benchmark, about (0.01)"
    )
    s.add_argument(
        "--allow-empty", action="store_true", help=f"exit 0, not {EMPTY_EXIT}, when nothing can be told"
    )
    s.add_argument("--json", action="store_true")
    s.add_argument("--markdown", type=Path, metavar="PATH")
    s.set_defaults(func=cmd_history)
