"""Seeded random fills of large CPU tensors, drawn in parallel.

torch's CPU ``normal_`` and ``uniform_`` draw on one thread: initializing a 1B-parameter model that way
takes 10 s or more whatever the core count, most of a benchmark's set-up. These fills split a
contiguous tensor into a fixed number of chunks, each drawn by its own generator on a thread of a pool.
The seeds come from one draw of the caller's generator (torch's default one unless given), so
``torch.manual_seed`` still fixes every value, and the values do not depend on the number of threads.
Same distribution as the one-call fill, not the same values. Small, non-contiguous, non-CPU and subclassed
(DTensor) tensors take the one-call fill.

Example::

    w = torch.empty(4096, 4096)
    normal_(w, 0.0, 0.02)  # like nn.init.normal_(w, 0.0, 0.02), on every core
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

CHUNKS = 64
"""Chunks per tensor: fixed, so the values are the same on any machine."""
PARALLEL_MIN_NUMEL = 1 << 22
"""Below this many elements (16 MiB of fp32) the one-call fill is as fast."""


@torch.no_grad()
def _fill(
    t: torch.Tensor,
    draw: Callable[[torch.Tensor, torch.Generator | None], object],
    gen: torch.Generator | None,
) -> torch.Tensor:
    """`draw(tensor, generator)` over `t`: in one call where `_parallel` says no, else chunk by chunk."""
    if not _parallel(t):
        draw(t, gen)
        return t
    # On the CPU whatever the default device: `gen` is a CPU generator.
    seed = int(torch.randint(0, 2**62, (1,), generator=gen, device="cpu").item())
    flat = t.detach().view(-1)  # (N,); detached: grad mode is per thread, the pool's is on
    n = flat.numel()
    bounds = [n * i // CHUNKS for i in range(CHUNKS + 1)]

    def one(i: int) -> None:
        g = torch.Generator().manual_seed(seed + i)
        with torch.no_grad():
            draw(flat[bounds[i] : bounds[i + 1]], g)

    threads = max(1, min(torch.get_num_threads(), CHUNKS))
    if threads == 1:
        for i in range(CHUNKS):
            one(i)
        return t
    with ThreadPoolExecutor(threads, thread_name_prefix="fill") as pool:  # the draws release the GIL
        list(pool.map(one, range(CHUNKS)))
    return t


def _parallel(t: torch.Tensor) -> bool:
    # Plain tensors only: a subclass (DTensor under FSDP2) draws through its own random-op handling.
    plain = type(t) in (torch.Tensor, torch.nn.Parameter)
    return plain and t.device.type == "cpu" and t.is_contiguous() and t.numel() >= PARALLEL_MIN_NUMEL


def normal_(
    t: torch.Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill `t` with N(mean, std) in place; returns `t`."""
    return _fill(t, lambda c, g: c.normal_(mean, std, generator=g), generator)


def uniform_(
    t: torch.Tensor, low: float = 0.0, high: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill `t` with U(low, high) in place; returns `t`."""
    return _fill(t, lambda c, g: c.uniform_(low, high, generator=g), generator)
