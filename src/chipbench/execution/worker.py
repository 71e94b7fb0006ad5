"""The worker process: imports torch once, then runs benchmark cases sent by the parent over a pipe."""

from __future__ import annotations

import dataclasses
import os
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any


def _hello(device_req: str) -> dict[str, Any]:
    from chipbench import hardware

    kinds = hardware.available_kinds()
    kind = hardware.resolve_device(device_req, kinds)
    env = hardware.environment(kind)
    return {"type": "hello", "env": env, "kind": kind, "free_memory_bytes": hardware.free_memory_bytes(kind)}


def prepare(
    bench_name: str, overrides: dict[str, Any], kind: str, seed: int = 0, dist: Any = None
) -> tuple[Any, Any, Any]:
    """(benchmark, config, Prepared) for one case on device `kind`, inputs generated, ready to time.

    Shared by the worker, the distributed worker (`dist`: a distributed.DistInfo) and the
    pytest-benchmark suite, so every front door runs the same code. Raises DoesNotFit before
    allocating when the benchmark's estimate exceeds free memory.
    """
    import torch

    from chipbench import bench, hardware
    from chipbench.errors import DoesNotFit

    b = bench.get(bench_name)
    cfg = b.config(overrides)
    torch.manual_seed(seed)
    free = hardware.free_memory_bytes(kind)
    ctx = bench.RunContext(device=kind, torch_device=hardware.torch_device(kind), seed=seed)
    if dist is not None:
        if kind in ("cuda", "rocm", "xpu"):
            torch_device = f"{hardware.torch_device(kind)}:{dist.local_rank}"
        else:
            torch_device = hardware.torch_device(kind)
            free //= dist.local_world_size  # the ranks on a node share its memory
        ctx = dataclasses.replace(
            ctx, torch_device=torch_device, rank=dist.rank, world_size=dist.world_size,
            local_rank=dist.local_rank, dist_backend=dist.backend,
        )  # fmt: skip
    ctx = dataclasses.replace(ctx, free_memory_bytes=free)
    est = bench.memory_estimate(b, cfg, dist.world_size if dist is not None else 1, kind)
    if est and ctx.free_memory_bytes and est > ctx.free_memory_bytes:
        raise DoesNotFit(f"needs about {est / 2**30:.2f} GiB, {ctx.free_memory_bytes / 2**30:.2f} GiB free")
    return b, cfg, b.setup(cfg, ctx)


def error_reply(exc: BaseException) -> dict[str, Any]:
    """A case's error entry: type (oom and does_not_fit named), first line of the message, traceback."""
    from chipbench.errors import DoesNotFit

    oom = "OutOfMemoryError" in type(exc).__name__ or "out of memory" in str(exc).lower()
    kind = "does_not_fit" if isinstance(exc, DoesNotFit) else ("oom" if oom else type(exc).__name__)
    text = str(exc).strip()
    return {
        "type": "error",
        "error_type": kind,
        "message": text.splitlines()[0][:500] if text else type(exc).__name__,
        "traceback": None if isinstance(exc, DoesNotFit) else traceback.format_exc()[-4000:],
        "restart": oom,  # free the allocator's cache by starting afresh
    }


def measure_case(
    msg: dict[str, Any], kind: str, b: Any, cfg: Any, prepared: Any, dist: Any = None, lockstep: Any = None
) -> dict[str, Any]:
    """Measure a prepared case; returns the raw measurement, work counts and info."""
    from chipbench.config import config_dict
    from chipbench.engine import Device, MeasureOptions, measure

    m = measure(prepared.step, Device(kind), MeasureOptions(**msg.get("options", {})), lockstep)
    if dist is not None and lockstep is not None and dist.world_size > 1:
        _profile_comm(prepared.step, kind, dist, lockstep, m)
    after = prepared.after() if prepared.after else {}
    return {
        "type": "result",
        "measurement": dataclasses.asdict(m),
        "work": dataclasses.asdict(prepared.work),
        "info": {**prepared.info, **after},
        "version_hash": b.version_hash(cfg),
        "config": config_dict(cfg),
    }


def run_case(msg: dict[str, Any], kind: str) -> dict[str, Any]:
    """Set up and measure one case in this process; any failure becomes an error entry."""
    try:
        b, cfg, prepared = prepare(msg["bench"], msg["overrides"], kind, msg.get("seed", 0))
        return measure_case(msg, kind, b, cfg, prepared)
    except Exception as exc:
        return error_reply(exc)


def _profile_comm(step: Any, kind: str, dist: Any, lockstep: Any, m: Any) -> None:
    """Time spent in collectives per step, each rank's, from a few extra profiled steps."""
    from chipbench import distributed

    if dist.backend not in distributed.COMM_SOURCE:
        m.extra["comm_unavailable"] = f"no profiler reading of {dist.backend} collectives"
        return
    med = sorted(m.samples)[len(m.samples) // 2]
    steps = 3 if med < 1.0 else 1  # every rank takes the same number: the steps hold collectives
    mine: Any = distributed.comm_time_per_step(step, kind, steps)
    got = lockstep.gather(mine)
    if all(isinstance(g, float) for g in got):
        m.extra["comm_s_per_step_by_rank"] = got
        m.extra["comm_source"] = distributed.COMM_SOURCE.get(dist.backend, "torch.profiler")
    else:
        m.extra["comm_unavailable"] = next(str(g) for g in got if not isinstance(g, float))


def worker_main(conn: Connection, device_req: str) -> None:
    # The parent handles Ctrl-C (it saves what finished); the worker just gets terminated.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        hello = _hello(device_req)
    except Exception as exc:
        conn.send({"type": "fatal", "message": str(exc), "error_type": type(exc).__name__})
        return
    conn.send(hello)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg.get("type") == "stop":
            return
        reply = run_case(msg, hello["kind"])
        conn.send(reply)
        if reply.get("restart"):
            return


if __name__ == "__main__":
    import sys
    from multiprocessing.connection import Connection as _Conn

    worker_main(_Conn(int(sys.argv[1])), sys.argv[2])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown (about 0.5 s with torch loaded): nothing is left to flush
