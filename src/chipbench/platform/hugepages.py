"""Transparent huge pages for large CPU tensors (Linux).

Embedding tables are read and updated at random rows: on 4 KiB pages almost every row lookup needs its
own TLB entry, and a miss costs a page walk. Backing the tables with huge pages (2 MiB on x86-64) cuts the
entries needed by 512x. The tensors are already allocated and filled when we see them, so their pages are
advised (MADV_HUGEPAGE) and then moved, a chunk at a time: the chunk's values are copied aside, its small
pages dropped (MADV_DONTNEED) and the values copied back, which faults the range in on huge pages. Same
addresses, same values, bigger pages; 1.5x faster here than the kernel's own in-place collapse
(MADV_COLLAPSE, which also gave up once in six tries): 2.4 s against 3.7 s for model1's 2 GB. Where a
moved chunk comes back on small pages (kernels before 6.14), the collapse is what runs. What it buys is measured, not assumed:
benchmarks/dlrm_goal.py runs auto with and without it (figures in the README).
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from typing import Any

from chipbench.core.wire import Info

THP_DIR = "/sys/kernel/mm/transparent_hugepage"
THP_ENABLED = f"{THP_DIR}/enabled"
DEFAULT_HUGE_PAGE = 2 << 20
MADV_DONTNEED = 4  # Linux values: never passed to madvise on another system
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
MOVE_BUDGET_BYTES = 16 << 30
"""Move at most this much per process synchronously (about 2.4 s per 2 GB here); beyond it the pages are only
advised and khugepaged promotes them in the background."""
MOVE_CHUNK_BYTES = 64 << 20
"""The bounce buffer, rounded up to whole huge pages: the only extra memory a move takes."""


def huge_page_bytes() -> int:
    """The PMD huge page size: 2 MiB on x86-64 and 4K-page arm64, 512 MiB on 64K-page arm64."""
    try:
        with open(f"{THP_DIR}/hpage_pmd_size") as f:
            return int(f.read())
    except (OSError, ValueError):
        return DEFAULT_HUGE_PAGE


def thp_mode(path: str = THP_ENABLED) -> str | None:
    """The kernel's THP mode (always, madvise or never), or None where there is no THP (not Linux)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def available(path: str = THP_ENABLED) -> tuple[bool, str]:
    """(usable, why): whether advising tensors onto huge pages can take effect on this machine."""
    mode = thp_mode(path)
    if mode is None:
        return False, "no transparent huge pages on this system (Linux only)"
    if mode == "never":
        return False, f"transparent huge pages are disabled ({path} is [never])"
    return True, f"transparent huge pages: {mode}"


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise.restype = ctypes.c_int
    return libc


def _move(libc: Any, raw: Any, base: int, start: int, end: int, buf: Any) -> str | None:
    """Move [start, end) of `raw` (bytes over a storage at address `base`) onto fresh pages, a chunk at a
    time through `buf`; an error's text, or None."""
    a = start
    while a < end:
        b = min(a + buf.numel(), end)
        region, aside = raw[a - base : b - base], buf[: b - a]
        aside.copy_(region)
        try:
            if libc.madvise(a, b - a, MADV_DONTNEED) != 0:
                return f"MADV_DONTNEED: {os.strerror(ctypes.get_errno())}"
        finally:
            region.copy_(aside)  # whatever happened (even a Ctrl-C), the values go back
        a = b
    return None


def _collapse(libc: Any, start: int, end: int) -> str | None:
    if libc.madvise(start, end - start, MADV_COLLAPSE) != 0:
        # EINVAL before Linux 6.1; EAGAIN/ENOMEM when not every huge page could be found right now.
        return f"MADV_COLLAPSE: {os.strerror(ctypes.get_errno())}"
    return None


