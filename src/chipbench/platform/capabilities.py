"""What the device can do, probed once per process at start-up, each with its source: `generic` (PyTorch's
device-generic API), `vendor` (a per-vendor path where torch has none) or `fallback` (with the reason).

The record goes into the results' environment (`capabilities`) and `chipbench env`; a missing capability
falls back visibly: timer `sync+perf_counter`, peak memory `unavailable: <reason>`, free memory from the
host's RAM, AdamW `foreach`, process groups on gloo, compile=auto eager.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Literal, NotRequired, TypedDict

from chipbench.platform import device as devices
from chipbench.platform.device import Probe, device_type, one_line

INDUCTOR_IN_TREE = ("cpu", "cuda", "xpu", "mps")
"""Device types inductor generates code for itself (probed by name: importing inductor takes seconds)."""


Source = Literal["generic", "vendor", "fallback"]


class Capability(TypedDict):
    """One capability as the results' environment records it (a JSON object)."""

    value: str
    """What the device does: `fused`, `bf16,fp16`, a timer's name, `unavailable: <reason>`."""
    source: Source
    """`generic` (torch's device-generic API), `vendor` (a per-vendor path) or `fallback`."""
    detail: str
    """The API it came from, or why it fell back."""
    free_bytes: NotRequired[int]
    """memory_info only: free device memory."""
    total_bytes: NotRequired[int | None]
    """memory_info only: total device memory, None where unknown."""


def _cap(value: str, source: Source, detail: str) -> Capability:
    return {"value": value, "source": source, "detail": detail}


def _memory(value: str, source: Source, detail: str, free: int, total: int | None) -> Capability:
    return {"value": value, "source": source, "detail": detail, "free_bytes": free, "total_bytes": total}


def timer(kind: str) -> Capability:
    dev = devices.Device(kind)
    if kind == "cpu":
        return _cap(dev.timer_name, "generic", "time.perf_counter: the CPU's work is synchronous")
    probe = devices.probe_events(kind)
    return _cap(dev.timer_name, "generic" if probe.ok else "fallback", probe.detail)


def peak_memory(kind: str) -> Capability:
    if kind == "cpu":
        return _cap("process RSS high-water mark", "fallback", devices.probe_peak_memory(kind).detail)
    probe = devices.probe_peak_memory(kind)
    if probe.ok:
        return _cap(probe.detail, "generic", "torch.accelerator.reset_peak_memory_stats and read")
    return _cap(f"unavailable: {probe.detail}", "fallback", probe.detail)


def memory_info(kind: str) -> Capability:
    """Free and total device memory (what cases are fitted to)."""
    import psutil

    host = psutil.virtual_memory()
    if kind in devices.HOST_MEMORY:
        return _memory("host memory", "generic", "psutil: the device shares the host's memory",
                       int(host.available), int(host.total))  # fmt: skip
    try:
        import torch

        free, total = torch.accelerator.get_memory_info()
    except Exception as exc:
        return _memory(f"unavailable: {one_line(exc)}", "fallback", "the host's available RAM stands in",
                       int(host.available), None)  # fmt: skip
    return _memory("torch.accelerator.get_memory_info", "generic", "free and total device memory",
                   int(free), int(total))  # fmt: skip


def autocast(kind: str) -> Capability:
    """The low-precision dtypes whose autocast runs a matmul in that dtype on the device."""
    import torch

    dev = device_type(kind)
    try:
        if not torch.amp.is_autocast_available(dev):
            return _cap("none", "fallback", f"torch.amp.is_autocast_available({dev!r}) is False")
        a = torch.ones(4, 4, device=dev)
    except Exception as exc:
        return _cap("none", "fallback", one_line(exc))
    ok: list[str] = []
    why: list[str] = []
    for name, dt in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        try:
            with torch.autocast(dev, dtype=dt):
                got = (a @ a).dtype
            (ok if got == dt else why).append(name if got == dt else f"{name}: matmul ran in {got}")
        except Exception as exc:
            why.append(f"{name}: {one_line(exc)}")
    detail = "torch.autocast" + (f" ({'; '.join(why)})" if why else "")
    return _cap(",".join(ok) or "none", "generic" if ok else "fallback", detail)


