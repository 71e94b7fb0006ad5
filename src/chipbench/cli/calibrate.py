"""`chipbench calibrate`: measure this machine's ceilings (dense matmul per dtype, memory bandwidth) and store
the best seen, per machine id, in the user's cache."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipbench.cli.device_args import add_device_args
from chipbench.cli.output import EXIT_FAILED, count, print_table, seconds, warn
from chipbench.cli.run import check_outputs, run_cases
from chipbench.core.cases import Case
from chipbench.core.fileio import check_writable
from chipbench.core.wire import Environment
from chipbench.execution.options import Destination, RunOptions
from chipbench.execution.pools import WorkerPool
from chipbench.execution.session import Session
from chipbench.platform import ceilings, hardware
from chipbench.results.typed import ResultsDocument
from chipbench.workloads.llama.optimizer import adamw_impl


@dataclass(frozen=True)
class Plan:
    """What a calibration runs on this device."""

    sizes: dict[str, int]
    """dtype -> the matmul's m = n = k."""
    size: int
    """The matmul size asked for (or the device's default)."""
    copy_mib: int
    cases: list[Case]


def plan(args: argparse.Namespace, kind: str, env: Environment) -> Plan:
    """The matmul per dtype and the bandwidth kernels, at the sizes the flags (or the device) ask for."""
    gpu = kind != "cpu"
    size = args.size if args.size is not None else (8192 if gpu else 2048)
    dtypes = ["fp32", "bf16"] + (["fp16"] if gpu else [])
    sizes = dict.fromkeys(dtypes, size)
    native, _ = hardware.native_bf16(env)
    if not gpu and not native and args.size is None:
        # Emulated bf16 runs about 1 GFLOP/s: 2048^3 would take minutes a step. A smaller product
        # still shows the emulation's rate, which is what `dtype=auto` needs to see.
        sizes["bf16"] = 512
    copy_mib = args.copy_mib if args.copy_mib is not None else (2048 if gpu else 512)
    cases = [Case("calib.matmul", {"m": n, "n": n, "k": n, "dtype": d}) for d, n in sizes.items()]
    # The bandwidth ceiling: the best of calib.copy's kernels (a copy, an in-place add, and a fused AdamW
    # step where the device has fused AdamW kernels).
    kernels = ("copy", "add") + (("adamw",) if adamw_impl("auto", kind) == "fused" else ())
    cases += [Case("calib.copy", {"size_mib": copy_mib, "kernel": k}) for k in kernels]
    return Plan(sizes, size, copy_mib, cases)


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.cache_dir:
        os.environ["CHIPBENCH_CACHE_DIR"] = str(args.cache_dir)
    check_outputs(args.output, None)
    check_writable(ceilings.cache_dir(), "the ceilings cache", folder=True)
    # One worker: its hello sizes the plan, then it runs the plan (a second start cost 2 s of imports).
    pool = WorkerPool(args.device)
    hello = Session(pool, RunOptions(time_budget_s=args.time_budget, timeout_s=60.0)).start()
    env = hello["env"]
    try:
        p = plan(args, hello["kind"], env)
    except BaseException:
        pool.close()
        raise
    done = run_cases(
        p.cases,
        pool=pool,
        options=RunOptions(time_budget_s=args.time_budget, timeout_s=max(300.0, 30 * args.time_budget)),
        destination=Destination("calibrate", list(sys.argv), args.output),
        preflight=True,
    )
    matmul: dict[str, float] = {}
    copy = None
    rows = []
    for b in done.doc.benchmarks:
        x = b.extra_info
        m = x.metrics
        if b.group == "calib.matmul":
            dt = str(x.dtype)
            matmul[dt] = m["tflops"]
            rows.append([f"matmul {dt} {p.sizes[dt]}^3", f"{m['tflops'] * 1e3:.1f} GFLOP/s"])
        else:
            copy = max(copy or 0.0, m["gbps"])
            # The kernel and the bytes it is credited with, as its result records them.
            what = f"{x.config['kernel']} ({x.work.bytes_convention if x.work else None})"
            rows.append([f"{what}, {p.copy_mib} MiB buffers", f"{m['gbps']:.1f} GB/s"])
    mid = hardware.machine_id(env)
    load = done.doc.header.load_avg_1m.start if done.doc.header.load_avg_1m else None
    busy = _busy(done.doc, load, env["cpu"]["logical_cores"] or 1)
    if busy and not args.allow_busy:
        # Other processes on the cores stall the measurement: such a ceiling would deflate every share's base.
        print_table(f"ceilings of {mid}", ["ceiling", "value"], rows)
        warn(
            f"not stored: the machine was busy ({busy}); rerun when quiet, or, on a machine that is never "
            "quiet, `chipbench calibrate --allow-busy` stores these figures labelled disturbed (every share "
            "of them is then marked)"
        )
        return EXIT_FAILED
    if matmul or copy:
        new = ceilings.Ceilings(
            machine_id=mid,
            measured_at=done.doc.datetime,
            device=env["device"]["name"],
            matmul_tflops=matmul,
            matmul_size=p.size,
            matmul_sizes=p.sizes,
            copy_gbps=copy,
            copy_mib=p.copy_mib,
            torch=env["packages"]["torch"],
            results_file=str(done.path) if done.path else None,
            load_avg_1m=load,
            disturbed=busy,
        )
        best, kept = ceilings.best_of(ceilings.load(mid), new)
        stored = ceilings.save(best)
        for what in kept:
            rows.append([what, "kept the earlier, higher figure (same torch): a ceiling is the best seen"])
        rows.append(["stored", str(stored)])
        if best.disturbed:
            rows.append(["disturbed", f"{best.disturbed}: shares of these ceilings are marked as such"])
    print_table(f"ceilings of {mid}", ["ceiling", "value"], rows)
    return done.exit_code


def _busy(doc: ResultsDocument, load: float | None, cores: int) -> str | None:
    """Why the calibration's figures are not to be trusted as ceilings, or None: the kernel's evidence
    where it has some; the load average (which lags, and counts our own previous run) only where it has
    none."""
    seen = [
        b.extra_info.measurement.extra.contention if b.extra_info.measurement else None
        for b in doc.benchmarks
    ]
    disturbed = [c.disturbed for c in seen if c is not None and c.disturbed]
    if disturbed:
        return disturbed[0]
    if any(c is None or c.run_delay_share is None for c in seen) and load is not None and load >= cores:
        return f"1-minute load {load:.1f} on {cores} cores"
    return None


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("calibrate", help="measure and store this machine's matmul and copy ceilings")
    add_device_args(s)
    s.add_argument("--time-budget", type=seconds, default=3.0, metavar="SECONDS")
    s.add_argument("--size", type=count, help="matmul size (default 8192 on GPUs, 2048 on CPUs)")
    s.add_argument("--copy-mib", type=count, help="copy buffer size (default 2048 MiB on GPUs, 512 on CPUs)")
    s.add_argument("--cache-dir", type=Path, help="where ceilings are stored (default: the user's cache dir)")
    s.add_argument("--output", type=Path, metavar="PATH", help="results file of the calibration runs")
    s.add_argument(
        "--allow-busy",
        action="store_true",
        help="store even when the machine was busy: labelled disturbed, and every share of it marked",
    )
    s.set_defaults(func=cmd_calibrate)
