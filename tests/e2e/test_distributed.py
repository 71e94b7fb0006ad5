"""Multi-process runs on this CPU with gloo: collectives checked for value, lockstep measurement,
the torchrun front door end to end, and a killed or hung rank ending the job within a bound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from chipbench.execution import process_groups as distributed
from chipbench.results import files
from chipbench.workloads import comm
from tests.helpers import run_cli, wait_for
from tests.spinning import wait_spinning

# A rank killed mid-run ends the job within this bound on one node: torchrun's agent notices the dead
# worker (it polls every 0.1 s), stops the others with SIGTERM and exits; the parent then saves.
KILLED_RANK_BOUND_S = 30.0


def _ranks(parent: int, *ranks: int) -> list[psutil.Process]:
    """The job's rank processes among `parent`'s descendants whose RANK is one of `ranks`."""
    found = []
    for proc in psutil.Process(parent).children(recursive=True):
        try:
            if (
                "chipbench.execution.dist_worker" in " ".join(proc.cmdline())
                and int(proc.environ().get("RANK", "-1")) in ranks
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_run_under_torchrun_writes_one_results_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = run_cli(
        "run", "comm.all_gather", "comm.all_reduce", "--set", "size_bytes=65536",
        "--nproc-per-node", "2", "--time-budget", "0.3", "--output", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = files.load(out)
    dist_env = doc["chipbench"]["environment"]["distributed"]
    assert dist_env["world_size"] == 2 and dist_env["backend"] == "gloo" and len(dist_env["ranks"]) == 2
    by = {b["group"]: b["extra_info"] for b in doc["benchmarks"]}
    assert set(by) == {"comm.all_gather", "comm.all_reduce"}
    assert all(b["name"].endswith("@world2") for b in doc["benchmarks"])
    ag, ar = by["comm.all_gather"]["metrics"], by["comm.all_reduce"]["metrics"]
    assert ag["gbps_busbw"] == pytest.approx(ag["gbps"] * 0.5)  # (n-1)/n
    assert ar["gbps_busbw"] == pytest.approx(ar["gbps"] * 1.0)  # 2(n-1)/n
    assert "share_of_peak_bw" not in ag and "share_of_peak_bw" not in by["comm.all_gather"]["unavailable"]
    assert by["comm.all_gather"]["info"]["size_bytes_used"] == 65536
    # The profiler finds the step's time inside gloo's collective (about all of it, for a collective).
    assert (
        ag["comm_share_of_step"] > 0.1
        and len(by["comm.all_gather"]["measurement"]["extra"]["comm_s_per_step_by_rank"]) == 2
    )


def test_collectives_need_several_processes(tmp_path: Path) -> None:
    p = run_cli("run", "comm.all_reduce", "--output", str(tmp_path / "r.json"))
    assert p.returncode == 2 and "--nproc-per-node 2" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.json").exists()
    p = run_cli("run", "selftest.busy", "--nnodes", "2", "--output", str(tmp_path / "r.json"))
    assert p.returncode == 2 and "--rdzv-endpoint" in p.stderr and not (tmp_path / "r.json").exists()


def test_killed_rank_ends_the_job_within_the_bound(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        # Rank 1 spins in its step, rank 0 waits for it in lockstep (collective time-out 300 s): only the
        # kill can end this job early.
        [sys.executable, "-m", "chipbench.cli", "run", "selftest.busy", "--set", "fail=hang",
         "--set", "fail_rank=1", "--nproc-per-node", "2", "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "true"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until the job is up and running the case
            if "ranks ready" in line:
                break
        (rank1,) = wait_spinning(lambda: _ranks(proc.pid, 1), 120)  # mid-run, not between cases
        os.kill(rank1.pid, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = proc.communicate(timeout=KILLED_RANK_BOUND_S + 30)
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()  # torchrun runs in its own session: it would outlive the CLI
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "chipbench: error: selftest.busy[fail=hang,fail_rank=1]@world2: rank_died: rank 1 died" in stderr
    assert took < KILLED_RANK_BOUND_S
    assert out.exists(), stderr
    (err,) = files.load(out)["chipbench"]["errors"]
    assert err["error_type"] == "rank_died" and err["message"].startswith("rank 1 died (killed by signal 9)")


def test_hung_rank_ends_at_the_collective_timeout(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    t0 = time.monotonic()
    p = run_cli(
        "run", "selftest.busy", "--set", "fail=hang", "--set", "fail_rank=1", "--nproc-per-node", "2",
        "--dist-timeout", "5", "--time-budget", "0.2", "--output", str(out),
    )  # fmt: skip
    assert p.returncode == 1 and time.monotonic() - t0 < 60
    (err,) = files.load(out)["chipbench"]["errors"]
    assert err["error_type"] == "collective_timeout" and "(5 s)" in err["message"]


def test_sweep_writes_one_file_with_scaling_efficiency(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = run_cli(
        "run", "selftest.busy", "--nproc-per-node", "1,2", "--time-budget", "0.2", "--output", str(out)
    )
    assert p.returncode == 0, p.stderr
    doc = files.load(out)
    assert [r["world_size"] for r in doc["chipbench"]["runs"]] == [1, 2]
    one, two = doc["benchmarks"]
    assert (one["name"], two["name"]) == ("selftest.busy", "selftest.busy@world2")
    m = two["extra_info"]["metrics"]
    expect = m["samples_per_s"] / one["extra_info"]["metrics"]["samples_per_s"]
    assert m["speedup_over_1proc"] == pytest.approx(expect)
    assert m["scaling_efficiency"] == pytest.approx(expect / 2)
    assert two["extra_info"]["scaling"] == {
        "baseline": "selftest.busy",
        "metric": "samples_per_s",
        "world_size": 2,
    }
    assert "scaling_efficiency" not in one["extra_info"]["metrics"]
    # The runs follow one another in one process: the sweep's wall time covers both.
    spent = sum(b["extra_info"]["measurement"]["extra"]["total_s"] for b in doc["benchmarks"])
    assert doc["chipbench"]["wall_s"] > spent and "s from start to save" in p.stdout


@pytest.mark.parametrize("value", ["0", "1,x", ""])
def test_bad_nproc_is_one_line(value: str, tmp_path: Path) -> None:
    p = run_cli("run", "selftest.busy", "--nproc-per-node", value, "--output", str(tmp_path / "r.json"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "--nproc-per-node" in p.stderr
    assert not (tmp_path / "r.json").exists()


def test_two_nodes_on_localhost(tmp_path: Path) -> None:
    """The multi-node path for real, with both 'nodes' on this machine: node 1 only hosts its rank,
    node 0's rank 0 writes the one results file describing both nodes."""
    out = tmp_path / "r.json"
    ep = f"127.0.0.1:{distributed.free_port()}"
    common = ["run", "comm.all_reduce", "--set", "size_bytes=4096", "--nproc-per-node", "1", "--nnodes", "2",
              "--rdzv-endpoint", ep, "--time-budget", "0.2"]  # fmt: skip
    follower = subprocess.Popen(
        [sys.executable, "-m", "chipbench.cli", *common, "--node-rank", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "true"},
    )  # fmt: skip
    try:
        p = run_cli(*common, "--node-rank", "0", "--output", str(out), timeout=180)
        _, ferr = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert p.returncode == 0, p.stderr
    assert follower.returncode == 0 and "results are written on node 0" in ferr
    d = files.load(out)["chipbench"]["environment"]["distributed"]
    assert (d["world_size"], d["nodes"]) == (2, 2) and [r["node_rank"] for r in d["ranks"]] == [0, 1]


