"""The one device layer: torch dtype and device names, synchronization, timing and peak memory for any
device torch knows, through PyTorch's device-generic API (torch.accelerator, torch.Event). Every
benchmark is timed through `Device.time_samples` (the engine calls it).

A device kind is torch's device type (cpu, cuda, xpu, mps, or an out-of-tree backend's name such as npu
or hpu, registered through PrivateUse1 by its plugin), except `rocm` (below). What a device lacks is
probed once per process and falls back by name: event timing (`probe_events`; else the timer is
`sync+perf_counter`), peak-memory statistics (`probe_peak_memory`; else `unavailable: <reason>`).

Still per vendor, because torch has no API for it:
- `rocm`: ROCm builds of torch expose AMD GPUs as `cuda`; only torch.version.hip tells them apart, and
  chipbench names them apart (machine ids, the `hip-events` timer).
- HOST_MEMORY: the kinds whose memory is the host's (no device per process, ranks share it); torch does
  not say whether a device's memory is unified.
- The CPU's peak memory: it has no device allocator; the process's RSS high-water mark stands in.
- FATAL_DEVICE_ERRORS: each runtime words a poisoned context its own way.
Elsewhere: device name and properties, native bf16, TF32 (platform.hardware); energy (platform.energy);
published peaks (platform.peaks); the FBGEMM/TorchRec paths (workloads.dlrm).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import re
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError

PLUGINS_ENV = "CHIPBENCH_DEVICE_PLUGINS"
"""Comma-separated Python modules imported before a device is resolved (`--device-plugin` adds to it):
an out-of-tree backend registers its device with torch when imported."""
HOST_MEMORY = ("cpu", "mps")
"""Kinds that share the host's memory: no device per process (cuda:<local_rank> elsewhere)."""
LAZY_BACKENDS = {
    "xla": "XLA", "tpu": "TPU (through XLA)", "neuron": "AWS Neuron (through XLA)", "lazy": "lazy tensors",
}  # fmt: skip
"""Lazily evaluated backends: no torch.accelerator support, no step to time as it runs."""


def torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def device_type(kind: str) -> str:
    """torch's device type for a device kind: ROCm uses torch's cuda API (autocast, meshes, tensors)."""
    return "cuda" if kind == "rocm" else kind


def torch_device(kind: str, local_rank: int | None = None) -> str:
    """The torch device string of a kind, on this process's accelerator when `local_rank` is given."""
    dev = device_type(kind)
    return f"{dev}:{local_rank}" if local_rank is not None and kind not in HOST_MEMORY else dev


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def plugin_modules(extra: list[str] | None = None) -> list[str]:
    """The device plugins asked for: $CHIPBENCH_DEVICE_PLUGINS, then `extra`, each once."""
    names = [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",")] + list(extra or [])
    return list(dict.fromkeys(m for m in names if m))


def load_plugins(extra: list[str] | None = None) -> list[str]:
    """Import every device plugin (a backend's Python module registers its device with torch); a plugin
    that fails to import is a one-line UsageError."""
    loaded = plugin_modules(extra)
    for name in loaded:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise UsageError(
                f"device plugin {name!r} failed to import ({one_line(exc)}); install it or drop it from "
                f"--device-plugin / ${PLUGINS_ENV}"
            ) from None
    return loaded


def accelerator() -> str | None:
    """The kind of the accelerator torch reports available in this process (`rocm` for a ROCm build's
    GPUs), or None."""
    import torch

    try:
        dev = torch.accelerator.current_accelerator(check_available=True)
    except Exception:  # a backend's is_available that raises: not available
        return None
    if dev is None:
        return None
    return "rocm" if dev.type == "cuda" and torch.version.hip else dev.type


def synchronize(kind: str) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if kind != "cpu":
        import torch

        torch.accelerator.synchronize()


def release_cached(kind: str) -> None:
    """Free what earlier cases left: objects in reference cycles (FSDP2/DDP models hold some), then the
    caching allocator's unused blocks, so free memory and the next peak are this case's alone."""
    gc.collect()
    if kind != "cpu" and probe_peak_memory(kind).ok:  # a device allocator torch can reach
        import torch

        torch.accelerator.empty_cache()


FATAL_DEVICE_ERRORS = (
    "cuda error", "illegal memory access", "device-side assert", "cublas_status", "cudnn_status",
    "nccl error", "ncclunhandledcudaerror", "hip error", "hipErrorIllegalAddress".lower(),
    "misaligned address", "unspecified launch failure", "ur_result_error", "level_zero",
)  # fmt: skip
"""Errors after which a device context is poisoned: every later case in the same process would fail."""


def is_fatal_device_error(message: str) -> bool:
    low = message.lower()
    return any(p in low for p in FATAL_DEVICE_ERRORS)


