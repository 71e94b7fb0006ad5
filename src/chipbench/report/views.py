"""What each part of the report page plots, derived from the pooled cases: roofline points against each
machine's roofs, process-count and message-size sweeps, latency against throughput, energy and price, and
where each whole step stands against its machine's ceilings. Plain data, unit-tested; `figures` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipbench.report.assemble import Machine, Pooled
from chipbench.results.document import THROUGHPUT_KEYS

WHOLE_STEPS = ("dlrm.train_step", "dlrm.inference", "llama.train_step", "llama.forward", "hstu.train_step",
               "hstu.inference")  # fmt: skip
"""Benchmarks that time a whole model step (the rest are its parts)."""
ENERGY_METRICS = ("samples_per_joule", "tokens_per_joule")
PRICE_METRICS = ("samples_per_dollar", "tokens_per_dollar")


@dataclass(frozen=True)
class RooflinePoint:
    machine: str
    name: str
    dtype: str
    intensity: float
    """FLOPs per byte moved, in the benchmark's own conventions (named in `convention`)."""
    tflops: float
    """Achieved TFLOP/s per device."""
    roof: float | None
    """The measured roof at this intensity for this dtype: min(matmul ceiling, intensity x copy GB/s)."""
    convention: str
    command: str

    @property
    def above_roof(self) -> bool:
        """Above the measured roof: a counting error (or a ceiling measured on a busy machine)."""
        return self.roof is not None and self.tflops > self.roof


def roof(m: Machine, dtype: str, intensity: float) -> float | None:
    ceil = m.matmul_tflops.get(dtype)
    if ceil is None or m.copy_gbps is None:
        return None
    return min(ceil, intensity * m.copy_gbps / 1000.0)


def roofline_points(machine: Machine, pooled: list[Pooled]) -> tuple[list[RooflinePoint], list[str]]:
    """Points of one machine's benchmarks that count both FLOPs and bytes; the names of those left off."""
    points, off = [], []
    for p in pooled:
        if p.machine != machine.id:
            continue
        if p.bench.startswith("calib."):  # they measure the roofs themselves
            off.append(p.name)
            continue
        flops, nbytes = p.work.flops, p.work.bytes
        conv = p.work.bytes_convention or ""
        m = p.metrics
        tflops = m.get("tflops_per_device", m.get("tflops"))
        if not flops or not nbytes or tflops is None or conv.startswith("collective"):
            off.append(p.name)
            continue
        dtype = str(p.resolved.get("dtype") or "fp32")
        x = float(flops) / float(nbytes)
        if not (0 < x < float("inf")) or not tflops > 0:
            off.append(p.name)
            continue
        convention = f"FLOPs: {p.work.flop_convention or 'counted'}; bytes: {conv or 'counted'}"
        points.append(
            RooflinePoint(
                machine.id, p.name, dtype, x, tflops, roof(machine, dtype, x), convention, p.command
            )
        )
    return points, off


@dataclass(frozen=True)
class SeriesPoint:
    x: float
    y: float
    label: str
    command: str


@dataclass(frozen=True)
class Series:
    """One line of a sweep plot: a machine's case over process counts, message sizes or batch sizes."""

    machine: str
    name: str
    points: list[SeriesPoint]


def _throughput(m: dict[str, float]) -> tuple[str, float] | None:
    for k in THROUGHPUT_KEYS:
        if k in m:
            return k, m[k]
    return None


def scaling_series(pooled: list[Pooled]) -> list[Series]:
    """Scaling efficiency against process count, for cases run at one and more processes on one machine."""
    groups: dict[tuple[str, str, str], list[Pooled]] = {}
    for p in pooled:
        if not p.bench.startswith("comm."):
            groups.setdefault((p.machine, p.bench, str(sorted(p.requested.items()))), []).append(p)
    out = []
    for (mid, _bench, _req), ps in sorted(groups.items()):
        if len({p.world for p in ps}) < 2:
            continue
        pts = []
        one = next((q for q in ps if q.world == 1), None)
        base = _throughput(one.metrics) if one else None
        for p in sorted(ps, key=lambda q: q.world):
            t = _throughput(p.metrics)
            if t is None or base is None or t[0] != base[0] or base[1] <= 0:
                continue
            # Efficiency: throughput over N x the one-process throughput (1 = perfect), comparable across
            # cases whatever their unit.
            eff = t[1] / (p.world * base[1])
            label = f"{t[0]} {t[1]:.4g} at {p.world} process(es): scaling efficiency {eff:.0%}"
            pts.append(SeriesPoint(p.world, eff, label, p.command))
        if len(pts) >= 2:
            out.append(Series(mid, ps[0].name.rsplit("@world", 1)[0], pts))
    return out


