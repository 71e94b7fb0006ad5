"""The one measurement primitive every benchmark goes through.

`measure(step, device)` runs a first step (one-off costs such as torch.compile or lazy init, reported
apart), warms up until step times are steady, then times rounds until the time budget is spent or the
median is known to the target precision, keeping every raw sample. Device work is timed correctly:
CUDA/ROCm with events per sample and one synchronize per round, MPS/XPU with synchronize + perf_counter,
CPU with perf_counter.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from chipbench.core.config import check
from chipbench.core.stats import rel_ci_halfwidth
from chipbench.core.wire import Info
from chipbench.platform.device import EVENT_TIMED, Device, Step


class Lockstep(Protocol):
    """Keeps the ranks of a multi-process run in step (execution.process_groups.Lockstep)."""

    def agree(self, value: Any) -> Any:
        """Rank 0's value, on every rank."""

    def gather(self, value: Any) -> list[Any]:
        """Every rank's value, in rank order."""


@dataclass(frozen=True)
class MeasureOptions:
    """How long and how precisely to measure one benchmark."""

    time_budget_s: float = 5.0
    """Wall time for the timed rounds (warm-up and the first step not included)."""
    min_rounds: int = 5
    """Fewest samples kept, even past the time budget."""
    max_rounds: int = 10_000
    """Most samples kept."""
    target_rel_ci: float = 0.01
    """Stop early once the 95% CI half-width of the median is at most this share of the median."""
    warmup_max_s: float | None = None
    """Longest warm-up while step times are still changing; default: half the time budget, at least 2 s
    (one-off kernel generation, e.g. oneDNN's bf16 kernels, can slow the first few steps 30x)."""
    min_warmup_steps: int = 2
    """Fewest warm-up steps after the first step."""
    steady_window: int = 3
    """Warm-up is steady when the medians of two consecutive windows of this many samples agree..."""
    steady_tolerance: float = 0.05
    """...within this relative tolerance."""
    min_sample_s: float = 2e-4
    """Steps shorter than this are grouped `iterations` to a sample so timer overhead stays negligible."""
    round_s: float = 0.05
    """Target length of a round (the samples between two synchronizations on event-timed devices)."""

    def __post_init__(self) -> None:
        check(self.time_budget_s > 0, f"time_budget_s must be > 0, got {self.time_budget_s}")
        check(1 <= self.min_rounds <= self.max_rounds, "need 1 <= min_rounds <= max_rounds")
        check(0 < self.target_rel_ci < 1, "target_rel_ci must be in (0, 1)")


@dataclass
class MeasurementExtra:
    """What a measurement records besides its samples: the engine's own accounting, and what the worker
    adds around it. A field left at None is absent from the results file."""

    total_s: float | None = None
    """Wall time of the whole measurement: first step, warm-up and timed rounds."""
    late_warmup_samples: int | None = None
    """Leading samples dropped as late warm-up (counted in warmup_steps)."""
    per_rank_median_s: list[float] | None = None
    """Each rank's own median (a multi-process run: the samples are each round's slowest rank)."""
    per_rank_peak_mem_bytes: list[int | None] | None = None
    world_size: int | None = None
    drift_late_over_early: float | None = None
    """Median of the last third of the samples over the first third's (with 9 samples or more)."""
    comm_s_per_step_by_rank: list[float] | None = None
    """Seconds in collectives per step, each rank's, from a few extra profiled steps."""
    comm_source: str | None = None
    comm_unavailable: str | None = None
    """Why the collectives' time was not read."""
    contention: Info | None = None
    """platform.contention's evidence of other work on the cores (JSON)."""
    soak: Info | None = None
    """The soak before timing and the telemetry around it (JSON)."""
    energy: Info | None = None
    """The energy phase after the timed rounds, or why there was none (JSON)."""
    setup_s: float | None = None
    """Wall time of preparing the case (model, data, tables)."""
    after_s: float | None = None
    """Wall time of the after-rounds measurements."""

    def as_dict(self) -> dict[str, Any]:
        """The results file's `measurement.extra`: the fields that were set."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class Measurement:
    """Raw samples and how they were taken."""

    samples: list[float]
    """Seconds per step, one value per sample (a sample averages `iterations` steps)."""
    iterations: int
    first_step_s: float
    """The first call alone: compilation, lazy init, allocator growth."""
    warmup_steps: int
    warmup_s: float
    stop_reason: str
    rel_ci95: float
    timer: str
    measure_s: float
    peak_mem_bytes: int | None = None
    peak_mem_source: str | None = None
    extra: MeasurementExtra = field(default_factory=MeasurementExtra)

    def as_dict(self) -> dict[str, Any]:
        """The measurement as the worker's reply (and the results file) hold it."""
        return {
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "extra": self.extra.as_dict(),
        }


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _trim_transient(samples: list[float]) -> int:
    """Drop leading samples over twice the 90th percentile of the rest, in place; return how many.

    They are late warm-up (one-off kernel generation that outlasted the warm-up cap), not the steady
    state; the result counts them as warm-up and says how many there were.
    """
    dropped = 0
    while len(samples) >= 3:
        rest = sorted(samples[1:])
        if samples[0] <= 2.0 * rest[int(0.9 * (len(rest) - 1))]:
            break
        samples.pop(0)
        dropped += 1
    return dropped


