"""The `chipbench` command: a thin layer over bench, runner, results and hardware."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from chipbench.errors import StartFailed, UsageError

SUITE_BUDGET_S = {"smoke": 0.3, "default": 3.0, "full": 10.0}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: what was wrong and where to look.
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _plain() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true") or not sys.stdout.isatty()


def _print_table(title: str, columns: tuple[str, ...] | list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(Text(c) for c in r))  # names like calib.copy[size_mib=16] are not markup
    Console(width=None if not _plain() else 160).print(table)


# ---------------------------------------------------------------- list / describe


def cmd_list(args: argparse.Namespace) -> int:
    from chipbench import bench

    if args.suite:
        cases = bench.suite_cases(args.suite)
        for c in cases:
            print(c.name)
        return 0
    for name, b in bench.registry().items():
        suites = ",".join(s for s in bench.SUITES if b.suites.get(s))
        print(f"{name:28s} {b.doc}  [suites: {suites}]")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from chipbench import bench
    from chipbench.config import config_dict, parse_sets

    b = bench.get(args.bench)
    cfg = b.config(parse_sets(args.set))
    out: dict[str, Any] = {"benchmark": b.name, "doc": b.doc, "config": config_dict(cfg), **b.describe(cfg)}
    out["version_hash"] = b.version_hash(cfg)
    world = (args.nproc_per_node or 1) * args.nnodes
    if world < 1:
        raise UsageError("--nproc-per-node and --nnodes must be >= 1")
    if world > 1:
        if b.plan is None:
            out["plan"] = f"{b.name} runs one copy per process (no sharding): each rank holds it all"
        else:
            kind = args.device if args.device != "auto" else "cpu"
            out["plan"] = b.plan(cfg, world, kind)
        out["world_size"] = world
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        rows = [[k, json.dumps(v, default=str) if not isinstance(v, str) else v] for k, v in out.items()]
        _print_table(f"{b.name}", ["field", "value"], rows)
    return 0


# ---------------------------------------------------------------- env


def cmd_env(args: argparse.Namespace) -> int:
    from chipbench import ceilings, hardware, peaks

    kind = hardware.resolve_device(args.device, hardware.available_kinds())
    env = hardware.environment(kind)
    mid = hardware.machine_id(env)
    ceil = ceilings.load(mid)
    dtype, why = hardware.auto_dtype(env, ceil)
    peak = peaks.lookup(env["device"]["name"])
    env["machine_id"] = mid
    env["auto_dtype"] = {"dtype": dtype, "reason": why}
    env["peak"] = (
        {"name": peak.name, "tflops": peak.tflops, "mem_tbps": peak.mem_tbps}
        if peak
        else {"none": f"no published peak for {env['device']['name']!r}; use `chipbench calibrate` ceilings"}
    )
    env["ceilings"] = ceil or {"none": "not calibrated: run `chipbench calibrate`"}
    if args.json:
        print(json.dumps(env, indent=2, default=str))
        return 0
    rows: list[list[str]] = []

    def add(prefix: str, d: dict[str, Any]) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and k not in ("isa", "tflops"):
                add(f"{prefix}{k}.", v)
            elif k == "isa":
                rows.append(
                    [f"{prefix}{k}", " ".join(f for f, on in v.items() if on) or "(none of interest)"]
                )
            elif k.endswith("_bytes") and isinstance(v, int):
                rows.append([f"{prefix}{k[: -len('_bytes')]}", f"{v / 2**30:.1f} GiB"])
            else:
                rows.append([f"{prefix}{k}", str(v)])

    add("", env)
    _print_table("chipbench env", ["field", "value"], rows)
    return 0


# ---------------------------------------------------------------- run


def _start(device: str, pool: Any = None) -> tuple[Any, dict[str, Any]]:
    from chipbench.runner import WorkerPool

    pool = pool or WorkerPool(device)
    if pool.proc is None:
        pool.launch()
    try:
        return pool, pool.wait_hello()
    except RuntimeError as exc:
        pool.kill()
        raise StartFailed(str(exc)) from None
    except BaseException:
        pool.kill()
        raise


def _preflight(cases: list[Any], free: int, world: int, kind: str) -> None:
    """Stop before allocating when a named benchmark's estimate (per rank) exceeds free memory."""
    from chipbench import bench

    for c in cases:
        b = bench.get(c.bench)
        est = bench.memory_estimate(b, b.config(c.overrides), world, kind)
        if est and est > free:
            per = " per process" if world > 1 else ""
            raise UsageError(
                f"{c.name} needs about {est / 2**30:.2f} GiB{per} but {free / 2**30:.2f} GiB is free; "
                "reduce its size with --set (e.g. batch_size, max_rows, n_layers)"
            )


