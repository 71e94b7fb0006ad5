"""Hand-made results documents for the report's tests: known samples, so the answers are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def samples(median_s: float, n: int = 40, spread: float = 0.01, seed: int = 0) -> list[float]:
    """n positive samples around `median_s` (exactly that median: symmetric offsets)."""
    rng = np.random.default_rng(seed)
    half = np.abs(rng.normal(0.0, spread, size=n // 2))
    x = np.concatenate([median_s * (1 + half), median_s * (1 - half)])
    if n % 2:
        x = np.append(x, median_s)
    return [float(v) for v in x]


def bench(
    bench_name: str,
    requested: dict[str, Any],
    resolved: dict[str, Any] | None = None,
    *,
    median_s: float = 1e-3,
    n: int = 40,
    seed: int = 0,
    vh: str = "h1",
    world: int = 1,
    flops: float | None = None,
    nbytes: float | None = None,
    bytes_convention: str | None = "read + write",
    metrics: dict[str, float] | None = None,
    flags: list[str] | None = None,
    record_request: bool = True,
) -> dict[str, Any]:
    cfg = {**requested, **(resolved or {})}
    label = ",".join(f"{k}={v}" for k, v in sorted(cfg.items()))
    name = f"{bench_name}[{label}]" if label else bench_name
    if world > 1:
        name += f"@world{world}"
    m = {"step_ms_p50": median_s * 1e3, "step_ms_p90": median_s * 1.1e3, "step_ms_p99": median_s * 1.3e3}
    if flops:
        m["tflops"] = world * flops / median_s / 1e12
    if nbytes:
        m["gbps"] = world * nbytes / median_s / 1e9
    m.update(metrics or {})
    extra: dict[str, Any] = {
        "benchmark": bench_name,
        "version_hash": vh,
        "config": cfg,
        "device": "cpu",
        "world_size": world,
        "dtype": cfg.get("dtype"),
        "metrics": m,
        "unavailable": {},
        "flags": flags or [],
        "work": {"flops": flops, "bytes": nbytes, "samples": None, "tokens": None, "model_flops": False,
                 "flop_convention": "2 m n k" if flops else None,
                 "bytes_convention": bytes_convention if nbytes else None, "extra_bytes": {}},
        "info": {},
        "measurement": {},
    }  # fmt: skip
    if record_request:
        extra["requested"] = requested
    return {
        "group": bench_name,
        "name": name,
        "fullname": f"chipbench::{name}",
        "params": cfg or None,
        "extra_info": extra,
        "stats": {"data": samples(median_s, n, seed=seed), "median": median_s},
    }


def doc(
    machine: str,
    benchmarks: list[dict[str, Any]],
    *,
    device: str = "Test CPU",
    kind: str = "cpu",
    matmul: dict[str, float] | None = None,
    copy_gbps: float | None = 20.0,
    date: str = "2026-11-01T00:00:00+00:00",
    suite: str | None = "default",
    schema: int = 1,
) -> dict[str, Any]:
    ceilings = {
        "machine_id": machine,
        "matmul_tflops": matmul or {"fp32": 0.4, "bf16": 1.6},
        "copy_gbps": copy_gbps,
    }
    return {
        "machine_info": {
            "node": "n", "machine": "x86_64", "system": "Linux",
            "cpu": {"brand_raw": device, "arch": "X86_64", "count": 2},
            "chipbench_machine_id": machine,
            "device": {"kind": kind, "name": device, "count": 1, "memory_bytes": 8 * 2**30, "capability": "AVX2"},
            "packages": {"torch": "2.13.0+cpu", "torchrec": None},
        },
        "commit_info": {"id": "abcdef1234567890"},
        "benchmarks": benchmarks,
        "datetime": date,
        "version": "5.1.0",
        "chipbench": {
            "schema_version": schema, "version": "0.1.0", "machine_id": machine, "suite": suite,
            "argv": ["chipbench", "run", "--suite", suite or "smoke"],
            "environment": {"cpu": {"model": device, "physical_cores": 2}},
            "ceilings": ceilings, "errors": [], "interrupted": False,
        },
    }  # fmt: skip


def write(path: Path, d: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d))
    return path
