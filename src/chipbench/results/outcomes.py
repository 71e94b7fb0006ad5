"""What running cases gives back, before it becomes a results document."""

from __future__ import annotations

from dataclasses import dataclass, field

from chipbench.core.cases import Case
from chipbench.results.wire import JSONObject


@dataclass
class CaseOutcome:
    """What came back for one case: a result or an error."""

    case: Case
    ok: bool
    payload: JSONObject
    """The worker's reply (execution.protocol: a ResultReply or an ErrorReply)."""
    wall_s: float


@dataclass
class RunOutcome:
    env: JSONObject
    """The machine as platform.hardware.environment describes it (the worker's hello)."""
    kind: str
    free_memory_bytes: int
    outcomes: list[CaseOutcome] = field(default_factory=list)
    interrupted: bool = False
