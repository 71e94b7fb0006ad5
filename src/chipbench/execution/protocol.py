"""What the parent and a benchmark worker send each other over their pipe (or rank 0's socket).

Messages stay plain dicts on the wire (pickled), so `chipbench ab` can drive a worker of another
chipbench version; these TypedDicts say what each one holds.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired


class RunMessage(TypedDict):
    """Parent -> worker: set up and measure one case."""

    type: Literal["run"]
    bench: str
    overrides: dict[str, Any]
    options: dict[str, Any]
    """MeasureOptions fields (time_budget_s, ...)."""
    seed: int
    energy: NotRequired[str]
    """auto or on: an energy phase after the timed rounds (where a source exists); off (or absent): none."""
    soak_s: NotRequired[float]
    """Run the step this long before timing (sustained clocks), telemetry before and after."""
    after: NotRequired[bool]
    """False: skip the case's after-rounds measurements (a whole step's roofline parts); absent: take them."""


class StopMessage(TypedDict):
    type: Literal["stop"]


Message = RunMessage | StopMessage


class Hello(TypedDict):
    """Worker -> parent, once: what it runs on (or `fatal`, with `message` and `error_type`)."""

    type: Literal["hello", "fatal"]
    env: dict[str, Any]
    """platform.hardware.environment(): device, CPU, stack, commit (+ `distributed` for a job)."""
    kind: str
    free_memory_bytes: int
    energy: NotRequired[dict[str, Any]]
    """The device's energy source ({scope, method}) or why there is none ({unavailable})."""
    message: NotRequired[str]
    error_type: NotRequired[str]


class Reply(TypedDict):
    """Worker -> parent, one per case: a result, or an error entry (a crash or time-out seen by the
    parent becomes one too)."""

    type: Literal["result", "error"]
    # type == "result"
    measurement: NotRequired[dict[str, Any]]
    """measure.engine.Measurement as a dict, raw samples included."""
    work: NotRequired[dict[str, Any]]
    """core.contract.Work as a dict."""
    info: NotRequired[dict[str, Any]]
    version_hash: NotRequired[str]
    config: NotRequired[dict[str, Any]]
    # type == "error"
    error_type: NotRequired[str]
    message: NotRequired[str]
    traceback: NotRequired[str | None]
    restart: NotRequired[bool]
    """The worker exits after this reply (an OOM: a fresh process frees the allocator's cache)."""
    ranks_failed: NotRequired[list[int]]


def run_message(
    bench: str,
    overrides: dict[str, Any],
    time_budget_s: float,
    seed: int = 0,
    *,
    energy: str = "off",
    soak_s: float = 0.0,
    after: bool = True,
) -> RunMessage:
    msg: RunMessage = {
        "type": "run",
        "bench": bench,
        "overrides": overrides,
        "options": {"time_budget_s": time_budget_s},
        "seed": seed,
    }
    if energy != "off":
        msg["energy"] = energy
    if soak_s > 0:
        msg["soak_s"] = soak_s
    if not after:
        msg["after"] = False
    return msg


def error(error_type: str, message: str, **extra: Any) -> Reply:
    out: dict[str, Any] = {"type": "error", "error_type": error_type, "message": message, **extra}
    return out  # type: ignore[return-value]
