"""Cases: one benchmark at one config, built from the user's names, suite and overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.core.registry import SUITES, Benchmark, get, registered
from chipbench.core.wire import Overrides


@dataclass(frozen=True)
class Case:
    """One benchmark at one config: the unit the runner schedules."""

    bench: str
    overrides: Overrides
    requested: Overrides | None = field(default=None, compare=False)
    """What the user or suite asked for, before `resolve_case` fitted it to the device (None: as
    `overrides`); results record it so machines that fit a case differently still match by it."""

    @property
    def label(self) -> str:
        return ",".join(f"{k}={_fmt(v)}" for k, v in sorted(self.overrides.items()))

    @property
    def name(self) -> str:
        return f"{self.bench}[{self.label}]" if self.overrides else self.bench


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "-".join(map(str, v))
    return str(v)


def memory_estimate(b: Benchmark[Any], cfg: Any, world: int = 1, kind: str = "cpu") -> int | None:
    """Bytes one process needs for this case: the benchmark's own estimate, or its per-rank layout's
    over `world` processes (FSDP2 and TorchRec shard what one process would hold whole)."""
    est = b.describe(cfg).memory_bytes_estimate
    if world > 1 and b.plan is not None:
        per_rank = b.plan(cfg, world, kind).memory_bytes_per_rank_estimate
        est = per_rank if per_rank is not None else est
    return est


def resolve_case(case: Case, kind: str, device_dtype: tuple[str, str], free_bytes: int) -> Case:
    """Make a case concrete for a device of `kind`: dtype=auto replaced (`device_dtype` is the
    device-wide choice), sizes fitted to free memory."""
    b = get(case.bench)
    ov = dict(case.overrides)
    if getattr(b.config(ov), "dtype", None) == "auto":
        ov["dtype"] = b.resolve_auto_dtype(kind, device_dtype)[0]
    if b.fit is not None:
        ov.update(b.fit(b.config(ov), free_bytes, kind))
    return Case(case.bench, ov, dict(case.overrides) if case.requested is None else case.requested)


def suite_cases(suite: str, only: list[str] | None = None, world: int = 1) -> list[Case]:
    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    cases: list[Case] = []
    for name, bench in registered().items():
        if only and name not in only:
            continue
        if bench.needs_world > world:
            continue
        for ov in bench.suites.get(suite, []):
            cases.append(Case(name, dict(ov)))
    return cases


def build_cases(
    benches: list[str], suite: str | None, sets: dict[str, str], dtype: str | None, world: int = 1
) -> list[Case]:
    """Expand the user's benchmark names and suite into cases, validating every override up front."""
    for b in benches:
        if get(b).needs_world > world:
            raise UsageError(
                f"{b} needs at least {get(b).needs_world} processes; "
                f"run it with --nproc-per-node {get(b).needs_world} (or more)"
            )
    if suite is None and not benches:
        suite = "smoke"
    if suite is not None:
        cases = suite_cases(suite, benches or None, world)
        missing = [b for b in benches if not any(c.bench == b for c in cases)]
        if missing:
            raise UsageError(
                f"{missing[0]} has no case in the {suite} suite; run it without --suite (once, at its "
                f"defaults) or see `chipbench list --suite {suite}`"
            )
    else:
        # Named benchmarks without a suite run once each, at their defaults.
        cases = [Case(b, {}) for b in benches]
    out = []
    for c in cases:
        ov = dict(c.overrides)
        bench = get(c.bench)
        fields = {f.name for f in dataclasses.fields(bench.config_cls)}  # type: ignore[arg-type]
        if dtype is not None and "dtype" in fields:
            ov["dtype"] = dtype
        ov.update(sets)
        bench.config(ov)  # raises UsageError on unknown keys or bad values
        out.append(Case(c.bench, ov))
    return out


SHRINK_FIELDS = ("n_layers", "max_rows", "seq_len", "max_history", "batch_size", "vocab_size")
"""The sizes a user turns to make a case fit, in the order `describe` suggests them."""


def _shrink_from(name: str, full: Overrides) -> int | None:
    """Where a search along `name` starts: the size the config has now (max_rows: the largest table)."""
    if name == "max_rows":
        rows = full.get("rows", full.get("items"))
        rows = max(rows) if isinstance(rows, (list, tuple)) and rows else rows
        return rows if isinstance(rows, int) and not isinstance(rows, bool) else None
    v = full.get(name)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def largest_fitting(
    b: Benchmark[Any], overrides: Overrides, free_bytes: int, world: int = 1, kind: str = "cpu"
) -> list[dict[str, int]]:
    """Sizes that make a case that does not fit fit `free_bytes`, found by bisection over its memory
    estimate (which grows with each of SHRINK_FIELDS): each field alone, at the largest value that fits;
    where none fits alone, one set of them (the first field at 1, the next ones at the same share of
    their sizes, the first raised again as far as they allow). Empty when nothing turned fits."""
    cfg = b.config(overrides)
    full = {**dataclasses.asdict(cfg), **(b.resolved(cfg) if b.resolved else {})}
    start = {n: v for n in SHRINK_FIELDS if n in full and (v := _shrink_from(n, full)) is not None and v > 1}

    def fits(sizes: dict[str, int]) -> bool:
        try:
            est = memory_estimate(b, b.config({**overrides, **sizes}), world, kind)
        except (ValueError, UsageError):  # a value the config refuses (e.g. a batch that does not split)
            return False
        return est is not None and est <= free_bytes

    def valid(sizes: dict[str, int]) -> bool:
        try:
            b.config({**overrides, **sizes})
        except (ValueError, UsageError):
            return False
        return True

    def largest(name: str, given: dict[str, int]) -> int | None:
        lo, hi = 1, start[name] + 1
        if not fits({**given, name: 1}):
            return None
        while lo < hi - 1:  # the largest value up to the present one that fits with `given`
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits({**given, name: mid}) else (lo, mid)
        return lo

    alone = [{n: v} for n in start if (v := largest(n, {})) is not None]
    if alone or not start:
        return [{k: _nice(v) for k, v in sizes.items()} for sizes in alone]
    combo: dict[str, int] = {}
    for name in start:
        v = largest(name, combo)
        if v is not None:
            combo[name] = v
            break
        if valid({**combo, name: 1}):  # a size the config refuses at 1 (max_history under the mean) stays
            combo[name] = 1
    if not fits(combo):
        return []
    first, *rest = combo
    if len(rest) > 1:  # several sizes turned: each at the same share of its own, the largest that fits

        def share(f: float) -> dict[str, int]:
            return {first: combo[first], **{k: max(1, int(start[k] * f)) for k in rest}}

        lo, hi = 0.0, 1.0
        for _ in range(20):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits(share(mid)) else (lo, mid)
        combo = share(lo)
    combo[first] = largest(first, {k: v for k, v in combo.items() if k != first}) or combo[first]
    return [{k: _nice(v) for k, v in combo.items()}]


def _nice(v: int) -> int:
    """`v` rounded down to two significant digits (3041915 -> 3000000): a size to type, still fitting."""
    scale = 10 ** max(0, len(str(v)) - 2)
    return v // scale * scale
