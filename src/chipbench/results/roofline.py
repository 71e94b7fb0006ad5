"""The roofline breakdown of a whole step: each part against the machine's measured ceilings.

Per part: attained TFLOP/s and GB/s, its floor max(FLOPs / matmul ceiling, bytes / copy ceiling), which
of the two binds it here (compute or memory), and its share of that floor. The step's floor is the sum of
its parts' floors; `share_of_roofline` = floor / the measured (timed-rounds) median step.

A part measured faster than its own floor ran from cache (the copy ceiling is measured out of memory, its
bytes are the unfused traffic): it is marked `faster_than_floor` and its measured time stands as its
floor, so no share passes 100%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chipbench.platform.ceilings import Ceilings
from chipbench.results.wire import Record

COVER_TOLERANCE = 0.15
"""The parts' times (a separate synchronized pass) must add up to the timed median within 15%; outside
it the breakdown says so (a compiled step, parts that overlap on an asynchronous device, a disturbed pass)."""


@dataclass(frozen=True)
class PartRoofline(Record):
    """One part of a whole step against the ceilings."""

    ms: float
    """The part's measured time per step."""
    flops: float
    bytes: float
    tflops: float
    gbps: float
    floor_ms: float
    """max(FLOPs / matmul ceiling, bytes / copy ceiling); its measured time when it ran faster."""
    bound: str
    """Which ceiling gives the part's floor here: compute, memory or neither (no FLOPs, no bytes)."""
    share_of_roofline: float
    faster_than_floor: bool = False
    """It ran faster than its floor (from cache): its time stands as its floor."""

    NUMBERS = ("ms", "flops", "bytes", "tflops", "gbps", "floor_ms", "share_of_roofline")

    def __post_init__(self) -> None:
        for k in self.NUMBERS:
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"roofline part {k} must be a finite number >= 0")


@dataclass(frozen=True)
class Roofline(Record):
    """A whole step's roofline breakdown: each part against the ceilings, and the step's floor."""

    parts: Mapping[str, PartRoofline]
    step_ms: float
    """The timed rounds' median step."""
    parts_sum_ms: float
    parts_cover: float
    """parts_sum_ms / step_ms."""
    covered: bool
    """parts_cover within 1 +- COVER_TOLERANCE."""
    floor_ms: float
    share_of_roofline: float
    ceilings: Mapping[str, float] = field(default_factory=dict)
    """The ceilings used: matmul TFLOP/s at the run's dtype, copy GB/s."""
    holds_back: str | None = None
    """The part with the most time above its floor: where a faster kernel would pay most."""


def roofline(
    parts: Mapping[str, Any], step_s: float, dtype: str | None, ceilings: Ceilings | None
) -> tuple[Roofline | None, str | None]:
    """(breakdown, None), or (None, why not) when a ceiling is missing or the parts are empty. `parts`
    is the worker's `info.parts`: each part's `ms`, `flops` and `bytes`."""
    if not parts:
        return None, "no parts measured"
    if ceilings is None or not ceilings.copy_gbps:
        return None, "no measured ceilings: run `chipbench calibrate`"
    tflops_ceiling = ceilings.matmul_tflops.get(dtype or "fp32")
    if not tflops_ceiling:
        return None, f"no measured {dtype} matmul ceiling: run `chipbench calibrate`"
    bw = ceilings.copy_gbps
    out = {name: _part(p, tflops_ceiling, bw) for name, p in parts.items()}
    step_ms = step_s * 1e3
    total = sum(p.ms for p in out.values())
    floor_ms = sum(p.floor_ms for p in out.values())
    cover = total / step_ms if step_ms > 0 else 0.0
    holds = max(out, key=lambda n: out[n].ms - out[n].floor_ms)
    return Roofline(
        parts=out,
        step_ms=step_ms,
        parts_sum_ms=total,
        parts_cover=cover,
        covered=abs(cover - 1.0) <= COVER_TOLERANCE,
        floor_ms=floor_ms,
        # floor / the measured step; where the parts' pass ran slower than the step (cover > 1), over the
        # parts' sum instead: the floor is made of their times, and a share stays a share.
        share_of_roofline=min(1.0, floor_ms / max(step_ms, total)) if step_ms > 0 else 0.0,
        ceilings={"matmul_tflops": tflops_ceiling, "copy_gbps": bw},
        holds_back=holds,
    ), None


def _part(p: Mapping[str, Any], tflops_ceiling: float, bw: float) -> PartRoofline:
    ms, flops, nbytes = float(p["ms"]), float(p["flops"]), float(p["bytes"])
    compute_ms = flops / (tflops_ceiling * 1e12) * 1e3
    memory_ms = nbytes / (bw * 1e9) * 1e3
    floor = max(compute_ms, memory_ms)
    fast = floor > ms
    return PartRoofline(
        ms=ms,
        flops=flops,
        bytes=nbytes,
        tflops=flops / (ms * 1e-3) / 1e12 if ms > 0 else 0.0,
        gbps=nbytes / (ms * 1e-3) / 1e9 if ms > 0 else 0.0,
        floor_ms=ms if fast else floor,
        bound="neither" if floor == 0 else ("compute" if compute_ms >= memory_ms else "memory"),
        share_of_roofline=1.0 if fast else (floor / ms if ms > 0 else 0.0),
        faster_than_floor=fast,
    )