@functools.cache
def fused_adamw(dev: str) -> Probe:
    """Whether torch's fused AdamW kernel takes a step on device type `dev` (once per process). The kernel
    is called directly, as torch.optim.AdamW(fused=True) calls it: building an optimizer imports
    torch._dynamo (seconds) in every worker."""
    try:
        import torch

        def t(x: float, shape: tuple[int, ...] = (8,)) -> list[Any]:
            return [torch.full(shape, x, device=dev)]

        p = t(1.0)
        torch._fused_adamw_(p, t(1.0), t(0.0), t(0.0), [], t(1.0, ()), lr=1e-3, beta1=0.9, beta2=0.999,
                            weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)  # fmt: skip
        moved = float(p[0].sum().item())
    except Exception as exc:
        return Probe(False, f"fused AdamW: {one_line(exc)}")
    if not 0.0 < moved < 8.0:
        return Probe(False, f"fused AdamW: a step of ones moved them to a sum of {moved}")
    return Probe(True, "torch._fused_adamw_ (torch.optim.AdamW(fused=True))")


def adamw(kind: str) -> Capability:
    probe = fused_adamw(device_type(kind))
    return _cap("fused" if probe.ok else "foreach", "generic" if probe.ok else "fallback", probe.detail)


def dist_backend(kind: str) -> Capability:
    backend, where = backend_choice(kind)
    return _cap(backend, "fallback" if where.startswith("fallback") else "generic", where)


def backend_choice(kind: str) -> tuple[str, str]:
    """(c10d backend, where it came from): torch's default for the device (nccl, xccl, a plugin's own),
    else gloo with the reason."""
    import torch.distributed as dist

    if not dist.is_available():
        return "gloo", "fallback: this torch build has no torch.distributed"
    try:
        got = dist.get_default_backend_for_device(device_type(kind))
    except Exception as exc:
        return "gloo", f"fallback: {one_line(exc)}"
    return str(got), "torch.distributed.get_default_backend_for_device"


@functools.cache
def compile_backend(dev: str) -> Probe:
    """Whether torch.compile's inductor generates code for device type `dev`: its in-tree backends by
    name, a plugin's where it registered one with inductor (no import of inductor here: seconds)."""
    if dev in INDUCTOR_IN_TREE:
        return Probe(True, f"inductor (in-tree {dev} backend)")
    common = sys.modules.get("torch._inductor.codegen.common")
    if common is not None and getattr(common, "device_codegens", {}).get(dev) is not None:
        return Probe(True, "inductor (registered by the backend's plugin)")
    return Probe(False, f"inductor has no code generator registered for {dev!r}: compile=auto runs eager")


def compile_cap(kind: str) -> Capability:
    probe = compile_backend(device_type(kind))
    if not probe.ok:
        return _cap("off", "fallback", probe.detail)
    return _cap("inductor", "vendor" if "in-tree" in probe.detail else "generic", probe.detail)


PROBES = {
    "timer": timer, "peak_memory": peak_memory, "memory_info": memory_info, "autocast": autocast,
    "adamw": adamw, "dist_backend": dist_backend, "compile": compile_cap,
}  # fmt: skip


def probe(kind: str) -> dict[str, Capability]:
    """Every capability of device `kind`: {name: {value, source, detail, ...}}. A probe that raises is
    recorded as a fallback with its reason, never a traceback."""
    out: dict[str, Capability] = {}
    for name, fn in PROBES.items():
        try:
            out[name] = fn(kind)
        except Exception as exc:
            out[name] = _cap("unavailable", "fallback", f"probe failed: {one_line(exc)}")
    return out


def check_runs(kind: str) -> None:
    """Refuse, in one line, a device that cannot run one tensor operation (a backend with no kernels)."""
    if kind == "cpu":
        return
    try:
        import torch

        torch.ones(2, device=device_type(kind)).add_(1).cpu()
    except Exception as exc:
        from chipbench.core.errors import UsageError

        raise UsageError(
            f"device {kind!r} cannot run a tensor operation ({one_line(exc)}): its backend has no "
            "kernels for it; check the plugin (--device-plugin)"
        ) from None
