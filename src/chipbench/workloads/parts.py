"""Where a whole step's time goes: each part's time, FLOPs and bytes, for the roofline breakdown.

A family writes its step once more as a *pass* that calls ``mark(name)`` at the end of each part (the
same modules, the same inputs). ``measure_parts`` runs that pass after the timed rounds, never inside
them: a few times with the device synchronized at every mark (each part's time, the median over the
passes), then once under a dispatch mode that counts what every operator does (each part's FLOPs and
bytes). Marks with the same name add up (a part of every layer is one part).

Conventions (stated in every result through `PARTS_CONVENTION`):
- FLOPs: PyTorch's FlopCounterMode formulas (matrix products, convolutions, attention kernels; 2 per
  multiply-add; attention unmasked), plus the CPU flash-attention kernels, which it does not list.
- bytes: every operator reads its tensor operands and writes its results once (the unfused traffic);
  views move nothing; the operands an indexing operator gathers from or scatters into (an embedding table,
  its optimizer state) count as the largest of the op's other operands (the rows it returns or adds), not
  the whole table.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

from chipbench.core.wire import Info
from chipbench.platform.device import synchronize

PARTS_CONVENTION = {
    "flops": "FlopCounterMode's formulas (matmuls, convolutions, attention unmasked; 2 per MAC)",
    "bytes": "each operator reads its operands and writes its results once (unfused); views move nothing; "
    "a table an indexing op gathers from or scatters into counts as the rows it touches (its largest other "
    "operand)",
    "declared": "embedding parts declare their bytes in their family's convention (FBGEMM TBE: output + a "
    "row per id; update: 2x that, ids and optimizer state)",
    "timing": "a separate pass after the timed rounds, the device synchronized at each part's end; "
    "median of the passes",
}

Mark = Callable[..., None]
"""mark(part, nbytes=None): the end of a part; `nbytes` replaces the counted bytes with the family's own
convention where operator-level counting cannot see them (a pooled lookup touches a row per id, which
none of its operands' sizes tells)."""
Pass = Callable[[Mark, int], Any]
"""run_pass(mark, rep): one step, calling mark(part) at the end of each part."""


class PartCount(TypedDict):
    ms: float
    """Median milliseconds of the part per step."""
    flops: float
    bytes: float


def measure_parts(run_pass: Pass, device: str, reps: int = 3, warmup: int = 0) -> dict[str, PartCount]:
    """Each part's median time over `reps` synchronized passes, and its FLOPs and bytes from one counted
    pass (parts in the order the pass first reaches them). The passes run after the timed steps, on the
    step's own modules and optimizers, so they start warm; `warmup` untimed passes come first where they
    do not (a pass that runs eager kernels a compiled step never ran)."""
    for rep in range(warmup):
        run_pass(lambda name, nbytes=None: None, rep)
    times: dict[str, list[float]] = {}
    for rep in range(reps):
        acc: dict[str, float] = {}
        synchronize(device)
        last = [time.perf_counter()]

        def mark(
            name: str, nbytes: float | None = None, acc: dict[str, float] = acc, last: list[float] = last
        ) -> None:
            synchronize(device)
            now = time.perf_counter()
            acc[name] = acc.get(name, 0.0) + (now - last[0]) * 1e3
            last[0] = now

        run_pass(mark, rep)
        for k, v in acc.items():
            times.setdefault(k, []).append(v)
    counter = _counter()
    with counter:
        run_pass(counter.close, reps)
    return {
        name: {
            "ms": statistics.median(v),
            "flops": float(counter.flops.get(name, 0.0)),
            "bytes": float(counter.bytes.get(name, 0.0)),
        }
        for name, v in times.items()
    }


def parts_info(run_pass: Pass, device: str, reps: int = 3, note: str | None = None, warmup: int = 0) -> Info:
    """What a whole step's `after` records: its parts (`measure_parts`) and the conventions they follow,
    with `note` when given (whether the parts are timed as the step runs, e.g. eager under compile)."""
    convention = dict(PARTS_CONVENTION) if note is None else {**PARTS_CONVENTION, "note": note}
    return {"parts": measure_parts(run_pass, device, reps, warmup), "parts_convention": convention}


def backward_in_parts(mark: Mark, loss: Any, part: str, cuts: Sequence[tuple[Any, Any, str]]) -> None:
    """The backward of a pass cut apart by detached inputs, part by part from the head: `loss`'s own
    (`part`), then each cut's (output, the detached input the next part took, part) in turn, marking the
    end of each."""
    loss.backward()
    mark(part)
    for out, cut, name in cuts:
        out.backward(cut.grad)
        mark(name)


def _touched(sizes: list[float]) -> list[float]:
    """Bytes of an indexing op's operands with its tables counted as the rows it touches: the operands
    within half of the largest (a table, its optimizer state, the same table returned in place) count as
    the largest of the others (the rows gathered or the rows scattered) when they are over 4x it."""
    top = max(sizes)
    rest = max((z for z in sizes if z < top / 2), default=0.0)
    if top <= 4 * rest or rest == 0.0:
        return sizes
    return [rest if z >= top / 2 else z for z in sizes]


def _counter() -> Any:
    """A TorchDispatchMode that adds up each operator's FLOPs and bytes until `close(part)`."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count

    aten = torch.ops.aten
    cpu_flash = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    cpu_flash_bwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    skip = {
        aten.detach.default, aten.lift_fresh.default, aten.empty.memory_format,
        aten.empty_strided.default, aten.new_empty_strided.default, aten._values.default,
        aten._indices.default,
    }  # fmt: skip

    def nbytes(t: torch.Tensor) -> float:
        if t.layout == torch.sparse_coo:
            return float(t._values().nbytes + t._indices().nbytes)
        if t.layout != torch.strided:
            return 0.0
        return float(t.numel() * t.element_size())

    def flops_of(func: Any, args: Any, kwargs: Any, out: Any) -> float:
        packet = func._overloadpacket
        if packet in flop_registry:
            return float(flop_registry[packet](*args, **kwargs, out_val=out))
        if cpu_flash is not None and packet is cpu_flash:
            q, k, v = args[:3]
            return float(sdpa_flop_count(q.shape, k.shape, v.shape))
        if cpu_flash_bwd is not None and packet is cpu_flash_bwd:
            g, q, k, v = args[:4]
            return float(sdpa_backward_flop_count(g.shape, q.shape, k.shape, v.shape))
        return 0.0

    def indexing(func: Any) -> bool:
        name = func.name()
        return name.startswith("fbgemm::") or any(
            w in name for w in ("index", "embedding", "gather", "scatter", "_sparse")
        )

    class Counter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.flops: dict[str, float] = {}
            self.bytes: dict[str, float] = {}
            self.pending = [0.0, 0.0]

        def close(self, name: str, nbytes: float | None = None) -> None:
            self.flops[name] = self.flops.get(name, 0.0) + self.pending[0]
            self.bytes[name] = self.bytes.get(name, 0.0) + (self.pending[1] if nbytes is None else nbytes)
            self.pending = [0.0, 0.0]

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func._overloadpacket not in flop_registry and func not in skip:
                # Composite ops reach here whole where autograd is off (inference_mode: aten.linear):
                # count what they decompose into (addmm, mm), as FlopCounterMode does.
                with self:
                    r = func.decompose(*args, **kwargs)
                if r is not NotImplemented:
                    return r
            out = func(*args, **kwargs)
            if func in skip or func.is_view:
                return out
            with contextlib.suppress(Exception):  # a formula that cannot read these shapes: no FLOPs
                self.pending[0] += flops_of(func, args, kwargs, out)
            ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
            tensors = [*ins, *outs]  # an in-place op's result is its operand again: read, then written
            sizes = [nbytes(t) for t in tensors]
            if indexing(func) and sizes:
                sizes = _touched(sizes)
            self.pending[1] += sum(sizes)
            return out

    return Counter()
