"""The report's plots, drawn with plotly (it writes self-contained HTML: the page inlines its script once).

Every string that comes from a results file is HTML-escaped before it reaches a figure: plotly renders
text, names and hover labels as a subset of HTML (links included), and results files come from anyone.
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from chipbench.report.assemble import Report
from chipbench.report.summary import bar_rows, family_title
from chipbench.report.views import (
    ENERGY_METRICS,
    PRICE_METRICS,
    Series,
    collective_series,
    efficiency,
    latency_series,
    roofline_points,
    scaling_series,
)

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
CONFIG = {"displaylogo": False, "responsive": True}


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _color(report: Report, machine: str) -> str:
    ids = [m.id for m in report.machines]
    return PALETTE[ids.index(machine) % len(PALETTE)] if machine in ids else "#444"


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title={"text": esc(title), "x": 0.0, "font": {"size": 15}},
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.18},
        hoverlabel={"align": "left"},
    )
    return fig


def to_html(fig: go.Figure, div_id: str) -> str:
    """The figure's div and its plotting call; plotly.js itself is inlined once by the page."""
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG, div_id=div_id))


def speedup_bars(report: Report) -> go.Figure | None:
    """Speed-up over the baseline per case and machine, with 95% CI whiskers: grouped by workload family,
    fastest first within each (`summary.bar_rows`). A bar measured on a disturbed machine (shown only with
    `--include-disturbed`) is hatched and says so in its hover."""
    rows = bar_rows(report)
    if not rows:
        return None
    fig = go.Figure()
    for m in report.machines:
        if m.id == report.baseline:  # the dotted line at 1 is the baseline
            continue
        fams, ys, xs, lo, hi, text, hatch = [], [], [], [], [], [], []
        for r in rows:
            c = r.cells.get(m.id)
            if c is None or c.speedup is None or c.speedup_ci is None:
                continue
            fams.append(esc(family_title(r.family)))
            ys.append(esc(r.name))
            xs.append(c.speedup)
            lo.append(c.speedup - c.speedup_ci[0])
            hi.append(c.speedup_ci[1] - c.speedup)
            diff = "<br>differs: " + esc("; ".join(c.differences)) if c.differences else ""
            dist = c.pooled.disturbed
            hatch.append("/" if dist else "")
            warn = (
                f"<br><b>disturbed</b> ({len(dist)} of {len(c.pooled.runs)} run(s)): {esc(dist[-1])}"
                if dist
                else ""
            )
            text.append(
                f"{esc(m.id)}<br>{esc(r.name)}<br>speed-up {c.speedup:.3g}x "
                f"(95% CI {c.speedup_ci[0]:.3g}-{c.speedup_ci[1]:.3g})<br>median "
                f"{c.pooled.median_s * 1e3:.4g} ms over {len(c.pooled.runs)} run(s){diff}{warn}"
                f"<br>command: {esc(c.pooled.command)}"
            )
        fig.add_trace(
            go.Bar(
                # Each bar runs from 1 (the baseline) to the speed-up, left for slower, right for faster.
                y=[fams, ys], x=[x - 1.0 for x in xs], base=1.0, name=esc(m.id), orientation="h",
                marker={"color": _color(report, m.id), "pattern": {"shape": hatch}},
                error_x={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
                hovertext=text, hoverinfo="text",
            )
        )  # fmt: skip
    fig.add_vline(x=1.0, line_dash="dot", line_color="#555")
    fig.update_xaxes(type="log", title=f"speed-up over {esc(report.baseline)} (x, log scale; > 1 is faster)")
    fig.update_yaxes(autorange="reversed", automargin=True, tickfont={"size": 11})
    fig.update_layout(barmode="group")
    n = len(rows) * max(1, len(report.machines) - 1)
    title = "Speed-up over the baseline, 95% CI: by workload family, fastest first"
    return _layout(fig, title, height=max(360, 140 + 17 * n))


def roofline(report: Report, machine_id: str) -> tuple[go.Figure | None, list[str]]:
    """One machine's roofline: measured roofs per dtype (solid), published peaks (dashed), and each
    benchmark that counts both FLOPs and bytes as a point; a point above its roof is red."""
    m = next(x for x in report.machines if x.id == machine_id)
    points, off = roofline_points(m, report.pooled)
    if not points:
        return None, off
    xs = [p.intensity for p in points]
    x0, x1 = min([*xs, 0.1]) / 2, max([*xs, 1000.0]) * 2
    grid = [x0 * (x1 / x0) ** (i / 60) for i in range(61)]
    fig = go.Figure()
    dtypes = sorted({p.dtype for p in points} | set(m.matmul_tflops))
    for i, dt in enumerate(dtypes):
        color = PALETTE[i % len(PALETTE)]
        if dt in m.matmul_tflops and m.copy_gbps:
            fig.add_trace(go.Scatter(
                x=grid, y=[min(m.matmul_tflops[dt], x * m.copy_gbps / 1000) for x in grid], mode="lines",
                name=f"measured roof {esc(dt)}: {m.matmul_tflops[dt]:.3g} TFLOP/s, {m.copy_gbps:.3g} GB/s",
                line={"color": color}, hoverinfo="name",
            ))  # fmt: skip
        if dt in m.peak_tflops and m.peak_gbps:
            fig.add_trace(go.Scatter(
                x=grid, y=[min(m.peak_tflops[dt], x * m.peak_gbps / 1000) for x in grid], mode="lines",
                name=f"published peak {esc(dt)}: {m.peak_tflops[dt]:.4g} TFLOP/s, {m.peak_gbps:.4g} GB/s",
                line={"color": color, "dash": "dash"}, hoverinfo="name",
            ))  # fmt: skip
        pts = [p for p in points if p.dtype == dt]
        if pts:
            fig.add_trace(go.Scatter(
                x=[p.intensity for p in pts], y=[p.tflops for p in pts], mode="markers", name=f"benchmarks {esc(dt)}",
                marker={"size": 10, "color": ["#d62728" if p.above_roof else color for p in pts],
                        "line": {"width": 1, "color": "#222"}, "symbol": ["x" if p.above_roof else "circle" for p in pts]},
                hovertext=[
                    f"{esc(p.name)}<br>{p.tflops:.4g} TFLOP/s at {p.intensity:.4g} FLOP/byte"
                    + (f"<br>roof here {p.roof:.4g} TFLOP/s" if p.roof else "<br>no measured roof")
                    + ("<br><b>ABOVE THE ROOF: a counting error</b>" if p.above_roof else "")
                    + f"<br>{esc(p.convention)}<br>command: {esc(p.command)}"
                    for p in pts
                ],
                hoverinfo="text",
            ))  # fmt: skip
    fig.update_xaxes(type="log", title="arithmetic intensity (FLOP per byte moved)")
    fig.update_yaxes(type="log", title="TFLOP/s per device")
    return _layout(fig, f"Roofline: {m.id}", height=460), off


def _series_figure(
    report: Report,
    series: list[Series],
    title: str,
    xtitle: str,
    ytitle: str,
    *,
    logx: bool = False,
    logy: bool = False,
) -> go.Figure:
    fig = go.Figure()
    for s in series:
        fig.add_trace(go.Scatter(
            x=[p.x for p in s.points], y=[p.y for p in s.points], mode="lines+markers",
            name=f"{esc(s.machine)}: {esc(s.name)}", line={"color": _color(report, s.machine)},
            hovertext=[f"{esc(s.machine)}<br>{esc(s.name)}<br>{esc(p.label)}<br>command: {esc(p.command)}"
                       for p in s.points],
            hoverinfo="text",
        ))  # fmt: skip
    fig.update_xaxes(title=xtitle, type="log" if logx else "linear")
    fig.update_yaxes(title=ytitle, type="log" if logy else "linear")
    return _layout(fig, title, height=max(420, 360 + 18 * len(series)))


def scaling(report: Report) -> go.Figure | None:
    s = scaling_series(report.pooled)
    if not s:
        return None
    fig = _series_figure(
        report, s, "Scaling efficiency over processes (1 = perfect)", "processes",
        "throughput / (N x one-process throughput)",
    )  # fmt: skip
    fig.update_xaxes(dtick=1)
    fig.add_hline(y=1.0, line_dash="dot", line_color="#555")
    return fig


def collectives(report: Report) -> go.Figure | None:
    s = collective_series(report.pooled)
    if not s:
        return None
    return _series_figure(
        report, s, "Collectives: bus bandwidth", "message size (bytes)", "bus GB/s", logx=True
    )


def latency(report: Report) -> go.Figure | None:
    s = latency_series(report.pooled)
    if not s:
        return None
    return _series_figure(
        report,
        s,
        "Inference: latency against throughput (one point per batch size)",
        "samples/s",
        "step latency (ms)",
        logx=True,
        logy=True,
    )


def efficiency_bars(report: Report, energy: bool) -> go.Figure | None:
    effs = efficiency(report.pooled, ENERGY_METRICS if energy else PRICE_METRICS)
    if not effs:
        return None
    fig = go.Figure()
    for m in report.machines:
        mine = [e for e in effs if e.machine == m.id and math.isfinite(e.value)]
        if mine:
            fig.add_trace(go.Bar(
                y=[f"{esc(e.name)} ({esc(e.metric)})" for e in mine], x=[e.value for e in mine], orientation="h",
                name=esc(m.id), marker_color=_color(report, m.id),
                hovertext=[f"{esc(m.id)}<br>{esc(e.name)}<br>{e.value:.4g} {esc(e.metric)}<br>{esc(e.basis)}"
                           for e in mine],
                hoverinfo="text",
            ))  # fmt: skip
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(
        type="log",
        title="samples or tokens per joule (the metric in each label, the energy scope in the hover)"
        if energy
        else "samples or tokens per dollar of machine time (the price's source in the hover)",
    )
    fig.update_layout(barmode="group")
    return _layout(fig, "Performance per joule" if energy else "Performance per dollar")
