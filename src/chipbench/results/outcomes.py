"""What running cases gives back, before it becomes a results document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chipbench.core.cases import Case


@dataclass
class CaseOutcome:
    """What came back for one case: a result or an error."""

    case: Case
    ok: bool
    payload: dict[str, Any]
    """The worker's reply (execution.protocol: a ResultReply or an ErrorReply)."""
    wall_s: float


@dataclass
class RunOutcome:
    env: dict[str, Any]
    kind: str
    free_memory_bytes: int
    outcomes: list[CaseOutcome] = field(default_factory=list)
    interrupted: bool = False
