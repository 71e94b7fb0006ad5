"""The host memory allocator of a benchmark process (glibc malloc on Linux).

PyTorch's CPU tensors come from malloc. With glibc's defaults, free memory at the top of the heap is
handed back to the kernel once more than 128 KiB-64 MiB (a moving threshold, twice the next one) is free
there, and blocks above another moving threshold (128 KiB-32 MiB) are mmap'd and unmapped one by one: a training step that frees its
activations and gradients and allocates them again next step then takes each page back with a page fault
and a zeroed page. Measured here (`cpu-intel-r-xeon-r-processor-2c-amx`, the DLRM model1 train step):
about 1,400 page faults and 2-3 ms of kernel time a 45 ms step; a 1024x1024 weight gradient's GEMM runs
in 2.2 ms on fresh pages against 1.6 ms on reused ones. PyTorch's CPU tuning guide answers this with
jemalloc or tcmalloc (LD_PRELOAD); we keep glibc and fix its two thresholds, which ends the faults after
the first steps (`mallopt`, the same as GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:trim_threshold=...).

Set once per process before the first benchmark, recorded in every result's environment
(`host_allocator`); `CHIPBENCH_MALLOC=system` leaves the allocator as it is, to measure without. Between
benchmarks `release` hands what the heap kept back to the kernel, so a case's free memory and peak are its own.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import TypedDict

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
"""Blocks this large or larger stay mmap'd, and go back to the kernel when freed (tables, big buffers).
32 MiB is glibc's own ceiling for the threshold on 64-bit (it moves there by itself, but only after such a
block has been freed once)."""
TRIM_THRESHOLD_BYTES = 256 << 20
"""Free memory the heap's top may keep for the next step before it is handed back to the kernel (64 MiB
already ends the DLRM step's faults; a quarter GiB leaves room for larger steps, and is little to hold)."""
ENV_SWITCH = "CHIPBENCH_MALLOC"
_PRELOADED = ("jemalloc", "tcmalloc", "mimalloc")


class AllocatorState(TypedDict, total=False):
    allocator: str
    """glibc malloc VERSION, or the preloaded allocator's library, or unknown."""
    tuned: bool
    """Whether this process fixed glibc's thresholds (`mmap_threshold_bytes`, `trim_threshold_bytes`)."""
    mmap_threshold_bytes: int
    trim_threshold_bytes: int
    why_not: str
    """Why the thresholds were left as they are (CHIPBENCH_MALLOC=system, another allocator, not glibc)."""


_state: AllocatorState | None = None


def _preloaded() -> str | None:
    """The malloc replacement preloaded into this process (LD_PRELOAD, colon- or space-separated), if any."""
    for path in os.environ.get("LD_PRELOAD", "").replace(":", " ").split():
        name = os.path.basename(path)
        if any(lib in name for lib in _PRELOADED):
            return name
    return None


@functools.cache
def _glibc() -> tuple[ctypes.CDLL, str] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version  # absent from musl and other C libraries
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    return libc, version().decode()


def tune() -> AllocatorState:
    """Fix glibc malloc's trim and mmap thresholds for this process (once; later calls return the
    first call's state). Leaves the allocator alone under CHIPBENCH_MALLOC=system, with a preloaded
    malloc replacement, or without glibc."""
    global _state
    if _state is not None:
        return _state
    glibc = _glibc()
    other = _preloaded()
    if other is not None:
        _state = {"allocator": other, "tuned": False, "why_not": f"{other} is preloaded: it manages the heap"}
    elif glibc is None:
        _state = {"allocator": "unknown", "tuned": False, "why_not": "not glibc: its defaults are kept"}
    elif os.environ.get(ENV_SWITCH, "").strip().lower() == "system":
        _state = {"allocator": f"glibc malloc {glibc[1]}", "tuned": False,
                  "why_not": f"{ENV_SWITCH}=system: glibc's defaults kept"}  # fmt: skip
    else:
        libc, version = glibc
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        ok = ok and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
        _state = {"allocator": f"glibc malloc {version}", "tuned": ok}
        if ok:
            _state |= {
                "mmap_threshold_bytes": MMAP_THRESHOLD_BYTES,
                "trim_threshold_bytes": TRIM_THRESHOLD_BYTES,
            }
        else:
            _state["why_not"] = "mallopt refused the thresholds"
    return _state


def state() -> AllocatorState:
    """What `tune` did in this process (a copy), or that it has not run."""
    if _state is not None:
        return AllocatorState(**_state)
    return {"allocator": "not inspected", "tuned": False, "why_not": "tune() was not called in this process"}


def release() -> None:
    """Hand the free memory the heaps kept (up to the trim threshold each) back to the kernel: between
    cases, so the next one's free-memory check and peak are its own. Only where `tune` fixed the thresholds."""
    glibc = _glibc()
    if _state is not None and _state.get("tuned") and glibc is not None:
        glibc[0].malloc_trim(0)