def execute(
    cases: list[Any],
    *,
    device: str,
    time_budget_s: float,
    timeout_s: float,
    suite: str | None,
    output: Path | None,
    markdown: Path | None,
    preflight: bool,
    quiet: bool = False,
    pool: Any = None,
    write: bool = True,
) -> tuple[dict[str, Any], Path | None, int]:
    """Run cases in workers and write the results file. Returns (doc, path, exit code)."""
    from chipbench import bench, ceilings, hardware, results, runner

    load_start = _load_avg()
    pool, hello = _start(device, pool)
    try:
        env = hello["env"]
        ceil = ceilings.load(hardware.machine_id(env))
        cases = [bench.resolve_case(c, env, ceil, hello["free_memory_bytes"]) for c in cases]
        if preflight:
            world = int((env.get("distributed") or {}).get("world_size", 1))
            _preflight(cases, hello["free_memory_bytes"], world, hello["kind"])
        cores = env["cpu"]["logical_cores"] or 1
        # Our own previous run keeps the 1-minute average near 1: warn only when every core was busy.
        if load_start is not None and load_start >= cores and not quiet:
            # Other processes on the cores stall torch's thread pool: figures can be inflated many times.
            print(
                f"warning: this machine is busy (1-minute load {load_start:.1f} on {cores} cores); "
                "figures may be inflated",
                file=sys.stderr,
            )
    except BaseException:
        pool.close()
        raise
    progress = _Progress(len(cases), quiet)
    options = {"time_budget_s": time_budget_s}
    with progress:
        run = runner.run_cases(
            pool,
            hello,
            cases,
            options=options,
            timeout_s=timeout_s,
            on_start=progress.start,
            on_done=progress.done,
        )
    doc = results.build(
        run, ceilings=ceil, suite=suite, argv=results.argv(), commit_info=hardware.git_commit()
    )
    doc["chipbench"]["load_avg_1m"] = {"start": load_start, "end": _load_avg()}
    if progress.first_done_at is not None:
        # From process creation (interpreter start, imports, worker start) to the first finished benchmark.
        doc["chipbench"]["startup_to_first_result_s"] = progress.first_done_at - _process_age_origin()
    path = None
    if run.outcomes and write:
        path = results.write(doc, output or results.default_path(doc))
        if markdown:
            results.write_markdown(doc, markdown)
    failed = len(doc["chipbench"]["errors"])
    code = 130 if run.interrupted else (1 if failed else 0)
    return doc, path, code


_MAIN_ENTERED = time.monotonic()


