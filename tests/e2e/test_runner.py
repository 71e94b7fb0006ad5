"""Worker isolation: a crash, exception or hang in one benchmark is recorded; the rest still runs."""

from __future__ import annotations

from chipbench.core.cases import Case
from chipbench.execution.options import RunOptions
from chipbench.execution.pools import WorkerPool
from chipbench.execution.protocol import run_message
from chipbench.execution.session import Session


def test_failures_are_isolated() -> None:
    pool = WorkerPool("cpu")
    session = Session(pool, RunOptions(time_budget_s=0.05, timeout_s=8))
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
    r1 = pool.run(run_message("selftest.busy", {}, RunOptions(time_budget_s=0.05)), 30)
    r2 = pool.run(run_message("selftest.busy", {}, RunOptions(time_budget_s=0.05)), 30)
    assert r1["type"] == r2["type"] == "result"
    assert pool.proc is not None and pool.proc.pid == pid  # torch imported once
    pool.close()
    assert hello["kind"] == "cpu"


def test_run_options_cross_the_pipe_as_the_keys_every_worker_reads() -> None:
    from chipbench.execution.protocol import CaseRequest

    plain = run_message("selftest.busy", {"step_us": 5.0}, RunOptions(time_budget_s=0.5, timeout_s=9))
    assert plain == {
        "type": "run",
        "bench": "selftest.busy",
        "overrides": {"step_us": 5.0},
        "options": {"time_budget_s": 0.5},
        "seed": 0,
    }  # fmt: skip  (what an older worker reads; the time-out stays with the parent)
    opts = RunOptions(time_budget_s=0.5, seed=3, energy="on", soak_s=2.0, after=False)
    msg = run_message("selftest.busy", {}, opts)
    assert {k: msg[k] for k in ("energy", "soak_s", "after", "seed")} == {  # type: ignore[literal-required]
        "energy": "on",
        "soak_s": 2.0,
        "after": False,
        "seed": 3,
    }
    got = CaseRequest.read(msg)
    assert got.options == opts and got.measure.time_budget_s == 0.5
    # A parent of another version: keys left out read at their defaults, engine options passed through.
    old = CaseRequest.read(
        {"type": "run", "bench": "b", "overrides": {}, "options": {"time_budget_s": 1.0, "min_rounds": 7}}
    )  # type: ignore[typeddict-item]
    assert old.options == RunOptions(time_budget_s=1.0) and old.measure.min_rounds == 7


def test_run_options_are_checked() -> None:
    import pytest

    for bad in ({"time_budget_s": 0}, {"energy": "sometimes"}, {"soak_s": -1.0}, {"timeout_s": 0.0}):
        with pytest.raises(ValueError):
            RunOptions(**bad)  # type: ignore[arg-type]
    assert RunOptions(time_budget_s=10).limit_s == 200 and RunOptions(time_budget_s=1).limit_s == 120
    assert RunOptions(timeout_s=5).limit_s == 5
