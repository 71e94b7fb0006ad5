"""Metrics derived from a measurement: throughputs, TFLOP/s, GB/s, shares of published peaks and of the
measured ceilings, with units in their names; a metric that cannot be known is absent, with the reason."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from chipbench.core.contract import Work
from chipbench.core.price import Price, energy_usd_per_million, per_dollar
from chipbench.platform import peaks
from chipbench.platform.ceilings import Ceilings
from chipbench.results.measurement import Energy
from chipbench.results.model import Stats


class Derived(NamedTuple):
    metrics: dict[str, float]
    """Metric name (unit in the name) -> value."""
    unavailable: dict[str, str]
    """Metric name -> why it cannot be known here."""


@dataclass(frozen=True)
class Setting:
    """Where and how a case ran: what its figures are shares of, and how many ranks and machines did it."""

    device_name: str
    """The device's name, as torch reports it: it finds the published peaks."""
    dtype: str | None
    """The case's compute dtype; None: no FLOP/s shares."""
    ceilings: Ceilings | None
    """The measured ceilings (`chipbench calibrate`); None: no shares of a ceiling."""
    world_size: int = 1
    """Ranks of the job; `work` counts one rank's step."""
    tf32: bool = False
    """fp32 matmuls ran as TF32: measured against TF32's peak."""
    price: Price | None = None
    """One machine's price; None: no per-dollar figures."""
    nodes: int = 1
    """Machines of the job: each pays the price."""
    cache_bytes: int | None = None
    """The device's last-level cache: a step that moves no more than this may never leave it, and the
    copy ceiling (measured on buffers far larger) does not bound it. None: unknown."""


def derive_metrics(
    work: Work,
    median_s: float,
    stats: Stats | Mapping[str, Any],
    setting: Setting,
    *,
    peak_mem_bytes: int | None,
    energy: Energy | Mapping[str, Any] | None = None,
) -> Derived:
    """Derived metrics with units in their names, and why any is absent.

    `work` counts one rank's step; with the setting's `world_size` ranks, throughputs are global (every
    rank's work over the slowest rank's time) with a `_per_rank` twin, and shares of peak or ceiling are
    per device. `stats` and `energy` may be given as their JSON (a worker's reply, core.stats.summarize).
    A figure that is not a finite number (a price of 1e-320 dollars, a subnormal ceiling) is absent with
    its reason, as every other unknown one: JSON has no infinity, and a file chipbench writes is one it
    reads back.
    """
    d = _derive(work, median_s, stats, setting, peak_mem_bytes, energy)
    for name, v in list(d.metrics.items()):
        if not math.isfinite(v):
            del d.metrics[name]
            d.unavailable[name] = (
                f"not a finite number ({v}): an input (a price, a ceiling, a step time) is at the edge of "
                "what a float holds"
            )
    return d


def _derive(
    work: Work,
    median_s: float,
    stats: Stats | Mapping[str, Any],
    setting: Setting,
    peak_mem_bytes: int | None,
    energy: Energy | Mapping[str, Any] | None,
) -> Derived:
    st = stats if isinstance(stats, Stats) else Stats.from_json(stats)
    m: dict[str, float] = {
        "step_ms_p50": (st.p50 or 0.0) * 1e3,
        "step_ms_p90": (st.p90 or 0.0) * 1e3,
        "step_ms_p99": (st.p99 or 0.0) * 1e3,
    }
    missing: dict[str, str] = {}
    w = max(1, setting.world_size)
    _rates(m, work, median_s, w)
    if work.flops:
        tflops = work.flops / median_s / 1e12  # per device
        m["tflops"] = w * tflops
        if w > 1:
            m["tflops_per_device"] = tflops
        if setting.dtype:
            _flops_shares(Derived(m, missing), tflops, work.model_flops, setting.dtype, setting)
    if work.bytes:
        gbps = work.bytes / median_s / 1e9  # per device
        if work.bytes_convention and work.bytes_convention.startswith("collective"):
            # A collective's bandwidth is the job's, per nccl-tests (not summed over ranks), and is link
            # bandwidth, not device memory: no memory peak or copy ceiling applies.
            m["gbps"] = gbps
            for name, b in work.extra_bytes.items():
                m[f"gbps_{name}"] = b / median_s / 1e9
            if peak_mem_bytes is not None:
                m["peak_mem_gib"] = peak_mem_bytes / 2**30
            return Derived(m, missing)
        _bandwidth(Derived(m, missing), gbps, work, median_s, setting)
    if peak_mem_bytes is not None:
        m["peak_mem_gib"] = peak_mem_bytes / 2**30
    power = energy if isinstance(energy, Energy) or energy is None else Energy.from_json(energy)
    _energy_and_cost(m, missing, work, w, power, setting.price, max(1, setting.nodes))
    return Derived(m, missing)


