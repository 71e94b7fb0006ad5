"""One rank of a multi-process run, started by torchrun: `python -m chipbench.execution.dist_worker DEVICE ADDRESS TIMEOUT`.

Rank 0 speaks the single-process worker's protocol to the parent over a Unix socket at ADDRESS
(hello, then one case per message) and relays each case to the other ranks; every rank sets up and
measures it in lockstep; rank 0 sends back one merged result. A rank that fails writes its error to
$CHIPBENCH_DIST_DIR/rank<N>.json and exits non-zero: torchrun then stops the others, and the parent
names the failed rank and starts a fresh job for the next case (a failed collective leaves the group
in an unknown state, so it is never reused).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from chipbench.execution import lifeline, process_groups, worker
from chipbench.execution.protocol import CaseRequest, Reply, RunMessage
from chipbench.execution.worker import error_reply, measure_case, prepare
from chipbench.platform import allocator, device, hardware


def _error_file(rank: int) -> Path | None:
    d = os.environ.get("CHIPBENCH_DIST_DIR")
    return Path(d) / f"rank{rank}.json" if d else None


def _fail(rank: int, exc: BaseException, case: str | None) -> None:
    err = error_reply(exc)
    path = _error_file(rank)
    if path is not None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rank": rank, "case": case, **err}))
        tmp.replace(path)
    print(f"chipbench rank {rank}: {type(exc).__name__}: {err['message']}", file=sys.stderr, flush=True)


def _connect(address: str) -> Connection:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(address)
    return Connection(s.detach())


def _run_case(
    msg: RunMessage, kind: str, info: process_groups.DistInfo, lock: process_groups.Lockstep
) -> Reply:
    """Set up on every rank, agree that every rank is ready, then measure in lockstep.

    A set-up that fails (does not fit, a bad option, a deliberate failure) is reported without ending
    the job, as long as it failed before any collective: the ranks agree on it first. A failure after
    that point ends the job (see the module docstring).
    """
    try:
        request = CaseRequest.read(msg)
        case = prepare(request.bench, request.overrides, kind, request.options.seed, info)
        err = None
    except Exception as exc:
        err = error_reply(exc)
    errs = lock.gather(err)
    failed = [(r, e) for r, e in enumerate(errs) if e is not None]
    if failed:
        rank, e = failed[0]
        reply: Reply = {**e, "type": "error"}
        reply["message"] = f"rank {rank}: {e.get('message', '')}"
        reply["ranks_failed"] = [r for r, _ in failed]
        return reply
    return measure_case(request, kind, case, info, lock)


def _register(rank: int) -> None:
    """rank<N>.pid in the job's folder: the parent reaches this rank even when torchrun is gone."""
    d = os.environ.get("CHIPBENCH_DIST_DIR")
    if d and Path(d).is_dir():
        (Path(d) / f"rank{rank}.pid").write_text(str(os.getpid()))


def _on_sigterm(signum: int, frame: object) -> None:
    """torchrun stops the ranks with SIGTERM (also when chipbench died and the lifeline ended torchrun):
    the last one out removes the job's folder if its chipbench is gone."""
    parent = lifeline.expected_parent()
    d = os.environ.get("CHIPBENCH_DIST_DIR")
    if d and parent is not None and not _alive(parent):
        shutil.rmtree(d, ignore_errors=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # end as SIGTERM does: torchrun reads it as a stopped survivor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(device_req: str, address: str, timeout_s: float) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, _on_sigterm)
    lifeline.die_with_parent(signal.SIGKILL)  # the parent is torchrun's agent
    allocator.tune()  # every rank, before anything is allocated; rank 0's environment records it
    rank = int(os.environ.get("RANK", "0"))
    _register(rank)
    case_name: str | None = None
    try:
        kind = hardware.resolve_device(device_req)
        info = process_groups.init_from_env(kind, timeout_s)
        lock = process_groups.Lockstep(process_groups.control_group(info.backend, timeout_s))
        me = {
            "rank": info.rank,
            "local_rank": info.local_rank,
            "node_rank": info.node_rank,
            "host": socket.gethostname(),
            "device": hardware.device_info(kind).get("name"),
            "free_memory_bytes": hardware.free_memory_bytes(kind),
        }
        ranks = lock.gather(me)
        conn = None
        if info.rank == 0:
            env = hardware.environment(kind)
            env["distributed"] = {
                "world_size": info.world_size,
                "nodes": len({r["node_rank"] for r in ranks}),
                "procs_per_node": info.local_world_size,
                "backend": info.backend,
                "launcher": "torchrun",
                "collective_timeout_s": timeout_s,
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "ranks": [{k: v for k, v in r.items() if k != "free_memory_bytes"} for r in ranks],
            }
            free = min(r["free_memory_bytes"] for r in ranks)
            if kind in device.HOST_MEMORY:
                free //= info.local_world_size  # the ranks on a node share its memory
            conn = _connect(address)
            power = worker.energy_status(kind, info)
            conn.send({"type": "hello", "env": env, "kind": kind, "free_memory_bytes": free, "energy": power})
            print(f"chipbench: {info.world_size} ranks ready ({info.backend})", file=sys.stderr, flush=True)
        while True:
            msg = conn.recv() if conn is not None else None
            msg = lock.agree(msg)
            if msg is None or msg.get("type") == "stop":
                break
            case_name = msg.get("bench")
            reply = _run_case(msg, kind, info, lock)
            if conn is not None:
                conn.send(reply)
            case_name = None
    except BaseException as exc:
        _fail(rank, exc, case_name)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    import torch.distributed as dist

    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
