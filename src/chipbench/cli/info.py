"""`chipbench list`, `describe` and `env`: what there is to run, what a case costs, what the machine is."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chipbench import workloads
from chipbench.cli.device_args import add_device_args
from chipbench.cli.output import count, print_notes, print_table
from chipbench.core.cases import Case, largest_fitting, memory_estimate
from chipbench.core.config import config_dict, parse_sets
from chipbench.core.errors import UsageError
from chipbench.core.fileio import atomic_write_text, check_writable
from chipbench.core.registry import SUITES
from chipbench.core.wire import Overrides
from chipbench.platform import ceilings, hardware, peaks
from chipbench.results.render import human
from chipbench.results.wire import JSONObject


def cmd_list(args: argparse.Namespace) -> int:
    if args.suite:
        # One name a line, folded where longer than the terminal (a name is never cut).
        print_notes([c.name for c in workloads.suite_cases(args.suite)])
        return 0
    rows = []
    for name, b in workloads.registry().items():
        suites = ",".join(s for s in SUITES if b.suites.get(s)) or "none"
        needs = (
            f"; needs {b.needs_world}+ processes: --nproc-per-node {b.needs_world}"
            if b.needs_world > 1
            else ""
        )
        rows.append([name, b.doc, suites + needs])
    print_table("benchmarks", ["benchmark", "what it measures", "suites"], rows, compact=True)
    return 0


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def cmd_describe(args: argparse.Namespace) -> int:
    b = workloads.get(args.bench)
    overrides: dict[str, object] = dict(parse_sets(args.set))
    b.config(overrides)  # bad keys and values: one line before anything is imported
    world = (args.nproc_per_node or 1) * args.nnodes
    # Resolved as `run` would on this machine's device (dtype=auto, sizes fitted to free memory); a
    # --device this machine lacks is described as asked, with nothing resolved.
    kind, here = args.device if args.device != "auto" else "cpu", None
    try:
        kind = hardware.resolve_device(args.device)
        env = hardware.environment(kind)
        free = hardware.free_memory_bytes(kind)
        device_dtype = hardware.auto_dtype(env, ceilings.load(hardware.machine_id(env)))
        concrete = workloads.resolve_case(Case(b.name, overrides), kind, device_dtype, free)
        here = (
            hardware.machine_id(env),
            free,
            {k: v for k, v in concrete.overrides.items() if overrides.get(k) != v},
        )
        overrides = concrete.overrides
    except UsageError:
        if args.device == "auto":
            raise
    cfg = b.config(overrides)
    described = b.describe(cfg)
    out: JSONObject = {
        "benchmark": b.name,
        "doc": b.doc,
        # The values a preset or flavor fills in, not their placeholders (`rows: []`, `interaction: preset`).
        "config": {**config_dict(cfg), **(b.resolved(cfg) if b.resolved else {})},
        **described.as_dict(),
    }
    if described.memory_bytes_estimate is not None:
        out["memory_estimate"] = _gib(described.memory_bytes_estimate)
    for key in ("parameters", "embedding_parameters", "dense_parameters"):
        if isinstance(out.get(key), int):
            out[f"{key}_human"] = human(out[key], "").strip()
    out["version_hash"] = b.version_hash(cfg)
    if world > 1:
        if b.plan is None:
            out["plan"] = f"{b.name} runs one copy per process (no sharding): each rank holds it all"
        else:
            out["plan"] = b.plan(cfg, world, kind).as_dict()
        out["world_size"] = world
    if here is None:
        out["fits_here"] = f"not checked: {kind} is not this machine's device"
    else:
        out.update(_fits_here(b, overrides, here, world, kind))
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        rows = [[k, json.dumps(v, default=str) if not isinstance(v, str) else v] for k, v in out.items()]
        print_table(f"{b.name}", ["field", "value"], rows)
    return 0


def _fits_here(
    b: Any, overrides: dict[str, object], here: tuple[str, int, Overrides], world: int, kind: str
) -> JSONObject:
    """Whether the case fits this machine's free memory and, where it does not, the largest size along
    each field a user would turn that does, as `--set` flags."""
    mid, free, resolved = here
    est = memory_estimate(b, b.config(overrides), world, kind)
    per = " per process" if world > 1 else ""
    fits = "unknown (no estimate)" if est is None else ("yes" if est <= free else "no")
    out: JSONObject = {"resolved_for": {"machine_id": mid, "device": kind, "resolved": resolved}}
    out["fits_here"] = f"{fits}: needs about {_gib(est or 0)}{per}, {_gib(free)} free" if est else fits
    if fits == "no":
        turn = largest_fitting(b, overrides, free, world, kind)
        out["fits_with"] = (
            " or ".join(" ".join(f"--set {k}={v}" for k, v in sizes.items()) for sizes in turn)
            if turn
            else "no size turned fits: run over more processes (--nproc-per-node), or on a larger device"
        )
    return out


def cmd_env(args: argparse.Namespace) -> int:
    if args.output is not None:
        check_writable(args.output, "--output")
    kind = hardware.resolve_device(args.device)
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
    env["ceilings"] = ceil.to_json() if ceil else {"none": "not calibrated: run `chipbench calibrate`"}
    text = json.dumps(env, indent=2, default=str)
    if args.output is not None:  # the JSON kept and the table shown: one probe of the machine, not two
        atomic_write_text(args.output, text + "\n")
    if args.json:
        print(text)
        return 0
    rows: list[list[str]] = []

    def add(prefix: str, d: Mapping[str, Any]) -> None:
        for k, v in d.items():
            if k == "capabilities" and not prefix and isinstance(v, dict):
                rows.extend(capability_rows(v))
            elif isinstance(v, dict) and k not in ("isa", "tflops"):
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
    print_table("chipbench env", ["field", "value"], rows)
    return 0


def capability_rows(caps: Mapping[str, Any]) -> list[list[str]]:
    """One row per probed capability: its value, then its source and what it went through (or why not)."""
    rows = []
    for name, c in caps.items():
        if isinstance(c, dict):
            rows.append([f"capabilities.{name}", f"{c.get('value')} ({c.get('source')}: {c.get('detail')})"])
    return rows


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("list", help="list benchmarks, or the cases of a suite")
    s.add_argument("--suite", choices=SUITES)
    s.set_defaults(func=cmd_list)

    s = sub.add_parser(
        "describe", help="config, parameter counts, FLOPs and memory estimate, without allocating"
    )
    s.add_argument("bench", metavar="BENCH")
    s.add_argument("--set", action="append", metavar="KEY=VALUE")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--nproc-per-node", type=count, metavar="N", help="show the layout over N processes per node"
    )
    s.add_argument("--nnodes", type=count, default=1, metavar="M", help="...on M nodes (default 1)")
    add_device_args(s, "device kind to describe for (default: this machine's; nothing is allocated)")
    s.set_defaults(func=cmd_describe)

    s = sub.add_parser("env", help="device, CPU features, software stack, peaks and ceilings")
    add_device_args(s)
    s.add_argument("--json", action="store_true")
    s.add_argument("--output", type=Path, metavar="PATH", help="also write the --json document to PATH")
    s.set_defaults(func=cmd_env)
