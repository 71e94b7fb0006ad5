"""The one device helper: torch dtype and device names, synchronization, timing and peak memory per
device kind. Every benchmark is timed through `Device.time_samples` (the engine calls it)."""

from __future__ import annotations

import contextlib
import gc
import re
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEVICE_CHOICES = ("auto", "cpu", "cuda", "rocm", "mps", "xpu")
EVENT_TIMED = ("cuda", "rocm")
"""Kinds timed with device events (ROCm builds of torch expose AMD GPUs through the cuda API)."""
ACCELERATORS = ("cuda", "rocm", "xpu")
"""Kinds with a device per process (cuda:<local_rank>); the others share the host's memory."""


def torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def device_type(kind: str) -> str:
    """torch's device type for a device kind: ROCm uses torch's cuda API (autocast, meshes, tensors)."""
    return "cuda" if kind == "rocm" else kind


def torch_device(kind: str, local_rank: int | None = None) -> str:
    """The torch device string of a kind, on this process's accelerator when `local_rank` is given."""
    dev = device_type(kind)
    return f"{dev}:{local_rank}" if local_rank is not None and kind in ACCELERATORS else dev


def _module(kind: str) -> Any:
    import torch

    if kind in EVENT_TIMED:
        return torch.cuda
    return getattr(torch, kind, None)


def synchronize(kind: str) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if kind != "cpu":
        _module(kind).synchronize()


def release_cached(kind: str) -> None:
    """Free what earlier cases left: objects in reference cycles (FSDP2/DDP models hold some), then the
    caching allocator's unused blocks, so free memory and the next peak are this case's alone."""
    gc.collect()
    if kind == "cpu":
        return
    mod = _module(kind)
    empty = getattr(mod, "empty_cache", None) if mod is not None else None
    if empty is not None:
        empty()


FATAL_DEVICE_ERRORS = (
    "cuda error", "illegal memory access", "device-side assert", "cublas_status", "cudnn_status",
    "nccl error", "ncclunhandledcudaerror", "hip error", "hipErrorIllegalAddress".lower(),
    "misaligned address", "unspecified launch failure", "ur_result_error", "level_zero",
)  # fmt: skip
"""Errors after which a device context is poisoned: every later case in the same process would fail."""


def is_fatal_device_error(message: str) -> bool:
    low = message.lower()
    return any(p in low for p in FATAL_DEVICE_ERRORS)


Step = Callable[[], Any]


class Device:
    """Synchronization, timing and memory statistics for one device kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.timer_name = {"cuda": "cuda-events", "rocm": "hip-events"}.get(
            kind, "sync+perf_counter" if kind in ("mps", "xpu") else "perf_counter"
        )

    def synchronize(self) -> None:
        synchronize(self.kind)

    def time_samples(self, step: Step, samples: int, iterations: int) -> list[float]:
        """Seconds per step for `samples` consecutive samples of `iterations` steps each."""
        if self.kind in EVENT_TIMED:
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

        starts = [torch.cuda.Event(enable_timing=True) for _ in range(samples)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(samples)]
        for s, e in zip(starts, ends, strict=True):
            s.record()
            for _ in range(iterations):
                step()
            e.record()
        torch.cuda.synchronize()  # one synchronize per round
        return [s.elapsed_time(e) / 1e3 / iterations for s, e in zip(starts, ends, strict=True)]

    def reset_peak_memory(self) -> None:
        if self.kind in EVENT_TIMED:
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif self.kind == "xpu":
            import torch

            torch.xpu.reset_peak_memory_stats()
        else:
            _reset_rss_peak()

    def peak_memory(self) -> tuple[int | None, str]:
        """(bytes, source) of peak memory since the last reset."""
        import torch

        if self.kind in EVENT_TIMED:
            return int(torch.cuda.max_memory_allocated()), "torch.cuda.max_memory_allocated"
        if self.kind == "xpu":
            return int(torch.xpu.max_memory_allocated()), "torch.xpu.max_memory_allocated"
        if self.kind == "mps":
            return int(torch.mps.driver_allocated_memory()), "torch.mps.driver_allocated_memory (current)"
        return _rss_peak()


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
