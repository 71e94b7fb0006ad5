"""The host allocator's thresholds (platform.allocator): what they change, measured in page faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chipbench.platform import allocator, hardware

glibc_only = pytest.mark.skipif(allocator._glibc() is None, reason="glibc malloc only")

# Two 24 MiB blocks freed together: with glibc's defaults the first pair raises the moving thresholds
# (mmap ~24 MiB, trim twice that), later pairs come from the heap, and the freed top (48 MiB and a little
# padding) just exceeds the trim threshold: handed back, faulted in again next time (a page fault per 4 KiB).
# With the thresholds fixed (trim 256 MiB) the heap keeps it.
CHURN = """
import ctypes, json, resource, sys
from chipbench.platform import allocator
state = allocator.tune()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 24 << 20
def churn():
    a, b = libc.malloc(size), libc.malloc(size)
    ctypes.memset(a, 1, size)
    ctypes.memset(b, 1, size)
    libc.free(b)
    libc.free(a)
churn()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    churn()
print(json.dumps({"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0, "state": state}))
"""


def _run(code: str, **env: str) -> dict:
    """`code` in a fresh interpreter on glibc's own defaults but for `env` (the caller's switches dropped)."""
    base = {
        k: v for k, v in os.environ.items() if k not in ("CHIPBENCH_MALLOC", "LD_PRELOAD", "GLIBC_TUNABLES")
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**base, **env}
    )
    return json.loads(out.stdout)


def _churn(**env: str) -> dict:
    return _run(CHURN, **env)


@glibc_only
def test_tuned_thresholds_end_the_page_faults_of_reallocation():
    tuned = _churn()
    system = _churn(CHIPBENCH_MALLOC="system")
    assert tuned["state"]["tuned"] is True
    assert tuned["state"]["mmap_threshold_bytes"] == allocator.MMAP_THRESHOLD_BYTES
    assert system["state"]["tuned"] is False and "CHIPBENCH_MALLOC=system" in system["state"]["why_not"]
    pages = 20 * 2 * (24 << 20) // 4096
    assert system["faults"] > pages // 2  # glibc's defaults: the blocks are mapped afresh each time
    assert tuned["faults"] < pages // 50  # fixed thresholds: reused


def test_the_state_says_when_tune_did_not_run(monkeypatch):
    monkeypatch.setattr(allocator, "_state", None)
    assert allocator.state()["tuned"] is False
    assert "not called" in allocator.state()["why_not"]


@glibc_only
def test_tune_runs_once_and_the_environment_records_it(monkeypatch):
    monkeypatch.setattr(allocator, "_state", None)
    monkeypatch.setenv("CHIPBENCH_MALLOC", "system")
    first = allocator.tune()
    monkeypatch.delenv("CHIPBENCH_MALLOC")
    assert allocator.tune() is first  # a process is tuned once, by its first call
    assert first["tuned"] is False
    assert hardware.environment("cpu")["host_allocator"] == first


def test_preloaded_reads_ld_preload(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2:/opt/libfoo.so")
    assert allocator._preloaded() == "libjemalloc.so.2"
    monkeypatch.setenv("LD_PRELOAD", "/opt/libfoo.so")
    assert allocator._preloaded() is None


def test_state_is_a_copy(monkeypatch):
    monkeypatch.setattr(allocator, "_state", {"allocator": "x", "tuned": False})
    allocator.state()["tuned"] = True
    assert allocator.state()["tuned"] is False


def test_a_preloaded_allocator_is_left_alone(monkeypatch):
    monkeypatch.setattr(allocator, "_state", None)
    monkeypatch.setattr(allocator, "_preloaded", lambda: "libjemalloc.so.2")
    got = allocator.tune()
    assert got["tuned"] is False and "libjemalloc.so.2 is preloaded" in got["why_not"]


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
