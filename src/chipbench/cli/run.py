"""`chipbench run`: one process, a torchrun job, or a sweep over process counts."""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from chipbench import workloads
from chipbench.cli.device_args import add_device_args
from chipbench.cli.output import (
    EXIT_INTERRUPTED,
    count,
    error,
    finite,
    index,
    plain,
    print_notes,
    print_table,
    say,
    seconds,
    warn,
)
from chipbench.core import price, text
from chipbench.core.cases import Case
from chipbench.core.config import parse_sets
from chipbench.core.dtypes import DTYPE_CHOICES
from chipbench.core.errors import StartFailed, UsageError
from chipbench.core.fileio import check_apart, check_writable
from chipbench.core.registry import SUITES
from chipbench.execution.options import Destination, Listener, RunOptions
from chipbench.execution.pools import DistWorkerPool, Launch, WorkerPool, kill_tree
from chipbench.execution.probe import PROBE_S
from chipbench.execution.session import Executed, execute, hold_signals
from chipbench.results import document, files
from chipbench.results.header import RunSummary
from chipbench.results.outcomes import CaseOutcome
from chipbench.results.render import (
    RESULTS_COLUMNS,
    disturbed_summary,
    flags_summary,
    legend,
    results_legend,
    results_table,
    roofline_lines,
    time_line,
)
from chipbench.results.typed import ResultsDocument

SUITE_BUDGET_S = {"smoke": 0.3, "default": 3.0, "full": 10.0}


class Progress:
    """A rich progress bar with ETA on a terminal; plain lines under CI or when piped."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total, self.quiet, self.i = total, quiet, 0
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Progress:
        if not self.quiet and not plain():
            from rich import progress as bar
            from rich.table import Column

            self.bar = bar.Progress(
                # The case's name cut to fit: the bar, counts and times stay on one line at 80 columns.
                bar.TextColumn("{task.description}", markup=False, table_column=Column(max_width=36, no_wrap=True, overflow="ellipsis")),
                bar.BarColumn(),
                bar.TextColumn("{task.completed}/{task.total}"), bar.TimeElapsedColumn(), bar.TimeRemainingColumn(),
            )  # fmt: skip
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def start(self, case: Case) -> None:
        self.i += 1
        if self.bar is not None:
            self.bar.update(self.task, description=case.name)

    def done(self, oc: CaseOutcome) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)
        if self.quiet:
            return
        if oc.ok:
            m = oc.payload["measurement"]
            med = float(np.median(m["samples"]))  # the table's median (interpolated), the same figure
            line = f"[{self.i}/{self.total}] {oc.case.name}: median {med * 1e3:.4g} ms over {len(m['samples'])} samples"
        else:
            line = f"[{self.i}/{self.total}] {oc.case.name}: ERROR {oc.payload.get('error_type')}: {oc.payload.get('message')}"
        if self.bar is not None:
            self.bar.console.print(text.terminal(line), markup=False, highlight=False)
        else:
            say(line)


def run_cases(
    cases: list[Case],
    *,
    pool: WorkerPool,
    options: RunOptions,
    destination: Destination,
    preflight: bool,
    quiet: bool = False,
    price_for: Callable[[str], price.Price | None] | None = None,
) -> Executed:
    """A session with the terminal's progress and warnings."""
    progress = Progress(len(cases), quiet)
    with progress:
        hear = Listener(progress.start, progress.done, None if quiet else warn)
        return execute(
            cases, pool=pool, options=options, destination=destination, listener=hear, preflight=preflight,
            price_for=price_for,
        )  # fmt: skip


def _nprocs(value: str | None) -> list[int | None]:
    """--nproc-per-node: N, or a sweep N1,N2,... (each a separate job, one results file)."""
    if value is None:
        return [None]
    try:
        got = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--nproc-per-node takes N or a list like 1,2,4; got {value!r}") from None
    if not got or min(got) < 1:
        raise UsageError(f"--nproc-per-node values must be >= 1; got {value!r}")
    return list(dict.fromkeys(got))


MAX_DIST_TIMEOUT_S = (2**31 - 1) // 1000
"""The longest collective time-out every torch.distributed backend takes (some hold it as 32-bit ms)."""
MAX_NPROC_PER_NODE = 1024
"""More processes than this on one node is a typo, not a job (torchrun would start them all)."""


