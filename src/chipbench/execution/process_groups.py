"""Process groups for multi-process runs: set-up from torchrun's environment, and a local launcher.

Everything goes through PyTorch's own stack (torchrun, c10d, gloo/nccl/xccl); nothing here is a
collective of our own. `run_local` starts N gloo processes on this machine for tests and checks.
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import queue
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chipbench.platform import capabilities
from chipbench.platform.device import HOST_MEMORY, device_type, synchronize

DEFAULT_TIMEOUT_S = 300.0
"""Collective time-out: a rank waiting this long on a dead or hung peer raises instead of hanging."""


def backend_for(kind: str) -> str:
    """The c10d backend torch registers as the device's default (nccl, xccl, a plugin's own); gloo where
    it names none."""
    return capabilities.backend_choice(kind)[0]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job (from torchrun's environment variables)."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    backend: str


def env_info() -> tuple[int, int, int, int, int] | None:
    """(rank, world, local_rank, local_world, node_rank) when launched by torchrun, else None."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    node = int(os.environ.get("GROUP_RANK", rank // max(local_world, 1)))
    return rank, world, local, local_world, node


def init_from_env(kind: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> DistInfo:
    """Join the default process group described by torchrun's environment, on device `kind`."""
    import torch
    import torch.distributed as dist

    got = env_info()
    if got is None:
        raise RuntimeError("not launched by torchrun: RANK and WORLD_SIZE are not set")
    rank, world, local, local_world, node = got
    backend = backend_for(kind)
    kwargs: dict[str, Any] = {}
    if kind not in HOST_MEMORY:  # a device per process
        torch.accelerator.set_device_index(local)
        if backend != "gloo":
            kwargs["device_id"] = torch.device(device_type(kind), local)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return DistInfo(rank, world, local, local_world, node, backend)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(
    fn: Callable[..., Any], rank: int, world: int, port: int, args: tuple[Any, ...], q: Any, threads: int
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), GROUP_RANK="0",
    )  # fmt: skip
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(threads)
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
        try:
            q.put((rank, True, fn(rank, world, *args)))
        finally:
            dist.destroy_process_group()
    except BaseException:
        q.put((rank, False, traceback.format_exc()))


def is_timeout(message: str) -> bool:
    low = message.lower()
    return "timed out" in low or "timeout" in low


def is_symptom(message: str) -> bool:
    """Errors a rank sees when another rank failed: not the cause."""
    low = message.lower()
    return is_timeout(message) or any(
        # gloo's, then NCCL's words for a peer that went away
        s in low
        for s in (
            "connection reset",
            "connection closed",
            "broken pipe",
            "remote process exited",
            "ncclremoteerror",
        )
    )


def run_local(fn: Callable[..., Any], world_size: int, *args: Any, timeout_s: float = 300.0) -> list[Any]:
    """Run `fn(rank, world_size, *args)` in `world_size` fresh processes joined by a gloo group on this
    machine; return the ranks' results in rank order. `fn` must be importable (module level)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    threads = max(1, (os.cpu_count() or 1) // world_size)
    procs = [
        ctx.Process(target=_entry, args=(fn, r, world_size, port, args, q, threads), daemon=True)
        for r in range(world_size)
    ]
    for p in procs:
        p.start()
    out: dict[int, Any] = {}
    failed: dict[int, str] = {}
    try:
        for _ in range(world_size):
            # After a failure, the others' reports come within moments: a rank that raised tears its
            # process group down before it reports, so its peers' "connection reset" can arrive first.
            try:
                rank, ok, value = q.get(timeout=5.0 if failed else timeout_s)
            except queue.Empty:
                if failed:
                    break
                raise
            if ok:
                out[rank] = value
            else:
                failed[rank] = value
        if failed:
            raise RuntimeError(
                # first-hand causes before the symptoms of a peer that went away
                "\n".join(
                    f"rank {r} failed:\n{failed[r]}"
                    for r in sorted(failed, key=lambda r: (is_symptom(failed[r]), r))
                )
            )
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return [out[r] for r in range(world_size)]


class Lockstep:
    """Keeps the ranks' measurement loops in step: rank 0 decides, every rank follows.

    The engine's loops are adaptive (warm-up until steady, stop at a target precision); ranks that
    decided on their own would run different numbers of steps and deadlock in the workload's
    collectives. Decisions travel over a gloo group on the CPU, outside the timed intervals.
    """

    def __init__(self, group: Any = None) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.group = group
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def agree(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank."""
        box = [value]
        self.dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        out: list[Any] = [None] * self.world_size
        self.dist.all_gather_object(out, value, group=self.group)
        return out


def control_group(backend: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """A gloo group for control messages (objects on the CPU); the default group when it is gloo."""
    import torch.distributed as dist

    if backend == "gloo":
        return None
    return dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))


COMM_SOURCE = {
    "gloo": "torch.profiler: gloo:* spans on gloo's worker threads",
    "nccl": "torch.profiler: NCCL kernels on the GPU",
}


def comm_time_per_step(step: Callable[[], Any], kind: str, steps: int) -> float | str:
    """Seconds per step spent inside collectives, from `steps` steps under torch.profiler, or why not.

    gloo runs each collective on its own threads and records a `gloo:<op>` span for it; NCCL runs
    kernels named nccl* on the GPU. Collectives that overlap compute count in full, and so do gloo
    spans that run at the same time on two threads: the share can exceed the exposed communication.
    The steps always run, profiler or not: the other ranks' steps hold the matching collectives.
    """
    import torch
    from torch.autograd import profiler

    gpu = device_type(kind) == "cuda"  # NCCL kernels on the profiler's CUDA timeline (cuda, rocm)
    synchronize(kind)
    prof: Any = None
    why = ""
    try:
        # The Kineto profiler that torch.profiler.profile wraps, called as it calls it: the wrapper's
        # start asks hasattr(torch, "_inductor"), and that lazy attribute imports inductor and dynamo,
        # 2.5 s of CPU on every rank of every job.
        prof = profiler.profile(use_cpu=True, use_device="cuda" if gpu else None, use_kineto=True)
        prof.__enter__()
    except Exception as exc:  # the profiler is optional: a failure costs the metric, not the run
        prof, why = None, f"torch.profiler did not start: {type(exc).__name__}: {exc}"
    for _ in range(steps):
        step()
    synchronize(kind)
    if prof is None:
        return why
    prof.__exit__(None, None, None)
    total_us = 0.0
    for e in prof.function_events:
        name = e.name.lower()
        if gpu:
            if name.startswith("nccl") and e.device_type == torch.autograd.DeviceType.CUDA:
                total_us += e.device_time_total
        elif name.startswith("gloo:"):
            total_us += e.cpu_time_total
    return total_us / 1e6 / steps
