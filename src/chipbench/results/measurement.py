"""A case's measurement as recorded: how its samples were taken (the samples themselves are the
benchmark's `stats.data`) and the extras the worker adds (energy, soak, contention, the harness's own time,
collectives' time per rank)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chipbench.results.wire import Record, number


@dataclass(frozen=True)
class Energy(Record):
    """The energy of the timed steps (measure.energy), or why there is none."""

    joules: float | None = None
    steps: int | None = None
    window_s: float | None = None
    avg_power_w: float | None = None
    idle_power_w: float | None = None
    """Power while the device idled just before the window (recorded, not subtracted)."""
    scope: str | None = None
    """Which devices the reading covers (this process's, the node's)."""
    method: str | None = None
    joules_per_step: float | None = None
    unavailable: str | None = None
    """Why there is no reading (no energy source on this device)."""
    timed_step_s: float | None = None
    """The timed rounds' median step (absent in files from before it was recorded)."""
    window_step_s: float | None = None
    """The energy window's mean step: window_s / steps."""
    unlike_timed: str | None = None
    """Why the window's steps are unlike the timed ones (more than 10% off the timed median): its energy
    per step is then not the timed steps' (flagged); None: alike, or not compared."""

    OMIT_NONE = ("timed_step_s", "window_step_s", "unlike_timed")


@dataclass(frozen=True)
class Soak(Record):
    """A `--soak` before the timed steps: the clocks and temperature before and after it."""

    seconds: float | None = None
    steps: int | None = None
    before: Mapping[str, Any] = field(default_factory=dict)
    """Telemetry before the soak (platform.telemetry: clocks in MHz, temperatures in C), as read."""
    after: Mapping[str, Any] = field(default_factory=dict)
    after_timing: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """`soaked 60 s: clock 3400 -> 3100 MHz, 71 C`, or empty without a duration."""
        if self.seconds is None:
            return ""
        parts = [f"soaked {self.seconds:.0f} s"]
        for key, unit in (("sm_clock_mhz", "MHz"), ("clock_mhz_mean", "MHz"), ("temperature_c", "C"),
                          ("temperature_c_max", "C")):  # fmt: skip
            a, b = number(self.before.get(key)), number(self.after.get(key))
            if a is not None and b is not None:
                parts.append(f"{key.split('_')[0]} {a:.0f} -> {b:.0f} {unit}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Contention(Record):
    """The kernel's word on whether another process held this case's CPUs (platform.contention)."""

    wall_s: float | None = None
    threads: int | None = None
    run_delay_share: float | None = None
    steal_share: float | None = None
    cpu_share: float | None = None
    disturbed: str | None = None
    """Why the machine was disturbed while the case was measured; None: it was not (or cannot tell)."""
    unavailable: str | None = None


@dataclass(frozen=True)
class MeasurementExtra(Record):
    """What the engine and the worker add to a measurement; any of it may be absent (older files)."""

    total_s: float | None = None
    """Seconds of timed steps: first step, warm-up and rounds."""
    late_warmup_samples: int | None = None
    """Leading samples dropped as late warm-up."""
    drift_late_over_early: float | None = None
    per_rank_median_s: tuple[float, ...] | None = None
    per_rank_peak_mem_bytes: tuple[float, ...] | None = None
    world_size: int | None = None
    comm_unavailable: str | None = None
    """Why collectives were not timed."""
    comm_s_per_step_by_rank: tuple[float, ...] | None = None
    """Each rank's seconds in collectives per step (multi-process runs)."""
    comm_source: str | None = None
    contention: Contention | None = None
    soak: Soak | None = None
    energy: Energy | None = None
    setup_s: float | None = None
    """Seconds the case took to set up (build the model, make the inputs)."""
    after_s: float | None = None
    """Seconds of the parts pass after the timed rounds (the roofline's)."""

    @property
    def disturbed(self) -> str | None:
        """Why the machine was disturbed while this was measured (the kernel's evidence), or None."""
        return self.contention.disturbed if self.contention is not None else None


MeasurementExtra.OMIT_NONE = (
    MeasurementExtra.json_keys()
)  # built in code: what was not measured is not written


@dataclass(frozen=True)
class Measurement(Record):
    """How a case's samples were taken (measure.engine.Measurement, without the samples)."""

    iterations: int | None = None
    """Steps averaged per sample."""
    first_step_s: float | None = None
    """The first call alone: compilation, lazy init, allocator growth."""
    warmup_steps: int | None = None
    warmup_s: float | None = None
    stop_reason: str | None = None
    rel_ci95: float | None = None
    timer: str | None = None
    measure_s: float | None = None
    peak_mem_bytes: int | None = None
    peak_mem_source: str | None = None
    extra: MeasurementExtra = field(default_factory=MeasurementExtra)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Measurement:
        """From a results file's `measurement`, or a worker's (its `samples` go to the stats, not here)."""
        return super().from_json({k: v for k, v in d.items() if k != "samples"})