def _load_avg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _process_age_origin() -> float:
    """The monotonic time at which this process was created (Linux: from /proc, to 10 ms)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # seconds after boot
        return time.monotonic() - (time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return _MAIN_ENTERED


class _Progress:
    """A rich progress bar with ETA on a terminal; plain lines under CI or when piped."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet, self.i = total, quiet, 0
        self.first_done_at: float | None = None
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _Progress:
        if not self.quiet and not _plain():
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(), TimeRemainingColumn(),
            )  # fmt: skip
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def start(self, case: Any) -> None:
        self.i += 1
        if self.bar is not None:
            self.bar.update(self.task, description=case.name)

    def done(self, oc: Any) -> None:
        if self.first_done_at is None:
            self.first_done_at = time.monotonic()
        if self.bar is not None:
            self.bar.advance(self.task)
        if self.quiet:
            return
        if oc.ok:
            m = oc.payload["measurement"]
            samples = sorted(m["samples"])
            med = samples[len(samples) // 2]
            line = f"[{self.i}/{self.total}] {oc.case.name}: median {med * 1e3:.4g} ms over {len(samples)} samples"
        else:
            line = f"[{self.i}/{self.total}] {oc.case.name}: ERROR {oc.payload.get('error_type')}: {oc.payload.get('message')}"
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            print(line, flush=True)


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


def _launch_spec(args: argparse.Namespace, nproc: int | None) -> Any:
    """The torchrun launch the flags ask for, or None for a one-process run."""
    from chipbench.runner import Launch

    nnodes = args.nnodes
    if nproc is None and nnodes == 1 and args.rdzv_endpoint is None:
        return None
    nproc = nproc or 1
    if nnodes < 1:
        raise UsageError("--nnodes must be >= 1")
    if not 0 <= args.node_rank < nnodes:
        raise UsageError(f"--node-rank must be in 0..{nnodes - 1}, got {args.node_rank}")
    if args.dist_timeout <= 0:
        raise UsageError(f"--dist-timeout must be > 0 seconds, got {args.dist_timeout}")
    if nproc * nnodes == 1:
        return None
    spec = Launch(nproc, nnodes, args.node_rank, args.rdzv_endpoint, args.dist_timeout)
    spec.torchrun_args()  # validates the endpoint
    return spec


def _sigterm_as_interrupt(*_: object) -> None:
    # CI cancellation and `kill` send SIGTERM: treat it as Ctrl-C, so the worker (or the torchrun job,
    # which runs in its own session) is killed and the benchmarks that finished are saved.
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from chipbench import bench, results
    from chipbench.config import parse_sets

    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)

    worlds = _nprocs(args.nproc_per_node)
    if len(worlds) > 1 and (args.nnodes > 1 or args.rdzv_endpoint):
        raise UsageError("a --nproc-per-node sweep runs on one node; give one value with --nnodes")
    specs = [_launch_spec(args, n) for n in worlds]
    for spec in specs:
        world = spec.nproc_per_node * spec.nnodes if spec else 1
        # Validate every case before starting a job of many processes.
        bench.build_cases(args.benchmarks, args.suite, parse_sets(args.set), None, world)
    if specs[0] is not None and specs[0].node_rank != 0:
        return _run_follower(args, specs[0])
    if len(specs) == 1:
        return _run_one(args, specs[0], write=True)[2]
    docs, code, failed = [], 0, []
    for spec in specs:
        try:
            doc, _, c = _run_one(args, spec, write=False)
        except StartFailed as exc:  # keep the counts that ran
            n = spec.nproc_per_node if spec else 1
            print(f"chipbench: error: {n} process(es): {exc}", file=sys.stderr)
            failed.append({"world_size": n, "start_failed": str(exc)})
            code = max(code, 1)
            continue
        docs.append(doc)
        code = max(code, c)
        if c == 130:
            break
    if not docs:
        return code
    merged = results.merge_runs(docs)
    merged["chipbench"]["runs"] += failed
    path = results.write(merged, args.output or results.default_path(merged))
    if args.markdown:
        results.write_markdown(merged, args.markdown)
    _report(merged, path, code)
    return code


def _run_one(args: argparse.Namespace, spec: Any, write: bool) -> tuple[dict[str, Any], Path | None, int]:
    from chipbench.runner import DistWorkerPool, WorkerPool

    world = spec.nproc_per_node * spec.nnodes if spec else 1
    # Launch the worker first: it imports torch while the arguments are validated here.
    pool = DistWorkerPool(args.device, spec) if spec else WorkerPool(args.device)
    pool.launch()
    try:
        return _run(args, pool, world, write)
    finally:
        pool.kill()
        pool.close()


def _run_follower(args: argparse.Namespace, spec: Any) -> int:
    """Nodes other than 0 only host ranks: rank 0, on node 0, receives the cases and writes results."""
    import subprocess

    from chipbench.runner import kill_tree

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
        return 130
    if code:
        print(f"chipbench: error: this node's ranks failed (torchrun exit code {code})", file=sys.stderr)
    return 1 if code else 0


