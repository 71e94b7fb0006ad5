"""The energy phase: after a benchmark's timed rounds, the same step run for a window of at least 1 s and
10 updates of the counter, synchronized at both ends, its energy read from the device's counter (or polled
power). Idle power is read for a short while before, recorded, and not subtracted. Also `soak`: the step
run for a while before timing, with the clocks and temperatures the platform reports before and after.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from chipbench.core.wire import Info
from chipbench.measure.engine import Lockstep
from chipbench.platform import telemetry
from chipbench.platform.device import Device, Step
from chipbench.platform.energy import Source

MIN_WINDOW_S = 1.0
IDLE_S = 0.5
UNLIKE_TIMED = 0.10
"""Past this relative difference between the window's step time and the timed median, the window's
energy is not the timed steps' (another job beside it, a throttled device): flagged."""


@dataclass(frozen=True)
class EnergyReading:
    """Energy of `steps` steps on this process's device(s), in the window."""

    joules: float
    steps: int
    window_s: float
    avg_power_w: float
    idle_power_w: float
    """Power while the device idled just before the window (recorded, not subtracted)."""
    scope: str
    method: str
    timed_step_s: float | None = None
    """The timed rounds' median step, which the window's steps are compared with; None: not given."""

    @property
    def joules_per_step(self) -> float:
        return self.joules / self.steps

    @property
    def window_step_s(self) -> float:
        """The window's mean step."""
        return self.window_s / self.steps

    @property
    def unlike_timed(self) -> str | None:
        """Why the window's steps are unlike the timed ones (their mean more than UNLIKE_TIMED off the
        timed median), or None."""
        t = self.timed_step_s
        if not t or abs(self.window_step_s / t - 1) <= UNLIKE_TIMED:
            return None
        way = "slower" if self.window_step_s > t else "faster"
        return (
            f"the energy window's steps took {self.window_step_s * 1e3:.4g} ms, {abs(self.window_step_s / t - 1):.0%} "
            f"{way} than the timed median {t * 1e3:.4g} ms (another job beside it, a throttled device): its "
            "energy per step is not the timed steps'"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "joules_per_step": self.joules_per_step, "window_step_s": self.window_step_s,
                "unlike_timed": self.unlike_timed}  # fmt: skip


def window_steps(step_s: float, source: Source, lockstep: Lockstep | None = None) -> int:
    """Steps that fill the window (rank 0's count on every rank: collectives inside the step)."""
    n = max(1, math.ceil(min_window_s(source) / max(step_s, 1e-9)))
    return int(lockstep.agree(n)) if lockstep is not None else n


def min_window_s(source: Source) -> float:
    return max(MIN_WINDOW_S, 10 * source.update_period_s)


class ReadFailed(Exception):
    """The counter could not be read; the steps were still all taken (other ranks wait on them)."""


def measure_energy(
    step: Step,
    device: Device,
    source: Source,
    steps: int,
    *,
    extend: bool = True,
    timed_step_s: float | None = None,
) -> EnergyReading:
    """Energy of `steps` steps; with `extend` (one process: no other rank to keep in step), more steps
    until the window is long enough for the counter, when the steps ran faster than the timed median
    (`timed_step_s`, recorded beside the window's own step time). A failed read raises ReadFailed after
    every step was taken."""
    failed: list[str] = []

    def read() -> float:
        try:
            return source.joules()
        except Exception as exc:  # a vendor library's error, a file that went away: no figure
            failed.append(f"{type(exc).__name__}: {exc}")
            return math.nan

    device.synchronize()
    j0, t0 = read(), time.perf_counter()
    time.sleep(IDLE_S)
    idle = (read() - j0) / (time.perf_counter() - t0)
    device.synchronize()
    j0, t0 = read(), time.perf_counter()
    for _ in range(steps):
        step()
    device.synchronize()
    while extend and time.perf_counter() - t0 < min_window_s(source):
        step()
        steps += 1
        if steps % 8 == 0:
            device.synchronize()
    device.synchronize()
    j1, t1 = read(), time.perf_counter()
    if failed:
        raise ReadFailed(failed[0])
    joules, window = j1 - j0, t1 - t0
    return EnergyReading(
        joules, steps, window, joules / window, idle, source.scope, source.method, timed_step_s
    )


def soak(step: Step, device: Device, seconds: float, ident: int | str = 0) -> Info:
    """Run the step for `seconds` (the device reaches its sustained clocks and temperature); what the
    platform reports of clocks, temperature and throttling before and after (`ident`: the device, as
    platform.energy.physical_id names it)."""
    before = telemetry.read(device.kind, ident)
    device.synchronize()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
        if n % 8 == 0:
            device.synchronize()  # keep the queue short, so the loop ends on time
    device.synchronize()
    return {
        "seconds": time.perf_counter() - t0,
        "steps": n,
        "before": before,
        "after": telemetry.read(device.kind),
    }
