"""The measurement primitive, driven by a fake asynchronous device and a fake clock."""

from __future__ import annotations

import pytest

from chipbench.measure import engine
from chipbench.measure.engine import MeasureOptions, measure
from chipbench.platform.device import Device


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakeAsyncDevice(Device):
    """Steps only enqueue work; time passes when the host synchronizes (like a GPU stream)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__("xpu")  # a synchronize + perf_counter device kind
        self.clock = clock
        self.pending = 0.0
        self.syncs = 0

    def synchronize(self) -> None:
        self.syncs += 1
        self.clock.t += self.pending
        self.pending = 0.0

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> tuple[int | None, str]:
        return 123, "fake"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(engine.time, "perf_counter", c)
    return c


def test_async_work_is_synchronized_and_timed(clock: FakeClock) -> None:
    dev = FakeAsyncDevice(clock)
    durations = iter([0.5] + [0.010] * 100_000)  # a slow first step (compile), then steady 10 ms

    def step() -> None:
        dev.pending += next(durations)
        clock.t += 1e-6  # host-side launch cost only

    m = measure(step, dev, MeasureOptions(time_budget_s=1.0, min_rounds=5))
    assert m.first_step_s == pytest.approx(0.5, rel=1e-3)
    assert m.samples and all(s == pytest.approx(0.010, rel=1e-3) for s in m.samples)
    assert m.stop_reason == "target_precision"  # constant samples: the CI collapses
    assert m.peak_mem_bytes == 123 and dev.syncs >= len(m.samples)


def test_warmup_runs_until_steady(clock: FakeClock) -> None:
    dev = FakeAsyncDevice(clock)
    # Cache warming: steps get faster for a while, then settle at 2 ms.
    seq = [0.1, 0.05, 0.02, 0.01, 0.008, 0.006, 0.004, 0.003] + [0.002] * 100_000
    it = iter(seq)

    def step() -> None:
        dev.pending += next(it)

    m = measure(step, dev, MeasureOptions(time_budget_s=0.5))
    assert m.warmup_steps >= 7  # not a fixed count: it waited for the slow steps to pass
    assert max(m.samples) == pytest.approx(0.002, rel=1e-3)


def test_short_steps_are_grouped_into_iterations(clock: FakeClock) -> None:
    dev = FakeAsyncDevice(clock)

    def step() -> None:
        dev.pending += 1e-6

    m = measure(step, dev, MeasureOptions(time_budget_s=0.2, min_sample_s=1e-4))
    assert m.iterations in (100, 101)  # ceil(1e-4 / 1e-6) up to float rounding
    assert m.samples[0] == pytest.approx(1e-6, rel=1e-3)


def test_time_budget_stops_noisy_measurement(clock: FakeClock) -> None:
    dev = FakeAsyncDevice(clock)
    vals = iter([0.001, 0.003] * 1_000_000)  # bimodal: the median CI stays wide

    def step() -> None:
        dev.pending += next(vals)

    m = measure(step, dev, MeasureOptions(time_budget_s=0.5, target_rel_ci=0.001, steady_tolerance=1.0))
    assert m.stop_reason == "time_budget"
    assert 0.5 <= m.measure_s < 0.6


def test_max_rounds_and_min_rounds(clock: FakeClock) -> None:
    dev = FakeAsyncDevice(clock)
    vals = iter([0.001, 0.003] * 1_000_000)

    def step() -> None:
        dev.pending += next(vals)

    m = measure(
        step, dev, MeasureOptions(time_budget_s=100, max_rounds=40, target_rel_ci=0.001, steady_tolerance=1.0)
    )
    assert m.stop_reason == "max_rounds" and len(m.samples) == 40
    m = measure(step, dev, MeasureOptions(time_budget_s=1e-9, min_rounds=7, steady_tolerance=1.0))
    assert len(m.samples) == 7


def test_gc_is_restored(clock: FakeClock) -> None:
    import gc

    dev = FakeAsyncDevice(clock)
    seen = []

    def step() -> None:
        seen.append(gc.isenabled())
        dev.pending += 0.001

    measure(step, dev, MeasureOptions(time_budget_s=0.05))
    assert gc.isenabled() and not any(seen[1:])


def test_options_validated() -> None:
    with pytest.raises(ValueError):
        MeasureOptions(time_budget_s=0)
    with pytest.raises(ValueError):
        MeasureOptions(min_rounds=10, max_rounds=5)


def test_real_cpu_timer_measures_busy_loop() -> None:
    """Real perf_counter path on a busy-wait step: generous bounds, this checks wiring not speed."""
    import time

    def step() -> None:
        end = time.perf_counter() + 0.001
        while time.perf_counter() < end:
            pass

    m = measure(step, Device("cpu"), MeasureOptions(time_budget_s=0.2))
    med = sorted(m.samples)[len(m.samples) // 2]
    assert 0.001 <= med < 0.005
    assert m.peak_mem_bytes and m.peak_mem_bytes > 0 and m.timer == "perf_counter"


def test_warmup_outlasts_half_budget_when_first_steps_are_slow(clock: FakeClock) -> None:
    # oneDNN-style first-use kernel generation: four 0.8 s steps, then 25 ms, under a 0.3 s budget.
    dev = FakeAsyncDevice(clock)
    it = iter([0.8] * 5 + [0.025] * 100_000)

    def step() -> None:
        dev.pending += next(it)

    m = measure(step, dev, MeasureOptions(time_budget_s=0.3))
    assert max(m.samples) == pytest.approx(0.025, rel=1e-3)
    assert m.warmup_steps >= 4 and len(m.samples) >= 5


def test_steady_slow_samples_are_not_trimmed(clock: FakeClock) -> None:
    dev = FakeAsyncDevice(clock)
    it = iter([0.010, 0.012] * 100_000)

    def step() -> None:
        dev.pending += next(it)

    m = measure(step, dev, MeasureOptions(time_budget_s=0.3, target_rel_ci=1e-6))
    assert m.extra.late_warmup_samples == 0
    assert m.extra.drift_late_over_early == pytest.approx(1.0, abs=0.2)
