"""The worker process: imports torch once, then runs benchmark cases sent by the parent over a pipe.

Started as `python -m chipbench.worker FD DEVICE` (the stable entry module, see chipbench/worker.py).
"""

from __future__ import annotations

import dataclasses
import gc
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from chipbench import workloads
from chipbench.core.cases import memory_estimate
from chipbench.core.config import config_dict
from chipbench.core.contract import Prepared, RunContext
from chipbench.core.errors import DoesNotFit
from chipbench.core.registry import Benchmark
from chipbench.core.wire import Info, Overrides
from chipbench.execution.lifeline import die_with_parent, expected_parent
from chipbench.execution.process_groups import COMM_SOURCE, DistInfo, Lockstep, comm_time_per_step
from chipbench.execution.protocol import CaseRequest, Hello, Reply, RunMessage
from chipbench.measure import energy as energy_window
from chipbench.measure.engine import Measurement, measure
from chipbench.platform import allocator, capabilities, contention, device, energy, hardware, telemetry


def hello(device_req: str) -> Hello:
    kind = hardware.resolve_device(device_req)
    capabilities.check_runs(kind)
    env = hardware.environment(kind)
    return {"type": "hello", "env": env, "kind": kind, "free_memory_bytes": hardware.free_memory_bytes(kind),
            "energy": energy_status(kind, None)}  # fmt: skip


def energy_status(kind: str, dist: DistInfo | None) -> dict[str, Any]:
    """This process's energy source ({scope, method}) or why there is none ({unavailable}), for the hello."""
    src = _energy_source(kind, dist)
    if isinstance(src, energy.Unavailable):
        return {"unavailable": src.why}
    src.close()
    return {"scope": src.scope, "method": src.method}


@dataclasses.dataclass
class PreparedCase:
    """One case set up on its device, ready to time."""

    bench: Benchmark[Any]
    config: Any
    prepared: Prepared
    setup_s: float = 0.0
    """Wall time of preparing it: clearing the last case's memory, building the model, drawing the data,
    placing the tables."""


def prepare(
    bench_name: str, overrides: Overrides, kind: str, seed: int = 0, dist: DistInfo | None = None
) -> PreparedCase:
    """One case on device `kind`, inputs generated, ready to time.

    Shared by the worker, the distributed worker (`dist`: this rank's place in the job) and the
    pytest-benchmark suite, so every front door runs the same code. Raises DoesNotFit before
    allocating when the benchmark's estimate exceeds free memory.
    """
    import torch

    t0 = time.perf_counter()
    b = workloads.get(bench_name)
    cfg = b.config(overrides)
    device.release_cached(kind)  # earlier cases' cached blocks would count as used below
    allocator.release()  # and what the host heap kept of them
    torch.manual_seed(seed)
    free = hardware.free_memory_bytes(kind)
    ctx = RunContext(device=kind, torch_device=device.torch_device(kind), seed=seed)
    if dist is not None:
        if kind in device.HOST_MEMORY:
            free //= dist.local_world_size  # the ranks on a node share its memory
        ctx = dataclasses.replace(
            ctx, torch_device=device.torch_device(kind, dist.local_rank), rank=dist.rank,
            world_size=dist.world_size, local_rank=dist.local_rank, dist_backend=dist.backend,
        )  # fmt: skip
    ctx = dataclasses.replace(ctx, free_memory_bytes=free)
    est = memory_estimate(b, cfg, dist.world_size if dist is not None else 1, kind)
    if est and ctx.free_memory_bytes and est > ctx.free_memory_bytes:
        raise DoesNotFit(f"needs about {est / 2**30:.2f} GiB, {ctx.free_memory_bytes / 2**30:.2f} GiB free")
    prepared = b.setup(cfg, ctx)
    return PreparedCase(b, cfg, prepared, time.perf_counter() - t0)