def _run(
    args: argparse.Namespace, pool: Any, world: int = 1, write: bool = True
) -> tuple[dict[str, Any], Path | None, int]:
    from chipbench import bench
    from chipbench.config import parse_sets

    sets = parse_sets(args.set)
    dtype = None if args.dtype == "auto" else args.dtype
    cases = bench.build_cases(args.benchmarks, args.suite, sets, dtype, world)
    if not cases:
        raise UsageError("nothing to run: no benchmark matches; see `chipbench list`")
    suite = args.suite or (None if args.benchmarks else "smoke")
    budget = args.time_budget if args.time_budget is not None else SUITE_BUDGET_S.get(suite or "default", 3.0)
    if budget <= 0:
        raise UsageError(f"--time-budget must be > 0 seconds, got {budget}")
    timeout = args.timeout if args.timeout is not None else max(120.0, 20 * budget)
    doc, path, code = execute(
        cases,
        device=args.device,
        time_budget_s=budget,
        timeout_s=timeout,
        suite=suite,
        output=args.output,
        markdown=args.markdown,
        write=write,
        preflight=bool(args.benchmarks),
        pool=pool,
    )
    if write:
        _report(doc, path, code)
    return doc, path, code


def _report(doc: dict[str, Any], path: Path | None, code: int) -> None:
    from chipbench import results

    _print_table("chipbench results", list(results.SUMMARY_COLUMNS), results.summary_rows(doc))
    if path:
        print(f"results: {path}")
    if code == 130:
        print("interrupted: saved the benchmarks that finished", file=sys.stderr)
    elif code:
        for e in doc["chipbench"]["errors"]:
            print(f"chipbench: error: {e['name']}: {e['error_type']}: {e['message']}", file=sys.stderr)
        print(
            f"{len(doc['chipbench']['errors'])} benchmark(s) failed; see the errors in {path}",
            file=sys.stderr,
        )


# ---------------------------------------------------------------- calibrate


