"""Worker isolation: a crash, exception or hang in one benchmark is recorded; the rest still runs."""

from __future__ import annotations

from chipbench.core.cases import Case
from chipbench.execution.pools import WorkerPool
from chipbench.execution.protocol import run_message
from chipbench.execution.session import Session


def test_failures_are_isolated() -> None:
    pool = WorkerPool("cpu")
    session = Session(pool, time_budget_s=0.05, timeout_s=8)
    session.start()
    cases = [
        Case("selftest.busy", {"fail": "crash"}),
        Case("selftest.busy", {"step_us": 200.0}),
        Case("selftest.busy", {"fail": "raise"}),
        Case("selftest.busy", {"fail": "hang"}),
        Case("calib.matmul", {"m": 64, "n": 64, "k": 64, "dtype": "fp32"}),
    ]
    out = session.run(cases)
    kinds = [oc.payload.get("error_type") if not oc.ok else "ok" for oc in out.outcomes]
    assert kinds == ["crash", "ok", "RuntimeError", "timeout", "ok"]
    crash = out.outcomes[0].payload
    assert "exited with code 3" in crash["message"]
    assert "deliberate failure" in out.outcomes[2].payload["message"]
    assert out.outcomes[2].payload["traceback"]
    ok = out.outcomes[1].payload
    samples = sorted(ok["measurement"]["samples"])
    assert 150e-6 < samples[len(samples) // 2] < 2e-3
    assert ok["config"] == {"step_us": 200.0, "fail": "none", "fail_rank": -1, "fail_after_steps": 0}
    assert pool.proc is None  # closed at the end


def test_worker_serves_several_benchmarks() -> None:
    pool = WorkerPool("cpu")
    hello = pool.start()
    pid = pool.proc.pid if pool.proc else None
    r1 = pool.run(run_message("selftest.busy", {}, 0.05), 30)
    r2 = pool.run(run_message("selftest.busy", {}, 0.05), 30)
    assert r1["type"] == r2["type"] == "result"
    assert pool.proc is not None and pool.proc.pid == pid  # torch imported once
    pool.close()
    assert hello["kind"] == "cpu"
