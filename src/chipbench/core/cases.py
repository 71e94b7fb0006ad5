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