def measure(
    step: Step, device: Device, options: MeasureOptions | None = None, lockstep: Lockstep | None = None
) -> Measurement:
    """Time `step` on `device`; see the module docstring for the protocol.

    `lockstep` (an execution.process_groups.Lockstep) makes every rank of a multi-process run take the same number
    of steps, by rank 0's decisions; the samples returned are then each round's slowest rank.
    """
    opt = options or MeasureOptions()
    clock = time.perf_counter
    t_start = clock()
    gc.collect()  # before the reset: garbage of earlier cases must not count in this one's peak
    device.reset_peak_memory()

    device.synchronize()
    t0 = clock()
    step()
    device.synchronize()
    first_step_s = clock() - t0

    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed step is noise, not the workload
    try:
        warm = _warm_up(step, device, opt, lockstep)
        timed = _timed_rounds(step, device, opt, warm.estimate_s, lockstep)
    finally:
        if gc_was_enabled:
            gc.enable()
    peak, source = device.peak_memory()
    samples = timed.samples
    extra = MeasurementExtra(total_s=clock() - t_start, late_warmup_samples=timed.late)
    if lockstep is not None:
        samples, peak = _combine_ranks(lockstep, samples, peak, extra)
    rel_ci = rel_ci_halfwidth(samples)
    third = len(samples) // 3
    if third >= 3:
        # Step times that still moved while timing (late warm-up, thermal or co-tenant drift) are flagged.
        first, last = _median(samples[:third]), _median(samples[-third:])
        extra.drift_late_over_early = last / first if first > 0 else None
    return Measurement(
        samples=samples,
        iterations=timed.iterations,
        first_step_s=first_step_s,
        warmup_steps=warm.steps + timed.late * timed.iterations,
        warmup_s=warm.seconds,
        stop_reason=timed.stop,
        rel_ci95=rel_ci,
        timer=device.timer_name,
        measure_s=timed.seconds,
        peak_mem_bytes=peak,
        peak_mem_source=source,
        extra=extra,
    )


@dataclass(frozen=True)
class _Warm:
    steps: int
    seconds: float
    estimate_s: float
    """A step's time at the end of the warm-up (rank 0's, in a multi-process run)."""


def _warm_up(step: Step, device: Device, opt: MeasureOptions, lockstep: Lockstep | None) -> _Warm:
    """Warm-up until two consecutive windows agree (or the warm-up budget is spent)."""
    clock = time.perf_counter
    warmup_max = opt.warmup_max_s if opt.warmup_max_s is not None else max(2.0, 0.5 * opt.time_budget_s)
    w = opt.steady_window
    warm: list[float] = []
    t_warm = clock()
    while True:
        warm += device.time_samples(step, 1, 1)
        n = len(warm)
        steady = False
        if n >= max(opt.min_warmup_steps, 2 * w):
            a, b = _median(warm[-2 * w : -w]), _median(warm[-w:])
            steady = abs(b - a) <= opt.steady_tolerance * max(a, b)
        done = steady or (n >= opt.min_warmup_steps and clock() - t_warm >= warmup_max)
        if lockstep is not None:
            done = lockstep.agree(done)
        if done:
            break
    warmup_s = clock() - t_warm
    est = _median(warm[-w:])
    if lockstep is not None:
        est = lockstep.agree(est)
    return _Warm(len(warm), warmup_s, est)


@dataclass(frozen=True)
class _Timed:
    samples: list[float]
    iterations: int
    late: int
    """Leading samples dropped as late warm-up."""
    stop: str
    seconds: float


def _timed_rounds(
    step: Step, device: Device, opt: MeasureOptions, est: float, lockstep: Lockstep | None
) -> _Timed:
    """Rounds of samples until the time budget is spent, the median is precise enough or max_rounds."""
    clock = time.perf_counter
    iterations = max(1, math.ceil(opt.min_sample_s / est)) if est > 0 else 1
    per_round = 1
    if device.kind in EVENT_TIMED:
        per_round = int(min(64, max(1, opt.round_s // max(est * iterations, 1e-9))))

    samples: list[float] = []
    late = 0
    t_meas = clock()
    next_check = opt.min_rounds
    rel_ci = math.inf
    stop = "max_rounds"
    take = min(per_round, opt.max_rounds)
    while take > 0:
        samples += device.time_samples(step, take, iterations)
        if len(samples) <= 4 * opt.min_rounds:
            late += _trim_transient(samples)
        n = len(samples)
        reason = None
        if n >= opt.max_rounds:
            reason = "max_rounds"
        elif n >= opt.min_rounds:
            if clock() - t_meas >= opt.time_budget_s:
                reason = "time_budget"
            elif n >= next_check:
                rel_ci = rel_ci_halfwidth(samples)
                if rel_ci <= opt.target_rel_ci:
                    reason = "target_precision"
                next_check = n + max(1, n // 10)  # the CI costs ~1 ms: check on a geometric schedule
        take = 0 if reason else min(per_round, opt.max_rounds - n)
        if lockstep is not None:
            reason, take = lockstep.agree((reason, take))
        if reason:
            stop = reason
    return _Timed(samples, iterations, late, stop, clock() - t_meas)


def _combine_ranks(
    lockstep: Lockstep, samples: list[float], peak: int | None, extra: MeasurementExtra
) -> tuple[list[float], int | None]:
    """Each round's slowest rank (a synchronous step is as slow as its slowest rank), and the largest
    peak memory; per-rank medians are kept so an imbalance shows."""
    got = lockstep.gather((samples, peak))
    # Ranks may have trimmed different numbers of leading samples: align the rounds from the end.
    n = min(len(s) for s, _ in got)
    combined = [max(s[len(s) - n + i] for s, _ in got) for i in range(n)]
    extra.per_rank_median_s = [_median(s) for s, _ in got]
    extra.per_rank_peak_mem_bytes = [p for _, p in got]
    extra.world_size = len(got)
    peaks = [p for _, p in got if p is not None]
    return combined, (max(peaks) if peaks else peak)
