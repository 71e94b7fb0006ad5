"""Whether a Llama step runs under torch.compile: `compile=true|false` as asked, `auto` by the step's size.

Compiling fuses the elementwise passes (norms, RoPE, SwiGLU, the loss) around the matrix products; what
it saves grows with the step, what it costs (about 20-40 s of compile on the 2-core CPU, reported apart
as `compile_first_step_s`) does not. `auto` compiles where the configured step (the global batch under
strong scaling, so every process count of a sweep decides alike) has at least AUTO_MIN_FLOPS model
FLOPs and a compiler is present, and runs eager below: the smoke suite's shapes and most of the default
suite's, whose compile would cost more wall time than their whole measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipbench.core.errors import UsageError
from chipbench.platform.capabilities import compile_backend
from chipbench.workloads.common import check_compiler

AUTO_MIN_FLOPS = 1e11
"""Model FLOPs per step from which `compile=auto` compiles (the ~58M model at 1,024 tokens has 2.7e11;
torchtitan's debug model at 2,048 tokens, 7e10)."""


@dataclass(frozen=True)
class CompileChoice:
    on: bool
    """Whether the step runs compiled."""
    why: str
    """What decided it, for the results file."""


def choose_compile(requested: bool | str, step_flops: float, dev_type: str) -> CompileChoice:
    """The compile setting of a step of `step_flops` model FLOPs on device type `dev_type`. compile=true
    without a compiler raises (one line, before the case); auto without one, or on a device inductor
    generates no code for, runs eager and says so."""
    if requested is True:
        check_compiler()
        return CompileChoice(True, "requested with compile=true")
    if requested is False:
        return CompileChoice(False, "requested with compile=false")
    if step_flops < AUTO_MIN_FLOPS:
        return CompileChoice(
            False, f"auto: eager, the step's {step_flops:.2g} model FLOPs are under {AUTO_MIN_FLOPS:.0e}"
        )
    backend = compile_backend(dev_type)
    if not backend.ok:
        return CompileChoice(False, f"auto: eager, {backend.detail}")
    try:
        check_compiler()
    except UsageError as exc:
        return CompileChoice(False, f"auto: eager, no compiler here ({exc})")
    return CompileChoice(
        True, f"auto: compiled, the step's {step_flops:.2g} model FLOPs reach {AUTO_MIN_FLOPS:.0e}"
    )