def error_reply(exc: BaseException) -> Reply:
    """A case's error entry: type (oom and does_not_fit named), first line of the message, traceback."""
    oom = "OutOfMemoryError" in type(exc).__name__ or "out of memory" in str(exc).lower()
    fatal = not oom and device.is_fatal_device_error(f"{type(exc).__name__}: {exc}")
    kind = "does_not_fit" if isinstance(exc, DoesNotFit) else ("oom" if oom else type(exc).__name__)
    text = str(exc).strip()
    return {
        "type": "error",
        "error_type": "device_error" if fatal else kind,
        "message": text.splitlines()[0][:500] if text else type(exc).__name__,
        "traceback": None if isinstance(exc, DoesNotFit) else traceback.format_exc()[-4000:],
        # A fresh process frees the allocator's cache (OOM) or a poisoned device context (an illegal
        # address, a device-side assert, a CUBLAS or NCCL failure would fail every later case).
        "restart": oom or fatal,
    }


def measure_case(
    request: CaseRequest,
    kind: str,
    case: PreparedCase,
    dist: DistInfo | None = None,
    lockstep: Lockstep | None = None,
) -> Reply:
    """Measure a prepared case; returns the raw measurement, work counts and info."""
    prepared, opts = case.prepared, request.options
    dev = device.Device(kind)
    multi = dist is not None and lockstep is not None and dist.world_size > 1
    # (The CLI refuses --soak for multi-process runs: ranks would take different step counts.)
    ident = energy.physical_id(kind, dist.local_rank if dist is not None else 0)
    soaked = energy_window.soak(prepared.step, dev, opts.soak_s, ident) if opts.soak_s else None
    # The kernel's word on contention, around the whole measurement (warm-up included: conservative).
    monitor = contention.Monitor(_compute_threads(kind))
    m = measure(prepared.step, dev, request.measure, lockstep)
    seen = monitor.stop().as_dict()
    if multi and lockstep is not None and dist is not None:
        seen = _worst_rank(lockstep.gather(seen))
        _profile_comm(prepared.step, kind, dist, lockstep, m)
    m.extra.contention = seen
    if soaked is not None:
        soaked["after_timing"] = telemetry.read(kind, ident)
        m.extra.soak = soaked
    if opts.energy != "off":
        m.extra.energy = _energy(prepared.step, dev, kind, m, dist, lockstep if multi else None)
    t_after = time.perf_counter()
    after = prepared.after() if prepared.after and opts.after else {}
    # The harness's own cost around the timed steps, so a slow suite says where its time went.
    m.extra.setup_s = case.setup_s
    m.extra.after_s = time.perf_counter() - t_after
    return {
        "type": "result",
        "measurement": m.as_dict(),
        "work": dataclasses.asdict(prepared.work),
        "info": {**prepared.info, **after},
        "version_hash": case.bench.version_hash(case.config),
        "config": config_dict(case.config),
    }


def run_case(msg: RunMessage, kind: str) -> Reply:
    """Set up and measure one case in this process; any failure becomes an error entry."""
    case = None
    try:
        request = CaseRequest.read(msg)
        case = prepare(request.bench, request.overrides, kind, request.options.seed)
        return measure_case(request, kind, case)
    except Exception as exc:
        return error_reply(exc)
    finally:
        # Hand the memory back now, not at the next case: `ab` runs another worker on the same device
        # in between.
        case = None
        device.release_cached(kind)