def _launch_spec(args: argparse.Namespace, nproc: int | None) -> Launch | None:
    """The torchrun launch the flags ask for, or None for a one-process run."""
    nnodes = args.nnodes
    if nproc is None and nnodes == 1 and args.rdzv_endpoint is None:
        return None
    nproc = nproc or 1
    # --nnodes >= 1, --node-rank >= 0 and --dist-timeout > 0 are their argparse types' checks.
    if args.node_rank >= nnodes:
        raise UsageError(f"--node-rank must be in 0..{nnodes - 1}, got {args.node_rank}")
    if nproc > MAX_NPROC_PER_NODE:
        raise UsageError(
            f"--nproc-per-node {nproc} is more processes than one node runs (at most {MAX_NPROC_PER_NODE})"
        )
    if args.dist_timeout > MAX_DIST_TIMEOUT_S:
        raise UsageError(
            f"--dist-timeout {args.dist_timeout:g} is longer than torch.distributed takes "
            f"(at most {MAX_DIST_TIMEOUT_S} s: 2^31 ms, about 24 days)"
        )
    if nproc * nnodes == 1:
        return None
    spec = Launch(nproc, nnodes, args.node_rank, args.rdzv_endpoint, args.dist_timeout)
    spec.torchrun_args()  # validates the endpoint
    return spec


def _sigterm_as_interrupt(*_: object) -> None:
    # CI cancellation and `kill` send SIGTERM: treat it as Ctrl-C, so the worker (or the torchrun job,
    # which runs in its own session) is killed and the benchmarks that finished are saved.
    raise KeyboardInterrupt


def check_outputs(output: Path | None, markdown: Path | None) -> None:
    """Before any worker starts: every output path can be written (one line otherwise), and an existing
    --output is about to be replaced (a warning)."""
    if output is not None:
        check_writable(output, "--output")
        if output.exists():
            warn(f"--output {output} exists and will be replaced when this run finishes")
    else:
        check_writable(Path("results"), "the results folder", folder=True)
    if markdown is not None:
        check_writable(markdown, "--markdown")


def cmd_run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    check_apart(
        [("--output", args.output), ("--markdown", args.markdown)], [("--price-file", args.price_file)]
    )
    check_outputs(args.output, args.markdown)
    # A bad price file is one line before any worker starts; read once for every job of a sweep.
    args.price_entries = price.load_file(args.price_file) if args.price_file else None
    for flag, v in (("--price-per-hour", args.price_per_hour), ("--price-per-kwh", args.price_per_kwh)):
        if v is not None and v <= 0:
            raise UsageError(f"{flag} must be a number of dollars > 0, got {v:g}")

    worlds = _nprocs(args.nproc_per_node)
    if args.soak and (any(w and w > 1 for w in worlds) or args.nnodes > 1):
        # Each rank would soak by its own clock, so ranks would take different numbers of collective steps.
        raise UsageError(
            "--soak runs in one process only; drop --nproc-per-node/--nnodes, or soak in a separate run"
        )
    if len(worlds) > 1 and (args.nnodes > 1 or args.rdzv_endpoint):
        raise UsageError("a --nproc-per-node sweep runs on one node; give one value with --nnodes")
    specs = [_launch_spec(args, n) for n in worlds]
    for spec in specs:
        world = spec.nproc_per_node * spec.nnodes if spec else 1
        # Validate every case before starting a job of many processes.
        workloads.build_cases(args.benchmarks, args.suite, parse_sets(args.set), None, world)
    if specs[0] is not None and specs[0].node_rank != 0:
        return _run_follower(args, specs[0])
    if len(specs) == 1:
        return _run_one(args, specs[0], write=True).exit_code
    docs: list[ResultsDocument] = []
    failed: list[RunSummary] = []
    code = 0
    for spec in specs:
        try:
            done = _run_one(args, spec, write=False)
        except StartFailed as exc:  # keep the counts that ran
            n = spec.nproc_per_node if spec else 1
            error(f"{n} process(es): {exc}")
            failed.append(RunSummary(world_size=n, start_failed=str(exc)))
            code = max(code, 1)
            continue
        docs.append(done.doc)
        code = max(code, done.exit_code)
        if done.exit_code == EXIT_INTERRUPTED:
            break
    if not docs:
        return code
    with hold_signals() as held:
        merged = document.merge(docs)
        merged = replace(
            merged, chipbench=replace(merged.header, runs=(merged.header.runs or ()) + tuple(failed))
        )
        saved = files.save(merged, args.output)
        if saved.fallback_reason:
            warn(saved.fallback_reason)
        if args.markdown:
            _write_markdown(merged, args.markdown, saved.path)
    code = EXIT_INTERRUPTED if held.received else code
    _report(merged, saved.path, code, args.verbose)
    return code


