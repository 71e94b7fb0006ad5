"""The roofline breakdown of a whole step: each part against the machine's measured ceilings.

Per part: attained TFLOP/s and GB/s, its floor max(FLOPs / matmul ceiling, bytes / copy ceiling), which
of the two binds it here (compute or memory), and its share of that floor. The step's floor is the sum of
its parts' floors; `share_of_roofline` = floor / the measured (timed-rounds) median step.

A part measured faster than its own floor ran from cache (the copy ceiling is measured out of memory, its
bytes are the unfused traffic): it is marked `faster_than_floor` and its measured time stands as its
floor, so no share passes 100%.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from chipbench.platform.ceilings import Ceilings

COVER_TOLERANCE = 0.15
"""The parts' times (a separate synchronized pass) must add up to the timed median within 15%; outside
it the breakdown says so (a compiled step, parts that overlap on an asynchronous device, a disturbed pass)."""


class PartRoofline(TypedDict):
    ms: float
    flops: float
    bytes: float
    tflops: float
    gbps: float
    floor_ms: float
    bound: Literal["compute", "memory", "neither"]
    """Which ceiling gives the part's floor here ("neither": no FLOPs and no bytes counted)."""
    share_of_roofline: float
    faster_than_floor: bool


class Roofline(TypedDict):
    parts: dict[str, PartRoofline]
    step_ms: float
    """The timed rounds' median step."""
    parts_sum_ms: float
    parts_cover: float
    """parts_sum_ms / step_ms."""
    covered: bool
    """parts_cover within 1 +- COVER_TOLERANCE."""
    floor_ms: float
    share_of_roofline: float
    ceilings: dict[str, float]
    """The ceilings used: matmul TFLOP/s at the run's dtype, copy GB/s."""
    holds_back: str
    """The part with the most time above its floor: where a faster kernel would pay most."""


def roofline(
    parts: dict[str, Any], step_s: float, dtype: str | None, ceilings: Ceilings | None
) -> tuple[Roofline | None, str | None]:
    """(breakdown, None), or (None, why not) when a ceiling is missing or the parts are empty."""
    if not parts:
        return None, "no parts measured"
    if ceilings is None or not ceilings.copy_gbps:
        return None, "no measured ceilings: run `chipbench calibrate`"
    tflops_ceiling = ceilings.matmul_tflops.get(dtype or "fp32")
    if not tflops_ceiling:
        return None, f"no measured {dtype} matmul ceiling: run `chipbench calibrate`"
    bw = ceilings.copy_gbps
    out: dict[str, PartRoofline] = {}
    for name, p in parts.items():
        ms, flops, nbytes = float(p["ms"]), float(p["flops"]), float(p["bytes"])
        compute_ms = flops / (tflops_ceiling * 1e12) * 1e3
        memory_ms = nbytes / (bw * 1e9) * 1e3
        floor = max(compute_ms, memory_ms)
        fast = floor > ms
        out[name] = {
            "ms": ms,
            "flops": flops,
            "bytes": nbytes,
            "tflops": flops / (ms * 1e-3) / 1e12 if ms > 0 else 0.0,
            "gbps": nbytes / (ms * 1e-3) / 1e9 if ms > 0 else 0.0,
            "floor_ms": ms if fast else floor,
            "bound": "neither" if floor == 0 else ("compute" if compute_ms >= memory_ms else "memory"),
            "share_of_roofline": 1.0 if fast else (floor / ms if ms > 0 else 0.0),
            "faster_than_floor": fast,
        }
    step_ms = step_s * 1e3
    total = sum(p["ms"] for p in out.values())
    floor_ms = sum(p["floor_ms"] for p in out.values())
    cover = total / step_ms if step_ms > 0 else 0.0
    holds = max(out, key=lambda n: out[n]["ms"] - out[n]["floor_ms"])
    return {
        "parts": out,
        "step_ms": step_ms,
        "parts_sum_ms": total,
        "parts_cover": cover,
        "covered": abs(cover - 1.0) <= COVER_TOLERANCE,
        "floor_ms": floor_ms,
        # floor / the measured step; where the parts' pass ran slower than the step (cover > 1), over the
        # parts' sum instead: the floor is made of their times, and a share stays a share.
        "share_of_roofline": min(1.0, floor_ms / max(step_ms, total)) if step_ms > 0 else 0.0,
        "ceilings": {"matmul_tflops": tflops_ceiling, "copy_gbps": bw},
        "holds_back": holds,
    }, None