def advise(tensors: list[Any], move_budget: int = MOVE_BUDGET_BYTES) -> Info:
    """Put the huge-page-aligned interior of each CPU tensor's storage on huge pages; what happened, for
    the result's info. For tensors in the process's own memory (torch's CPU allocator), not in a file or
    shared mapping. Failures are recorded, never raised: placement is an optimisation, not a need.

    The first chunk moved is checked: a kernel that keeps the emptied page table (before Linux 6.14's
    page-table reclaim) faults it back in on small pages, and then the rest is collapsed in place
    (MADV_COLLAPSE) instead. `method` says which ran."""
    if not sys.platform.startswith("linux"):
        return {"advised_bytes": 0, "placed_bytes": 0, "place_s": 0.0, "errors": ["not Linux"]}
    import torch

    libc = _libc()
    page = huge_page_bytes()
    chunk = -(-max(MOVE_CHUNK_BYTES, page) // page) * page  # whole huge pages (512 MiB on 64K-page arm64)
    seen: set[int] = set()
    advised = placed = attempted = 0
    method: str | None = None
    errors: list[str] = []
    buf: Any = None
    t0 = time.perf_counter()
    for t in tensors:
        if t.device.type != "cpu" or t.layout != torch.strided or t.is_pinned():
            continue
        storage = t.untyped_storage()
        if storage.is_shared():
            continue
        ptr, nbytes = storage.data_ptr(), storage.nbytes()
        if ptr in seen:
            continue
        seen.add(ptr)
        start = -(-ptr // page) * page
        end = (ptr + nbytes) // page * page
        if end <= start:
            continue
        if libc.madvise(start, end - start, MADV_HUGEPAGE) != 0:
            errors.append(f"MADV_HUGEPAGE: {os.strerror(ctypes.get_errno())}")
            continue
        advised += end - start
        # The budget counts attempts: a failing placement (fragmented memory) also costs compaction time.
        if attempted + (end - start) > move_budget:
            continue
        attempted += end - start
        if buf is None and method != "collapse":
            buf = torch.empty(chunk, dtype=torch.uint8)
        raw = torch.empty(0, dtype=torch.uint8).set_(storage)  # (nbytes,): the storage's bytes
        done = start
        if method is None:
            first = min(start + chunk, end)
            before = huge_bytes_backing([t])
            if err := _move(libc, raw, ptr, start, first, buf):
                errors.append(err)
                continue
            after = huge_bytes_backing([t])
            # Unreadable smaps (None): nothing to check against; the move stands.
            small = before is not None and after is not None and after - before < (first - start) // 2
            method, done = ("collapse", start) if small else ("move", first)
        if method == "move":
            err = _move(libc, raw, ptr, done, end, buf)
        else:
            buf = None
            err = _collapse(libc, start, end)
        if err:
            errors.append(err)
            continue
        placed += end - start
    out: Info = {
        "advised_bytes": advised,
        "placed_bytes": placed,
        "place_s": round(time.perf_counter() - t0, 2),
    }
    if method is not None:
        out["method"] = method
    if errors:
        out["errors"] = sorted(set(errors))
    return out


def allocator_note() -> str | None:
    """PyTorch's own CPU allocator option that puts large allocations on huge pages regardless of our
    setting (read once by c10 at the first large allocation)."""
    v = os.environ.get("THP_MEM_ALLOC_ENABLE")
    return f"THP_MEM_ALLOC_ENABLE={v}" if v else None


def huge_bytes_backing(tensors: list[Any]) -> int | None:
    """Bytes on huge pages (AnonHugePages, /proc/self/smaps) in the mappings that hold these tensors:
    what they actually got, whatever was asked (THP=always gives huge pages without advice). None where
    smaps cannot be read."""
    ranges = []
    for t in tensors:
        if t.device.type == "cpu":
            st = t.untyped_storage()
            ranges.append((st.data_ptr(), st.data_ptr() + st.nbytes()))
    if not ranges:
        return 0
    total = 0
    current: tuple[int, int] | None = None
    hit = False
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                head = line.split(maxsplit=1)[0]
                if "-" in head and not head.endswith(":"):
                    lo, hi = (int(x, 16) for x in head.split("-"))
                    current = (lo, hi)
                    hit = any(a < hi and b > lo for a, b in ranges)
                elif hit and head == "AnonHugePages:" and current is not None:
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return total
