"""The host allocator's thresholds (platform.allocator): what they change, measured in page faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chipbench.platform import allocator

glibc_only = pytest.mark.skipif(allocator._glibc() is None, reason="glibc malloc only")

# Two 24 MiB blocks freed together: with glibc's defaults the first pair raises the moving thresholds
# (mmap ~24 MiB, trim twice that), later pairs come from the heap, and the freed top (48 MiB and a little
# padding) just exceeds the trim threshold: handed back, faulted in again next time (a page fault per 4 KiB).
# With the thresholds fixed (trim 256 MiB) the heap keeps it.


def _run(code: str, **env: str) -> dict:
    """`code` in a fresh interpreter on glibc's own defaults but for `env` (the caller's switches dropped)."""
    base = {
        k: v for k, v in os.environ.items() if k not in ("CHIPBENCH_MALLOC", "LD_PRELOAD", "GLIBC_TUNABLES")
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**base, **env}
    )
    return json.loads(out.stdout)


RELEASE = """
import ctypes, json
from chipbench.platform import allocator
allocator.tune()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
blocks = [libc.malloc(8 << 20) for _ in range(24)]  # 192 MiB under the trim threshold, from the heap
for b in blocks:
    ctypes.memset(b, 1, 8 << 20)
for b in blocks:
    libc.free(b)
held = rss()
allocator.release()
print(json.dumps({"held": held, "released": rss()}))
"""


@glibc_only
def test_release_hands_back_what_the_heap_kept():
    got = _run(RELEASE)
    assert got["held"] - got["released"] > 150 << 20  # the freed 192 MiB stayed until release
