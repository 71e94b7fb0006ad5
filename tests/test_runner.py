"""Worker isolation: a crash, exception or hang in one benchmark is recorded; the rest still runs."""

from __future__ import annotations

from chipbench.bench import Case
from chipbench.runner import WorkerPool, run_cases

OPTS = {"time_budget_s": 0.05}


def test_failures_are_isolated() -> None:
    pool = WorkerPool("cpu")
    hello = pool.start()
    cases = [
        Case("selftest.busy", {"fail": "crash"}),
        Case("selftest.busy", {"step_us": 200.0}),
        Case("selftest.busy", {"fail": "raise"}),
        Case("selftest.busy", {"fail": "hang"}),
        Case("calib.matmul", {"m": 64, "n": 64, "k": 64, "dtype": "fp32"}),
    ]
    out = run_cases(pool, hello, cases, options=OPTS, timeout_s=8)
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
    r1 = pool.run({"type": "run", "bench": "selftest.busy", "overrides": {}, "options": OPTS}, 30)
    r2 = pool.run({"type": "run", "bench": "selftest.busy", "overrides": {}, "options": OPTS}, 30)
    assert r1["type"] == r2["type"] == "result"
    assert pool.proc is not None and pool.proc.pid == pid  # torch imported once
    pool.close()
    assert hello["kind"] == "cpu"
