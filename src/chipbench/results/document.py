"""Result files: pytest-benchmark's JSON format with chipbench's fields in `extra_info` and `chipbench`.

One file per run = config + environment + measurements. `pytest-benchmark compare` reads them; so does
`chipbench compare`. This module builds the document; `files` writes and loads it, `render` shows it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
from typing import Any

import chipbench
from chipbench.core import stats
from chipbench.core.contract import Work
from chipbench.core.price import Price
from chipbench.platform.ceilings import Ceilings
from chipbench.platform.hardware import machine_id
from chipbench.results.metrics import derive_metrics
from chipbench.results.outcomes import RunOutcome
from chipbench.results.roofline import roofline

PYTEST_BENCHMARK_VERSION = "5.1.0"  # the file-format version we write


def machine_info(env: dict[str, Any]) -> dict[str, Any]:
    """pytest-benchmark's machine_info plus chipbench's device and stack description."""
    return {
        "node": platform.node(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": platform.python_version(),
        "python_version": platform.python_version(),
        "python_build": list(platform.python_build()),
        "release": platform.release(),
        "system": platform.system(),
        "cpu": {
            "brand_raw": env["cpu"]["model"],
            "arch": env["cpu"]["arch"],
            "count": env["cpu"]["logical_cores"],
        },
        "chipbench_machine_id": machine_id(env),
        "device": env["device"],
        "packages": env["packages"],
        "host_allocator": env.get("host_allocator"),
    }


def build(
    run: RunOutcome,
    *,
    ceilings: Ceilings | None,
    suite: str | None,
    argv: list[str],
    commit_info: dict[str, Any],
    price: Price | None = None,
) -> dict[str, Any]:
    """The results document of one run."""
    env = run.env
    world = int((env.get("distributed") or {}).get("world_size", 1))
    benchmarks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for oc in run.outcomes:
        case = oc.case
        p = oc.payload
        name = case.name if world == 1 else f"{case.name}@world{world}"
        if not oc.ok:
            errors.append(
                {
                    "name": name,
                    "world_size": world,
                    "group": case.bench,
                    "params": case.overrides,
                    "error_type": p.get("error_type", "error"),
                    "message": p.get("message", ""),
                    "traceback": p.get("traceback"),
                    "wall_s": oc.wall_s,
                }
            )
            continue
        m = p["measurement"]
        work = Work(**p["work"])
        st = stats.summarize(m["samples"], m["iterations"])
        cfg = p["config"]
        dtype = cfg.get("dtype")
        metrics, missing = derive_metrics(
            work,
            st["median"],
            st,
            device_name=env["device"]["name"],
            dtype=dtype,
            ceilings=ceilings,
            peak_mem_bytes=m["peak_mem_bytes"],
            world_size=world,
            tf32=bool((env.get("tf32") or {}).get("effective")),
            energy=m.get("extra", {}).get("energy"),
            price=price,
            nodes=int((env.get("distributed") or {}).get("nodes", 1)),
        )
        roof = None
        if isinstance(p["info"].get("parts"), dict):
            roof, why = roofline(p["info"]["parts"], st["median"], dtype, ceilings)
            if roof is not None:
                metrics["share_of_roofline"] = roof["share_of_roofline"]
            else:
                missing["share_of_roofline"] = why or "not measured"
        flags = [
            f"{k} is {v:.0%}, above 100%: a counting error, a stale ceiling (rerun `chipbench calibrate`) "
            "or data that fit in a cache the ceiling's did not"
            for k, v in metrics.items()
            if (k.startswith("share_of_") or k == "mfu") and v > 1.0
        ]
        seen = m.get("extra", {}).get("contention") or {}
        comm = m.get("extra", {}).get("comm_s_per_step_by_rank")
        if comm:
            # The busiest rank's time in collectives over the (slowest-rank) median step.
            metrics["comm_share_of_step"] = max(comm) / st["median"]
        elif world > 1:
            missing["comm_share_of_step"] = m.get("extra", {}).get("comm_unavailable", "not profiled")
        benchmarks.append(
            {
                "group": case.bench,
                "name": name,
                "fullname": f"chipbench::{name}",
                "params": case.overrides or None,
                "param": case.label or None,
                "extra_info": {
                    "benchmark": case.bench,
                    "version_hash": p["version_hash"],
                    "config": cfg,
                    # What was asked before fitting to this device (dtype=auto, max_rows=-1): the report
                    # matches machines on it.
                    "requested": case.overrides if case.requested is None else case.requested,
                    "device": run.kind,
                    "world_size": world,
                    "dtype": dtype,
                    "metrics": metrics,
                    "unavailable": missing,
                    "flags": flags,
                    # Why the machine was disturbed while this case was measured (the kernel's evidence,
                    # `measurement.extra.contention`); the gate says "rerun" instead of judging it.
                    "disturbed": seen.get("disturbed"),
                    "work": p["work"],
                    "info": p["info"],
                    # Each part of a whole step against the ceilings (results.roofline), when measured.
                    "roofline": roof,
                    "measurement": {k: v for k, v in m.items() if k != "samples"},
                },
                "options": {
                    "disable_gc": True,
                    "timer": m["timer"],
                    "min_rounds": None,
                    "max_time": None,
                    "min_time": None,
                    "warmup": m["warmup_steps"],
                },
                "stats": st,
            }
        )
    return _clean(
        {
            "machine_info": machine_info(env),
            "commit_info": commit_info,
            "benchmarks": benchmarks,
            "datetime": dt.datetime.now(dt.timezone.utc).isoformat(),
            "version": PYTEST_BENCHMARK_VERSION,
            "chipbench": {
                "schema_version": chipbench.SCHEMA_VERSION,
                "version": chipbench.__version__,
                "machine_id": machine_id(env),
                "suite": suite,
                "argv": argv,
                "environment": env,
                "ceilings": ceilings.to_json() if ceilings else None,
                "price": price.as_dict() if price else None,
                "errors": errors,
                "interrupted": run.interrupted,
            },
        }
    )


THROUGHPUT_KEYS = ("samples_per_s", "tokens_per_s", "tflops", "gbps")


def base_name(name: str) -> str:
    """A benchmark's name without its `@worldN` suffix (multi-process results carry one, so they never
    match a one-process baseline by name)."""
    return name.rsplit("@world", 1)[0]


def merge_runs(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One results document from runs of the same cases at several process counts (a sweep)."""
    out = json.loads(json.dumps(docs[0]))
    cb = out["chipbench"]
    cb["runs"] = [
        {"world_size": (d["chipbench"]["environment"].get("distributed") or {}).get("world_size", 1),
         "distributed": d["chipbench"]["environment"].get("distributed"),
         "benchmarks": len(d["benchmarks"]), "errors": len(d["chipbench"]["errors"])}
        for d in docs
    ]  # fmt: skip
    for d in docs[1:]:
        out["benchmarks"] += d["benchmarks"]
        cb["errors"] += d["chipbench"]["errors"]
        cb["interrupted"] = cb["interrupted"] or d["chipbench"]["interrupted"]
    # The runs of a sweep follow one another in one process, each timed from its start: the last is the whole.
    walls = [d["chipbench"].get("wall_s") for d in docs]
    cb.pop("wall_s", None)
    if all(isinstance(w, (int, float)) for w in walls):
        cb["wall_s"] = max(walls)
    add_scaling(out)
    return out


def add_scaling(doc: dict[str, Any]) -> None:
    """Scaling efficiency of every N-process result whose one-process twin is in the same document:
    global throughput over N times the one-process throughput (1.0 = perfect, weak or strong scaling)."""
    single = {b["name"]: b for b in doc["benchmarks"] if b["extra_info"].get("world_size", 1) == 1}
    for b in doc["benchmarks"]:
        n = b["extra_info"].get("world_size", 1)
        one = single.get(base_name(b["name"])) if n > 1 else None
        if one is None:
            continue
        m, m1 = b["extra_info"]["metrics"], one["extra_info"]["metrics"]
        key = next((k for k in THROUGHPUT_KEYS if m.get(k) and m1.get(k)), None)
        if key is None:  # no work count: step time alone cannot tell weak from strong scaling
            b["extra_info"]["unavailable"]["scaling_efficiency"] = "the benchmark counts no work per step"
            continue
        m["speedup_over_1proc"] = m[key] / m1[key]
        m["scaling_efficiency"] = m[key] / (n * m1[key])
        b["extra_info"]["scaling"] = {"baseline": one["name"], "metric": key, "world_size": n}


def _clean(x: Any) -> Any:
    """JSON has no NaN or infinity: store them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x