def _profile_comm(step: Any, kind: str, dist: DistInfo, lockstep: Lockstep, m: Measurement) -> None:
    """Time spent in collectives per step, each rank's, from a few extra profiled steps."""
    if dist.backend not in COMM_SOURCE:
        m.extra.comm_unavailable = f"no profiler reading of {dist.backend} collectives"
        return
    med = sorted(m.samples)[len(m.samples) // 2]
    steps = 3 if med < 1.0 else 1  # every rank takes the same number: the steps hold collectives
    mine: Any = comm_time_per_step(step, kind, steps)
    got = lockstep.gather(mine)
    if all(isinstance(g, float) for g in got):
        m.extra.comm_s_per_step_by_rank = got
        m.extra.comm_source = COMM_SOURCE.get(dist.backend, "torch.profiler")
    else:
        m.extra.comm_unavailable = next(str(g) for g in got if not isinstance(g, float))


def worker_main(conn: Connection, device_req: str) -> None:
    # The parent handles Ctrl-C (it saves what finished); the worker just gets terminated, and dies
    # with the parent if that is killed outright.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL, expected_parent())
    allocator.tune()  # before anything is allocated for a benchmark; the hello's environment records it
    try:
        h = hello(device_req)
    except Exception as exc:
        conn.send({"type": "fatal", "message": str(exc), "error_type": type(exc).__name__})
        return
    conn.send(h)
    while True:
        settle_heap()
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg.get("type") == "stop":
            return
        reply = run_case(msg, h["kind"])
        conn.send(reply)
        if reply.get("restart"):
            return
        del reply


def settle_heap() -> None:
    """Move what is alive now (torch's modules, the workloads imported, their caches) out of the garbage
    collector's sight (gc.freeze), after a collection of what is not: each case's collections (two in
    the engine, two around the case) then scan only the objects made since, milliseconds instead of
    50-300 ms each on a heap holding torch on a busy 2-core VM. The host probe's four short cases paid
    sixteen of them. Timing is unchanged: the collector is off during timed steps either way."""
    gc.collect()
    gc.freeze()


def _compute_threads(kind: str) -> int:
    """Threads the step computes on: torch's intra-op threads on a CPU, the one host thread otherwise."""
    if kind != "cpu":
        return 1
    import torch

    return int(torch.get_num_threads())


def _worst_rank(seen: list[Info]) -> Info:
    """The most disturbed rank's evidence; every disturbed rank named (a synchronous step waits for all)."""
    worst = max(range(len(seen)), key=lambda i: seen[i].get("run_delay_share") or 0.0)
    why = "; ".join(f"rank {i}: {c['disturbed']}" for i, c in enumerate(seen) if c.get("disturbed"))
    return {**seen[worst], "rank": worst, "disturbed": why or None}


def _energy_source(kind: str, dist: DistInfo | None) -> energy.Source | energy.Unavailable:
    """This process's energy source: its own GPU; on CPUs the node's RAPL, read by local rank 0 only (one
    package counter serves every process of the node)."""
    if kind == "cpu" and dist is not None and dist.local_rank > 0:
        return energy.Unavailable("read by local rank 0 (RAPL counts the whole node)")
    return energy.source_for(kind, [energy.physical_id(kind, dist.local_rank if dist is not None else 0)])


def _energy(
    step: Any, dev: device.Device, kind: str, m: Measurement, dist: DistInfo | None, lockstep: Lockstep | None
) -> Info:
    """The energy phase after the timed rounds, summed over the job's devices (each rank its own);
    `lockstep` only for a multi-process job."""
    src = _energy_source(kind, dist)
    if isinstance(src, energy.Unavailable):
        mine: Info = {"unavailable": src.why}
        # Every rank takes the window's steps, read or not (collectives in the step).
        if lockstep is not None:
            steps = int(lockstep.agree(0))
            if steps:
                time.sleep(energy_window.IDLE_S)  # while rank 0 reads idle power: no step of ours in it
            for _ in range(steps):
                step()
            dev.synchronize()
    else:
        try:
            median = sorted(m.samples)[len(m.samples) // 2]
            steps = energy_window.window_steps(median, src, lockstep)
            if steps < 1:  # rank 0 reads nothing: no window, and no rank steps alone
                mine = {"unavailable": "rank 0 could not read energy, so no window was run"}
            else:
                try:
                    mine = energy_window.measure_energy(
                        step, dev, src, steps, extend=lockstep is None, timed_step_s=median
                    ).as_dict()
                except energy_window.ReadFailed as exc:  # the benchmark's timing stands; no energy figure
                    mine = {"unavailable": f"energy read failed: {exc}"}
        finally:
            src.close()
    if lockstep is None:
        return mine
    ranks = lockstep.gather(mine)
    read = [r for r in ranks if "joules" in r]
    if not read:
        return {"unavailable": ranks[0].get("unavailable", "no rank could read energy")}
    return {
        "joules": sum(r["joules"] for r in read),
        "joules_per_step": sum(r["joules_per_step"] for r in read),
        "avg_power_w": sum(r["avg_power_w"] for r in read),
        "idle_power_w": sum(r["idle_power_w"] for r in read),
        "steps": read[0]["steps"],
        "window_s": max(r["window_s"] for r in read),
        "scope": read[0]["scope"],
        "method": read[0]["method"],
        # Rank 0's comparison of its window with the timed median (every rank takes the same steps).
        **{k: read[0][k] for k in ("timed_step_s", "window_step_s", "unlike_timed") if k in read[0]},
        "ranks_read": len(read),
        "summed_over": f"{len(read)} of {len(ranks)} processes' devices",
    }
