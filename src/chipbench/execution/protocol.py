"""What the parent and a benchmark worker send each other over their pipe (or rank 0's socket).

Messages stay plain dicts on the wire (pickled), so `chipbench ab` can drive a worker of another
chipbench version; these TypedDicts say what each one holds. The parent reads a worker's messages with
`loads`, which takes plain data only: a pickle that names a class or a function (how a pickle runs code)
is refused, so a worker of another environment cannot make the parent run anything.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired

from chipbench.core.wire import Environment, Info, Overrides
from chipbench.execution.options import ENERGY_MODES, RunOptions
from chipbench.measure.engine import MeasureOptions


class RunMessage(TypedDict):
    """Parent -> worker: set up and measure one case."""

    type: Literal["run"]
    bench: str
    overrides: Overrides
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
    env: Environment
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
    info: NotRequired[Info]
    version_hash: NotRequired[str]
    config: NotRequired[Overrides]
    # type == "error"
    error_type: NotRequired[str]
    message: NotRequired[str]
    traceback: NotRequired[str | None]
    restart: NotRequired[bool]
    """The worker exits after this reply (an OOM: a fresh process frees the allocator's cache)."""
    ranks_failed: NotRequired[list[int]]


def run_message(bench: str, overrides: Overrides, options: RunOptions) -> RunMessage:
    """The message that asks a worker to run one case: the keys every chipbench version's worker reads,
    an option at its default left out."""
    msg: RunMessage = {
        "type": "run",
        "bench": bench,
        "overrides": overrides,
        "options": {"time_budget_s": options.time_budget_s},
        "seed": options.seed,
    }
    if options.energy != "off":
        msg["energy"] = options.energy
    if options.soak_s > 0:
        msg["soak_s"] = options.soak_s
    if not options.after:
        msg["after"] = False
    return msg


@dataclass(frozen=True)
class CaseRequest:
    """A run message as the worker reads it."""

    bench: str
    overrides: Overrides
    """Config field -> value, as given on the command line or by a suite."""
    options: RunOptions
    measure: MeasureOptions
    """The engine's options: `options`' time budget, and any other field a parent sends."""

    @classmethod
    def read(cls, msg: RunMessage) -> CaseRequest:
        """The message's case and options; a key a parent of another version left out at its default."""
        wire = dict(msg.get("options") or {})
        measure = MeasureOptions(**wire)
        energy = msg.get("energy", "off")
        options = RunOptions(
            time_budget_s=measure.time_budget_s,
            seed=int(msg.get("seed", 0)),
            energy=energy if energy in ENERGY_MODES else "auto",  # type: ignore[arg-type]
            soak_s=float(msg.get("soak_s") or 0.0),
            after=bool(msg.get("after", True)),
        )
        return cls(msg["bench"], dict(msg.get("overrides") or {}), options, measure)


def error(error_type: str, message: str, **extra: Any) -> Reply:
    out: dict[str, Any] = {"type": "error", "error_type": error_type, "message": message, **extra}
    return out  # type: ignore[return-value]


# What older workers put in their messages besides plain data, and what each is read as: torch's version
# string class (read as the string it is, so the parent needs no torch) and numpy's scalars, whose
# reconstructors build a number and name nothing else.
_ALLOWED: dict[tuple[str, str], Any] = {("torch.torch_version", "TorchVersion"): str}
_NUMPY = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype")}


class _PlainData(pickle.Unpickler):
    """A pickle of dicts, lists, tuples, sets, strings, bytes, numbers, bools and None: what chipbench's
    messages hold. Those load without `find_class`; any global but the few in `_ALLOWED` is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) in _NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the message names {module}.{name}; a message holds plain data only")


def loads(data: bytes) -> object:
    """A worker's message from its bytes (`Connection.recv_bytes`), plain data only."""
    return _PlainData(io.BytesIO(data)).load()