def _write_markdown(doc: ResultsDocument, path: Path, results: Path) -> None:
    try:
        files.write_markdown(doc, path)
    except OSError as exc:
        warn(f"could not write {path} ({exc.strerror or exc}); the results are in {results}")


def _run_one(args: argparse.Namespace, spec: Launch | None, write: bool) -> Executed:
    world = spec.nproc_per_node * spec.nnodes if spec else 1
    # Launch the worker first: it imports torch while the arguments are validated here.
    pool = DistWorkerPool(args.device, spec) if spec else WorkerPool(args.device)
    pool.launch()
    try:
        return _run(args, pool, world, write)
    finally:
        pool.kill()
        pool.close()


def _run_follower(args: argparse.Namespace, spec: Launch) -> int:
    """Nodes other than 0 only host ranks: rank 0, on node 0, receives the cases and writes results."""
    print(
        f"node {spec.node_rank}: hosting ranks for node 0's run; results are written on node 0",
        file=sys.stderr,
    )
    proc = subprocess.Popen(
        spec.command(sys.executable, args.device, "-"),
        env={**os.environ, **spec.env()},
        start_new_session=True,
    )
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        kill_tree(proc)
        return EXIT_INTERRUPTED
    if code:
        error(f"this node's ranks failed (torchrun exit code {code})")
    return 1 if code else 0


def _run(args: argparse.Namespace, pool: WorkerPool, world: int = 1, write: bool = True) -> Executed:
    sets = parse_sets(args.set)
    dtype = None if args.dtype == "auto" else args.dtype
    cases = workloads.build_cases(args.benchmarks, args.suite, sets, dtype, world)
    if not cases:
        raise UsageError("nothing to run: no benchmark matches; see `chipbench list`")
    suite = args.suite or (None if args.benchmarks else "smoke")
    done = run_cases(
        cases,
        pool=pool,
        options=run_options(args, suite),
        destination=Destination(suite, list(sys.argv), args.output, args.markdown, write),
        preflight=bool(args.benchmarks),
        price_for=_price_for(args),
    )
    if write:
        _report(done.doc, done.path, done.exit_code, args.verbose)
    return done


def run_options(args: argparse.Namespace, suite: str | None) -> RunOptions:
    """The run's options from its flags: the suite's time budget unless --time-budget says otherwise."""
    budget = args.time_budget if args.time_budget is not None else SUITE_BUDGET_S.get(suite or "default", 3.0)
    return RunOptions(
        time_budget_s=budget, timeout_s=args.timeout, energy=args.energy, soak_s=args.soak or 0.0,
        probe_s=0.0 if args.no_probe else probe_budget(),
    )  # fmt: skip


PROBE_ENV = "CHIPBENCH_PROBE_S"
"""Each host-probe measurement's budget in seconds, where not the default (the tests set a tiny one)."""


def probe_budget() -> float:
    """The host probe's budget per measurement: $CHIPBENCH_PROBE_S, else the default."""
    raw = os.environ.get(PROBE_ENV, "").strip()
    if not raw:
        return PROBE_S
    try:
        v = float(raw)
    except ValueError:
        v = -1.0
    if not (v == 0 or (math.isfinite(v) and v > 0)):
        raise UsageError(f"{PROBE_ENV}={raw!r}: give the probe's seconds per measurement (0: no probe)")
    return v


def _price_for(args: argparse.Namespace) -> Callable[[str], price.Price | None]:
    def pick(machine_id: str) -> price.Price | None:
        return price.resolve(machine_id, per_hour=args.price_per_hour, per_kwh=args.price_per_kwh,
                             file=args.price_file, entries=args.price_entries)  # fmt: skip

    return pick