def cmd_calibrate(args: argparse.Namespace) -> int:
    from chipbench import ceilings, hardware
    from chipbench.bench import Case

    if args.cache_dir:
        os.environ["CHIPBENCH_CACHE_DIR"] = str(args.cache_dir)
    pool, hello = _start(args.device)
    pool.close()
    kind = hello["kind"]
    gpu = kind != "cpu"
    size = args.size or (8192 if gpu else 2048)
    dtypes = ["fp32", "bf16"] + (["fp16"] if gpu else [])
    sizes = dict.fromkeys(dtypes, size)
    native, _ = hardware.native_bf16(hello["env"])
    if not gpu and not native and args.size is None:
        # Emulated bf16 runs about 1 GFLOP/s: 2048^3 would take minutes a step. A smaller product
        # still shows the emulation's rate, which is what `dtype=auto` needs to see.
        sizes["bf16"] = 512
    copy_mib = args.copy_mib or (2048 if gpu else 512)
    cases = [Case("calib.matmul", {"m": n, "n": n, "k": n, "dtype": d}) for d, n in sizes.items()]
    cases.append(Case("calib.copy", {"size_mib": copy_mib}))
    doc, path, code = execute(
        cases,
        device=args.device,
        time_budget_s=args.time_budget,
        timeout_s=max(300.0, 30 * args.time_budget),
        suite="calibrate",
        output=args.output,
        markdown=None,
        preflight=True,
    )
    matmul = {}
    copy = None
    rows = []
    for b in doc["benchmarks"]:
        m = b["extra_info"]["metrics"]
        if b["group"] == "calib.matmul":
            dt = b["extra_info"]["dtype"]
            matmul[dt] = m["tflops"]
            rows.append([f"matmul {dt} {sizes[dt]}^3", f"{m['tflops'] * 1e3:.1f} GFLOP/s"])
        else:
            copy = m["gbps"]
            rows.append([f"copy {copy_mib} MiB (read + write)", f"{copy:.1f} GB/s"])
    mid = hardware.machine_id(hello["env"])
    if matmul or copy:
        stored = ceilings.save(
            mid,
            {
                "measured_at": doc["datetime"],
                "device": hello["env"]["device"]["name"],
                "matmul_tflops": matmul,
                "matmul_size": size,
                "matmul_sizes": sizes,
                "copy_gbps": copy,
                "copy_mib": copy_mib,
                "torch": hello["env"]["packages"]["torch"],
                "results_file": str(path) if path else None,
            },
        )
        rows.append(["stored", str(stored)])
    _print_table(f"ceilings of {mid}", ["ceiling", "value"], rows)
    return code


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    from chipbench import __version__, hardware
    from chipbench.bench import SUITES

    p = _Parser(
        prog="chipbench",
        description="Benchmark harness for ML hardware (DLRM-style ranking, Llama-style training).",
    )
    p.add_argument("--version", action="version", version=f"chipbench {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    s = sub.add_parser("list", help="list benchmarks, or the cases of a suite")
    s.add_argument("--suite", choices=SUITES)
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("run", help="run benchmarks or a suite and write a results file")
    s.add_argument(
        "benchmarks", nargs="*", metavar="BENCH", help="benchmark names (default: the smoke suite)"
    )
    s.add_argument("--suite", choices=SUITES)
    s.add_argument("--device", default="auto", choices=hardware.DEVICE_CHOICES)
    s.add_argument("--dtype", default="auto", choices=hardware.DTYPE_CHOICES)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    s.add_argument("--time-budget", type=float, metavar="SECONDS", help="timed-round budget per benchmark")
    s.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="kill a benchmark after this long (default 20x budget, >= 120 s)",
    )
    s.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="results file (default results/<machine-id>/<time>_<commit>.json)",
    )
    s.add_argument("--markdown", type=Path, metavar="PATH", help="also write the summary table as Markdown")
    g = s.add_argument_group("multi-process runs (torchrun)")
    g.add_argument(
        "--nproc-per-node",
        metavar="N",
        help="processes on this node (one per device); a list (1,2,4) runs each count and adds scaling efficiency",
    )
    g.add_argument("--nnodes", type=int, default=1, metavar="M", help="nodes in the job (default 1)")
    g.add_argument(
        "--node-rank", type=int, default=0, metavar="R", help="this node's rank; node 0 writes results"
    )
    g.add_argument(
        "--rdzv-endpoint", metavar="HOST:PORT", help="node 0's address and a free port (multi-node)"
    )
    g.add_argument(
        "--dist-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="collective time-out: a rank waiting this long on a dead or hung peer fails (default 300)",
    )
    s.set_defaults(func=cmd_run)

    s = sub.add_parser(
        "describe", help="config, parameter counts, FLOPs and memory estimate, without allocating"
    )
    s.add_argument("bench", metavar="BENCH")
    s.add_argument("--set", action="append", metavar="KEY=VALUE")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--nproc-per-node", type=int, metavar="N", help="show the layout over N processes per node"
    )
    s.add_argument("--nnodes", type=int, default=1, metavar="M", help="...on M nodes (default 1)")
    s.add_argument(
        "--device",
        default="auto",
        choices=hardware.DEVICE_CHOICES,
        help="device kind the plan is for (default cpu; nothing is allocated)",
    )
    s.set_defaults(func=cmd_describe)

    s = sub.add_parser("env", help="device, CPU features, software stack, peaks and ceilings")
    s.add_argument("--device", default="auto", choices=hardware.DEVICE_CHOICES)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_env)

    s = sub.add_parser("calibrate", help="measure and store this machine's matmul and copy ceilings")
    s.add_argument("--device", default="auto", choices=hardware.DEVICE_CHOICES)
    s.add_argument("--time-budget", type=float, default=3.0, metavar="SECONDS")
    s.add_argument("--size", type=int, help="matmul size (default 8192 on GPUs, 2048 on CPUs)")
    s.add_argument("--copy-mib", type=int, help="copy buffer size (default 2048 MiB on GPUs, 512 on CPUs)")
    s.add_argument("--cache-dir", type=Path, help="where ceilings are stored (default: the user's cache dir)")
    s.add_argument("--output", type=Path, metavar="PATH", help="results file of the calibration runs")
    s.set_defaults(func=cmd_calibrate)

    from chipbench import ab as _ab
    from chipbench import compare as _compare
    from chipbench import history as _history

    _compare.add_parsers(sub, _Parser)
    _ab.add_parsers(sub, _Parser)
    _history.add_parsers(sub, _Parser)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args.func(args))
    except (UsageError, StartFailed) as exc:
        print(f"chipbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chipbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
