"""How a session runs its cases: the options chosen on the command line, carried whole to the worker.

`RunOptions` is what `run`, `calibrate` and `ab` hand a session; the session turns it into a run message's
plain keys (execution.protocol) at the pipe, and the worker reads it back from them with defaults, so a
worker of another chipbench version (`chipbench ab`) still understands the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from chipbench.core.cases import Case
from chipbench.core.config import check
from chipbench.results.outcomes import CaseOutcome

EnergyMode = Literal["auto", "on", "off"]
ENERGY_MODES: tuple[str, ...] = get_args(EnergyMode)


@dataclass(frozen=True)
class RunOptions:
    """How each case of a session is run and measured."""

    time_budget_s: float = 3.0
    """Wall time of each case's timed rounds (warm-up and the first step not included)."""
    timeout_s: float | None = None
    """The parent kills a case's worker after this long; None: 20x the time budget, at least 120 s,
    stretched on a busy machine (`session.case_limit_s`). Never sent to the worker."""
    seed: int = 0
    """Seeds the case's weights and data."""
    energy: EnergyMode = "off"
    """An energy phase after each case's timed rounds: where a source exists (auto), required (on),
    never (off)."""
    soak_s: float = 0.0
    """Run the step this long before timing (sustained clocks), telemetry before and after; 0: no soak."""
    after: bool = True
    """False: no after-rounds measurements (a whole step's roofline parts): `ab` needs only the timed
    rounds."""

    probe_s: float = 0.0
    """Each host-probe measurement's budget (execution.probe: a matmul and a copy at the session's
    start and end, recorded in the header); 0: no probe. `chipbench run` sets it (0.1 s)."""

    def __post_init__(self) -> None:
        check(self.probe_s >= 0, f"probe_s must be >= 0, got {self.probe_s}")
        check(self.time_budget_s > 0, f"time_budget_s must be > 0, got {self.time_budget_s}")
        check(self.timeout_s is None or self.timeout_s > 0, f"timeout_s must be > 0, got {self.timeout_s}")
        check(
            self.energy in ENERGY_MODES,
            f"energy must be one of {', '.join(ENERGY_MODES)}, got {self.energy!r}",
        )
        check(self.soak_s >= 0, f"soak_s must be >= 0, got {self.soak_s}")

    @property
    def limit_s(self) -> float:
        """The seconds a case may take before its worker is killed."""
        return self.timeout_s if self.timeout_s is not None else max(120.0, 20 * self.time_budget_s)


@dataclass(frozen=True)
class Destination:
    """Where a session's results go and what the file records of how it was asked for."""

    suite: str | None
    """The suite run, or None (benchmarks named one by one)."""
    argv: list[str]
    """The command line, recorded in the results file."""
    output: Path | None = None
    """The results file; None: results/local/<machine-id>/<time>_<commit>.json."""
    markdown: Path | None = None
    """Also write the summary table as Markdown here."""
    write: bool = True
    """False: build the document but write nothing (a sweep merges its runs' documents first)."""


@dataclass(frozen=True)
class Listener:
    """What a caller hears while a session runs (the terminal's progress and warnings)."""

    on_start: Callable[[Case], None] | None = None
    on_done: Callable[[CaseOutcome], None] | None = None
    on_warning: Callable[[str], None] | None = None