def _rates(m: dict[str, float], work: Work, median_s: float, w: int) -> None:
    """Samples, tokens and other counts per second (global, and per rank with several)."""
    if work.samples:
        m["samples_per_s"] = w * work.samples / median_s
        if w > 1:
            m["samples_per_s_per_rank"] = work.samples / median_s
    if work.tokens:
        m["tokens_per_s"] = w * work.tokens / median_s
        if w > 1:
            m["tokens_per_s_per_rank"] = work.tokens / median_s
    for name, n in work.counts.items():
        m[f"{name}_per_s"] = w * n / median_s


def _share(d: Derived, name: str, value: float, of: float | None, why: str) -> None:
    """`name` = value / of, or why it cannot be known (no `of`)."""
    if of:
        d.metrics[name] = value / of
    else:
        d.unavailable[name] = why


def _flops_shares(d: Derived, tflops: float, model_flops: bool, dtype: str, s: Setting) -> None:
    """One device's TFLOP/s as shares of the published peak (MFU for a whole model's FLOPs) and of the
    measured ceiling."""
    # fp32 matmuls that run as TF32 (allow_tf32, NGC's override) are measured against TF32's peak.
    peak, why = peaks.peak_tflops(s.device_name, dtype, tf32=s.tf32)
    for name in ("share_of_peak_flops", "mfu") if model_flops else ("share_of_peak_flops",):
        _share(d, name, tflops, peak, why)
    ceil = s.ceilings.matmul_tflops.get(dtype) if s.ceilings else None
    _share(
        d,
        "share_of_ceiling_flops",
        tflops,
        ceil,
        f"no measured {dtype} matmul ceiling: run `chipbench calibrate`",
    )


def _bandwidth(d: Derived, gbps: float, work: Work, median_s: float, s: Setting) -> None:
    """GB/s (global; `gbps` is one device's) and its shares of the published peak and the copy ceiling."""
    w = max(1, s.world_size)
    d.metrics["gbps"] = w * gbps
    if w > 1:
        d.metrics["gbps_per_device"] = gbps
    for name, b in work.extra_bytes.items():
        d.metrics[f"gbps_{name}"] = w * b / median_s / 1e9
    if s.cache_bytes and work.bytes is not None and work.bytes <= s.cache_bytes:
        why = (
            f"the step moves {work.bytes / 2**20:.3g} MiB, within the device's {s.cache_bytes / 2**20:.3g} MiB "
            "last-level cache: memory bandwidth does not bound it"
        )
        d.unavailable.update(share_of_peak_bw=why, share_of_ceiling_bw=why)
        return
    peak_bw, why = peaks.peak_mem_gbps(s.device_name)
    _share(d, "share_of_peak_bw", gbps, peak_bw, why)
    ceil_bw = s.ceilings.copy_gbps if s.ceilings else None
    _share(d, "share_of_ceiling_bw", gbps, ceil_bw, "no measured copy bandwidth: run `chipbench calibrate`")


def _energy_and_cost(
    m: dict[str, float],
    missing: dict[str, str],
    work: Work,
    world: int,
    energy: Energy | None,
    price: Price | None,
    nodes: int = 1,
) -> None:
    """Joules and dollars per sample and per token. Energy is the job's (summed over its devices) per step;
    a step does `world` ranks' work. The price is one machine's: a job on `nodes` machines pays it that
    many times."""
    units = [
        (u, per_rank * world)
        for u, per_rank in (("sample", work.samples), ("token", work.tokens))
        if per_rank
    ]
    jps = energy.joules_per_step if energy is not None else None
    if energy is not None:
        if jps is not None and jps > 0:
            m["avg_power_w"] = float(energy.avg_power_w or 0.0)
            m["idle_power_w"] = float(energy.idle_power_w or 0.0)
            for unit, per_step in units:
                m[f"joules_per_{unit}"] = jps / per_step
                m[f"{unit}s_per_joule"] = per_step / jps
        else:
            why = energy.unavailable or "no energy reading"
            for unit, _ in units:
                missing[f"joules_per_{unit}"] = why
    for unit, _ in units:
        rate = m.get(f"{unit}s_per_s")
        if price is None:
            missing[f"{unit}s_per_dollar"] = "no price: pass --price-per-hour or --price-file"
            continue
        got = per_dollar(rate / nodes, price) if rate else None
        if got is not None:
            m[f"{unit}s_per_dollar"] = got
        else:
            missing[f"{unit}s_per_dollar"] = "no hourly price (--price-per-hour)"
        joules = m.get(f"joules_per_{unit}")
        cost = energy_usd_per_million(joules, price) if joules is not None else None
        if cost is not None:
            m[f"energy_usd_per_million_{unit}s"] = cost