@dataclass(frozen=True)
class Probe:
    """Whether a device capability works here, and through what (or why not)."""

    ok: bool
    detail: str
    """The API that worked, or why it did not (one line)."""


@functools.cache
def probe_events(kind: str) -> Probe:
    """Whether torch.Event(enable_timing=True) times work on this device (once per process)."""
    if kind == "cpu":
        return Probe(False, "the CPU's work is synchronous: the host clock times it")
    try:
        import torch

        dev = device_type(kind)
        start, end = torch.Event(device=dev, enable_timing=True), torch.Event(device=dev, enable_timing=True)
        start.record()
        torch.ones(16, device=dev).add_(1)
        end.record()
        torch.accelerator.synchronize()
        ms = float(start.elapsed_time(end))
    except Exception as exc:
        return Probe(False, f"torch.Event: {one_line(exc)}")
    if not ms >= 0.0:
        return Probe(False, f"torch.Event: elapsed_time returned {ms}")
    return Probe(True, "torch.Event(enable_timing=True)")


@functools.cache
def probe_peak_memory(kind: str) -> Probe:
    """Whether torch.accelerator's peak-memory statistics reset and read on this device (once per process)."""
    if kind == "cpu":
        return Probe(False, "no device allocator: the process's RSS high-water mark")
    try:
        import torch

        torch.accelerator.reset_peak_memory_stats()
        block = torch.empty(2**20, dtype=torch.uint8, device=device_type(kind))
        peak = int(torch.accelerator.max_memory_allocated())
        del block
        torch.accelerator.reset_peak_memory_stats()
    except Exception as exc:
        return Probe(False, f"torch.accelerator memory stats: {one_line(exc)}")
    if peak < 2**20:
        return Probe(False, f"torch.accelerator.max_memory_allocated read {peak} B after a 1 MiB allocation")
    return Probe(True, "torch.accelerator.max_memory_allocated")


Step = Callable[[], Any]


class Device:
    """Synchronization, timing and memory statistics for one device kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.events = probe_events(kind).ok if kind != "cpu" else False
        """Whether steps are timed by device events (several samples per synchronize)."""
        label = "hip" if kind == "rocm" else device_type(kind)
        self.timer_name = (
            f"{label}-events" if self.events else ("perf_counter" if kind == "cpu" else "sync+perf_counter")
        )

    def synchronize(self) -> None:
        synchronize(self.kind)

    def time_samples(self, step: Step, samples: int, iterations: int) -> list[float]:
        """Seconds per step for `samples` consecutive samples of `iterations` steps each."""
        if self.events:
            return self._time_events(step, samples, iterations)
        sync = self.synchronize if self.kind != "cpu" else None
        out = []
        clock = time.perf_counter
        if sync:
            sync()
        for _ in range(samples):
            t0 = clock()
            for _ in range(iterations):
                step()
            if sync:
                sync()
            out.append((clock() - t0) / iterations)
        return out

    def _time_events(self, step: Step, samples: int, iterations: int) -> list[float]:
        import torch

        dev = device_type(self.kind)
        starts = [torch.Event(device=dev, enable_timing=True) for _ in range(samples)]
        ends = [torch.Event(device=dev, enable_timing=True) for _ in range(samples)]
        for s, e in zip(starts, ends, strict=True):
            s.record()
            for _ in range(iterations):
                step()
            e.record()
        torch.accelerator.synchronize()  # one synchronize per round
        return [s.elapsed_time(e) / 1e3 / iterations for s, e in zip(starts, ends, strict=True)]

    def reset_peak_memory(self) -> None:
        if self.kind == "cpu":
            _reset_rss_peak()
        elif probe_peak_memory(self.kind).ok:
            import torch

            torch.accelerator.reset_peak_memory_stats()

    def peak_memory(self) -> tuple[int | None, str]:
        """(bytes, source) of peak memory since the last reset; (None, "unavailable: <reason>") where
        the device's allocator keeps no statistics torch can read."""
        if self.kind == "cpu":
            return _rss_peak()
        probe = probe_peak_memory(self.kind)
        if not probe.ok:
            return None, f"unavailable: {probe.detail}"
        import torch

        return int(torch.accelerator.max_memory_allocated()), probe.detail


def _reset_rss_peak() -> None:
    # Writing 5 to clear_refs resets the kernel's RSS high-water mark (VmHWM) for this process, so a
    # worker that serves several benchmarks reports each one's own peak.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _rss_peak() -> tuple[int | None, str]:
    try:
        m = re.search(r"^VmHWM:\s*(\d+)\s*kB", Path("/proc/self/status").read_text(), re.M)
        if m:
            return int(m.group(1)) * 1024, "VmHWM (process RSS high-water mark)"
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux and bytes on macOS, and is never reset.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "ru_maxrss (process lifetime)"