def _report(doc: ResultsDocument, path: Path | None, code: int, verbose: bool = False) -> None:
    rows = results_table(doc)
    print_table("chipbench results", list(RESULTS_COLUMNS), rows, compact=True)
    spent = time_line(doc)
    probe = [doc.header.host_probe.describe()] if doc.header.host_probe is not None else []
    print_notes(
        [
            *legend(doc),
            results_legend(rows),
            *roofline_lines(doc, short=True),
            *([spent] if spent else []),
            *probe,
        ]
    )
    if verbose:
        for b in doc.benchmarks:
            for flag in b.extra_info.flags:
                warn(f"{b.name}: {flag}")
            if b.extra_info.disturbed:
                warn(f"{b.name}: measured on a disturbed machine ({b.extra_info.disturbed})")
    for line in (flags_summary(doc), disturbed_summary(doc)):
        if line:
            warn(line)
    if path:
        print(f"results: {path}")
    if code == EXIT_INTERRUPTED:
        n = len(doc.benchmarks) + len(doc.errors)
        if path:
            say(f"interrupted: saved the {n} benchmark(s) that finished to {path}", err=True)
        else:
            say("interrupted: no benchmark had finished; nothing was saved", err=True)
    elif code:
        for e in doc.errors:
            error(f"{e.name}: {e.error_type}: {e.message}")
        print(f"{len(doc.errors)} benchmark(s) failed; see the errors in {path}", file=sys.stderr)


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("run", help="run benchmarks or a suite and write a results file")
    s.add_argument(
        "benchmarks", nargs="*", metavar="BENCH", help="benchmark names (default: the smoke suite)"
    )
    s.add_argument("--suite", choices=SUITES)
    add_device_args(s)
    s.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    s.add_argument("--time-budget", type=seconds, metavar="SECONDS", help="timed-round budget per benchmark")
    s.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help="kill a benchmark after this long (default 20x budget, >= 120 s)",
    )
    s.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="results file (default results/local/<machine-id>/<time>_<commit>.json)",
    )
    s.add_argument("--markdown", type=Path, metavar="PATH", help="also write the summary table as Markdown")
    s.add_argument(
        "-v", "--verbose", action="store_true",
        help="a warning per case measured on a disturbed machine or with a flagged figure (default: one line each)",
    )  # fmt: skip
    s.add_argument(
        "--no-probe", action="store_true",
        help="no host probe (a short matmul and copy at the start and end: the run's drift reference)",
    )  # fmt: skip
    e = s.add_argument_group("energy and cost")
    e.add_argument(
        "--energy", choices=("auto", "on", "off"), default="auto",
        help="an energy phase after each benchmark: where a counter exists (auto), required (on), never (off)",
    )  # fmt: skip
    e.add_argument("--price-per-hour", type=finite, metavar="USD", help="what an hour of this machine costs")
    e.add_argument(
        "--price-per-kwh", type=finite, metavar="USD", help="what a kWh costs (with measured energy)"
    )
    e.add_argument(
        "--price-file", type=Path, metavar="TOML", help='[machine."<id>"] price_per_hour = ... tables'
    )
    e.add_argument(
        "--soak", type=seconds, metavar="SECONDS",
        help="run each step this long before timing (sustained clocks; telemetry recorded)",
    )  # fmt: skip
    g = s.add_argument_group("multi-process runs (torchrun)")
    g.add_argument(
        "--nproc-per-node",
        metavar="N",
        help="processes on this node (one per device); a list (1,2,4) runs each count and adds scaling efficiency",
    )
    g.add_argument("--nnodes", type=count, default=1, metavar="M", help="nodes in the job (default 1)")
    g.add_argument(
        "--node-rank", type=index, default=0, metavar="R", help="this node's rank; node 0 writes results"
    )
    g.add_argument(
        "--rdzv-endpoint", metavar="HOST:PORT", help="node 0's address and a free port (multi-node)"
    )
    g.add_argument(
        "--dist-timeout",
        type=seconds,
        default=300.0,
        metavar="SECONDS",
        help="collective time-out: a rank waiting this long on a dead or hung peer fails (default 300)",
    )
    s.set_defaults(func=cmd_run)