def test_sigterm_and_timeouts_leave_no_rank_behind(tmp_path: Path) -> None:
    """torchrun starts each rank in its own session: stopping the job must still reach every rank."""
    out = tmp_path / "r.json"
    args = [sys.executable, "-m", "chipbench.cli", "run", "selftest.busy", "--set", "fail=hang",
            "--nproc-per-node", "2", "--output", str(out)]  # fmt: skip
    env = {**os.environ, "CI": "true"}
    # A per-case time-out kills the job and records the case. The step never returns: any time-out
    # ends it, and the clock starts once the job is up, so 1 s is as good as a longer one.
    p = subprocess.run([*args, "--timeout", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1 and files.load(out)["chipbench"]["errors"][0]["error_type"] == "timeout"
    # SIGTERM (a cancelled CI job) acts as Ctrl-C.
    out.unlink()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ranks = wait_spinning(lambda: _ranks(proc.pid, 0, 1), 120, count=2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and not out.exists()

    def left() -> list[int]:
        alive = []
        for r in ranks:
            try:
                if r.is_running() and r.status() != psutil.STATUS_ZOMBIE:
                    alive.append(r.pid)
            except psutil.NoSuchProcess:
                continue
        return alive

    wait_for(lambda: not left(), 1.0, 0.05)  # every rank gone within 1 s of the CLI's exit
    assert not left()


def _collectives(rank: int, world: int) -> list[str]:
    """Every collective, checked for value at two sizes (one not a multiple of the world size)."""
    import torch

    done = []
    for op in comm.OPS:
        for count in (world * 5, world * 1000 + 1):
            n = count // world * world
            comm.check_collective(op, n, rank, world, torch.float32, "cpu")
            comm.check_collective(op, n, rank, world, torch.bfloat16, "cpu")
            done.append(op)
    return done


def _lockstep(rank: int, world: int) -> dict[str, object]:
    """A step with a collective, rank 1 slower: lockstep keeps the ranks together (no deadlock), and
    each sample is the slower rank's time."""
    import torch
    import torch.distributed as dist

    from chipbench.measure.engine import MeasureOptions, measure
    from chipbench.platform.device import Device

    t = torch.ones(4)
    pause = 0.002 if rank == 1 else 0.0005

    def step() -> None:
        end = time.perf_counter() + pause
        while time.perf_counter() < end:
            pass
        dist.all_reduce(t)

    m = measure(step, Device("cpu"), MeasureOptions(time_budget_s=0.3), distributed.Lockstep())
    return {"n": len(m.samples), "median": sorted(m.samples)[len(m.samples) // 2], "extra": m.extra.as_dict()}


def _collectives_and_lockstep(rank: int, world: int) -> dict[str, object]:
    return {"collectives": _collectives(rank, world), "lockstep": _lockstep(rank, world)}


@pytest.fixture(scope="module")
def two_ranks() -> list[dict[str, Any]]:
    """One run_local spawn (two processes importing torch) for the value and the lockstep checks."""
    return distributed.run_local(_collectives_and_lockstep, 2)


def test_collectives_give_the_right_values(two_ranks: list[dict[str, Any]]) -> None:
    got = [r["collectives"] for r in two_ranks]
    assert got[0] == got[1] and len(got[0]) == 2 * len(comm.OPS)


def _rank0_raises(rank: int, world: int) -> None:
    import torch
    import torch.distributed as dist

    dist.barrier()
    if rank == 0:
        raise ValueError("rank 0's own failure")
    time.sleep(0.5)  # rank 0 tears its group down meanwhile: this collective loses its peer
    dist.all_reduce(torch.ones(4))


def test_run_local_reports_the_first_hand_failure_first() -> None:
    with pytest.raises(RuntimeError) as exc:
        distributed.run_local(_rank0_raises, 2, timeout_s=60)
    text = str(exc.value)
    assert text.startswith("rank 0 failed:")
    assert "ValueError: rank 0's own failure" in text


def test_lockstep_measurement_takes_the_slowest_rank(two_ranks: list[dict[str, Any]]) -> None:
    r0, r1 = (r["lockstep"] for r in two_ranks)
    assert r0["n"] == r1["n"] and r0["median"] == r1["median"]
    assert r0["median"] >= 0.002  # the slower rank's pause, not rank 0's own 0.5 ms
    assert r0["extra"]["world_size"] == 2 and len(r0["extra"]["per_rank_median_s"]) == 2


def test_mixed_cases_failing_rank_named_next_case_runs(tmp_path: Path) -> None:
    """A rank that raises in set-up is named and the next case runs in the same job; throughput is global."""
    from chipbench.core.cases import Case
    from chipbench.execution.options import Destination, RunOptions
    from chipbench.execution.pools import DistWorkerPool, Launch
    from chipbench.execution.session import execute

    cases = [
        Case("selftest.busy", {"fail": "raise", "fail_rank": 1}),
        Case("comm.broadcast", {"size_bytes": 4096}),
        Case("selftest.busy", {"step_us": 500.0}),
    ]
    pool = DistWorkerPool("cpu", Launch(2))
    got = execute(
        cases, pool=pool, options=RunOptions(time_budget_s=0.2, timeout_s=120),
        destination=Destination(None, ["chipbench"], tmp_path / "r.json"),
    )  # fmt: skip
    path, code = got.path, got.exit_code
    assert code == 1 and path is not None
    assert pool.launched == 1  # a set-up failure, agreed on before any collective, keeps the job
    doc = files.load(path)
    (err,) = doc["chipbench"]["errors"]
    assert err["group"] == "selftest.busy" and err["message"].startswith(
        "rank 1: selftest: deliberate failure"
    )
    assert [b["group"] for b in doc["benchmarks"]] == ["comm.broadcast", "selftest.busy"]
    busy = doc["benchmarks"][1]["extra_info"]
    assert busy["metrics"]["samples_per_s"] == pytest.approx(2 * busy["metrics"]["samples_per_s_per_rank"])
    assert len(busy["measurement"]["extra"]["per_rank_median_s"]) == 2