def collective_series(pooled: list[Pooled]) -> list[Series]:
    """Bus bandwidth against message size per collective, machine and process count."""
    groups: dict[tuple[str, str, int], list[Pooled]] = {}
    for p in pooled:
        if p.bench.startswith("comm.") and "gbps_busbw" in p.metrics:
            groups.setdefault((p.machine, p.bench, p.world), []).append(p)
    out = []
    for (mid, bench, world), ps in sorted(groups.items()):
        pts = []
        for p in ps:
            size = p.work.bytes
            if size:
                bw = p.metrics["gbps_busbw"]
                pts.append(SeriesPoint(float(size), bw, f"{size:.4g} B: bus {bw:.4g} GB/s", p.command))
        if pts:
            out.append(Series(mid, f"{bench} x{world}", sorted(pts, key=lambda s: s.x)))
    return out


def latency_series(pooled: list[Pooled]) -> list[Series]:
    """dlrm.inference (and hstu.inference) batch sweeps: p50 and p99 latency against samples/s."""
    groups: dict[tuple[str, str, str], list[Pooled]] = {}
    for p in pooled:
        if p.bench.endswith(".inference") and "samples_per_s" in p.metrics:
            rest = {k: v for k, v in p.requested.items() if k != "batch_size"}
            label = ",".join(f"{k}={v}" for k, v in sorted(rest.items()))
            groups.setdefault((p.machine, p.bench, label), []).append(p)
    out = []
    for (mid, bench, label), ps in sorted(groups.items()):
        ps = sorted(ps, key=lambda q: q.metrics["samples_per_s"])
        for pct in ("p50", "p99"):
            pts = [
                SeriesPoint(
                    q.metrics["samples_per_s"],
                    q.metrics[f"step_ms_{pct}"],
                    f"batch {q.resolved.get('batch_size', '?')}: {q.metrics[f'step_ms_{pct}']:.4g} ms {pct}",
                    q.command,
                )
                for q in ps
                if f"step_ms_{pct}" in q.metrics
            ]
            if pts:
                out.append(Series(mid, f"{bench}[{label}] {pct}", pts))
    return out


@dataclass(frozen=True)
class Efficiency:
    """Perf per joule or per dollar of one case on one machine."""

    machine: str
    name: str
    metric: str
    value: float
    basis: str
    """What the figure rests on: the energy scope (gpu, cpu_package+dram) or the price's source."""


def efficiency(pooled: list[Pooled], metrics: tuple[str, ...]) -> list[Efficiency]:
    energy = metrics == ENERGY_METRICS
    return [
        Efficiency(p.machine, p.name, k, p.metrics[k],
                   f"energy scope {p.energy_scope or '?'}" if energy else f"price: {p.price_source or '?'}")
        for p in pooled for k in metrics if k in p.metrics
    ]  # fmt: skip


@dataclass(frozen=True)
class Limit:
    """Where one whole step stands against its machine's measured ceilings."""

    machine: str
    name: str
    flops_share: float | None
    bw_share: float | None
    command: str

    @property
    def bound(self) -> str:
        f, b = self.flops_share, self.bw_share
        if f is None and b is None:
            return "unknown: no ceiling or no work counted"
        if b is None or (f is not None and f >= b):
            return "compute-bound" if f is not None and f >= 0.5 else "compute-leaning, far from the ceiling"
        return "memory-bound" if b >= 0.5 else "memory-leaning, far from the ceiling"

    @property
    def over(self) -> bool:
        return any(s is not None and s > 1.0 for s in (self.flops_share, self.bw_share))


def limits(pooled: list[Pooled]) -> list[Limit]:
    out = []
    for p in pooled:
        if p.bench in WHOLE_STEPS:
            m = p.metrics
            out.append(
                Limit(
                    p.machine,
                    p.name,
                    m.get("share_of_ceiling_flops"),
                    m.get("share_of_ceiling_bw"),
                    p.command,
                )
            )
    return sorted(out, key=lambda lim: (lim.name, lim.machine))


@dataclass(frozen=True)
class PartRow:
    name: str
    ms: float
    tflops: float
    gbps: float
    floor_ms: float
    bound: str
    share: float
    faster_than_floor: bool


@dataclass(frozen=True)
class Breakdown:
    """Where one whole step's time goes on one machine, part by part (results.roofline)."""

    machine: str
    name: str
    step_ms: float
    floor_ms: float
    share: float
    cover: float
    covered: bool
    holds_back: str
    parts: list[PartRow]


def breakdowns(pooled: list[Pooled]) -> list[Breakdown]:
    out = []
    for p in pooled:
        r = p.roofline
        if p.bench not in WHOLE_STEPS or r is None or not r.parts:
            continue
        rows = [
            PartRow(n, v.ms, v.tflops, v.gbps, v.floor_ms, v.bound, v.share_of_roofline, v.faster_than_floor)
            for n, v in r.parts.items()
        ]
        share, holds = r.share_of_roofline, r.holds_back or ""
        out.append(
            Breakdown(p.machine, p.name, r.step_ms, r.floor_ms, share, r.parts_cover, r.covered, holds, rows)
        )
    return sorted(out, key=lambda b: (b.name, b.machine))
