"""The report as one self-contained HTML page (Jinja2 template, plotly.js inlined once) and as a Markdown
summary for CI job summaries and pull-request comments. Jinja2 escapes every value from a results file;
figures escape their own strings (`figures.esc`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jinja2
import plotly
import plotly.offline

from chipbench.core import text
from chipbench.report import figures
from chipbench.report.assemble import Cell, Machine, Report, Row
from chipbench.report.summary import FEW_CASES, Mean, Standing, left_out_by_machine, standings
from chipbench.report.views import Limit, breakdowns, limits, roofline_points

THROUGHPUT = (("samples_per_s", "samples/s"), ("tokens_per_s", "tokens/s"))


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if v == 0:
        return "0"
    return f"{v:.{digits}g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.2e}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


@dataclass(frozen=True)
class TableRow:
    """One machine's line under a case in the page's tables."""

    case: str
    first: bool
    """The first line of its case (the case name is shown once)."""
    machine: str
    median: str
    ci: str
    runs: str
    throughput: str
    tflops: str
    gbps: str
    mfu: str
    ceiling: str
    memory: str
    speedup: str
    notes: list[str]
    bad: bool
    """A share above 100% or a point above its roof: shown in red."""
    apart: str
    """Why it is not comparable with the baseline (empty when it is)."""


def _row_lines(report: Report, row: Row) -> list[TableRow]:
    out = []
    for i, (mid, c) in enumerate(sorted(row.cells.items(), key=lambda kv: kv[0] != report.baseline)):
        p, m = c.pooled, c.pooled.metrics
        thr = next((f"{fmt(m[k])} {unit}" for k, unit in THROUGHPUT if k in m), "-")
        shares = [(k, m[k]) for k in ("share_of_ceiling_flops", "share_of_ceiling_bw") if k in m]
        spread = (
            f"{len(p.runs)} ({fmt(min(p.run_medians_s) * 1e3)}-{fmt(max(p.run_medians_s) * 1e3)})"
            if len(p.runs) > 1
            else "1"
        )
        notes = list(c.differences) + list(p.flags) + ([f"sustained ({p.soak})"] if p.soak else [])
        if p.disturbed:
            notes.insert(0, f"disturbed: {len(p.disturbed)} of {len(p.runs)} run(s) measured on a disturbed "
                            f"machine, shown by --include-disturbed ({p.disturbed[-1]})")  # fmt: skip
        out.append(
            TableRow(
                case=row.name,
                first=i == 0,
                machine=mid + (" (baseline)" if mid == report.baseline else ""),
                median=fmt(p.median_s * 1e3, 4),
                ci=f"{fmt(p.ci_s[0] * 1e3)}-{fmt(p.ci_s[1] * 1e3)}",
                runs=spread,
                throughput=thr,
                tflops=fmt(m.get("tflops")),
                gbps=fmt(m.get("gbps")),
                mfu=pct(m.get("mfu")),
                ceiling=", ".join(f"{pct(v)} {'FLOP/s' if 'flops' in k else 'bandwidth'}" for k, v in shares)
                or "-",
                memory=fmt(m.get("peak_mem_gib")),
                speedup=_speedup(c),
                notes=notes,
                bad=bool(p.flags) or bool(p.disturbed) or any(v > 1.0 for _, v in shares),
                apart=row.not_comparable.get(mid, ""),
            )
        )
    return out


def _speedup(c: Cell) -> str:
    if c.speedup is None or c.speedup_ci is None:
        return "-"
    return f"{c.speedup:.3g}x ({c.speedup_ci[0]:.3g}-{c.speedup_ci[1]:.3g})"


def _families(report: Report) -> dict[str, list[TableRow]]:
    fams: dict[str, list[TableRow]] = {}
    for r in report.rows:
        fams.setdefault(r.family, []).extend(_row_lines(report, r))
    return fams


def cases(n: int) -> str:
    return f"{n} matched case" + ("" if n == 1 else "s")


def ci(lo_hi: tuple[float, float]) -> str:
    return f"{lo_hi[0]:.3g}-{lo_hi[1]:.3g}"


def overall_line(s: Standing, baseline: str) -> str:
    o = s.overall
    if o is None:
        return f"{s.machine}: no case in common with the baseline."
    return (
        f"{s.machine} is {o.value:.3g}x the baseline {baseline} (95% CI {ci(o.ci)}; geometric mean over "
        f"{cases(o.cases)}): faster in {o.faster}, slower in {o.slower}, within noise in "
        f"{o.cases - o.faster - o.slower} (each case's 95% confidence interval)."
    )


def caution(s: Standing) -> str:
    """Empty unless the machine's headline, or one of its family lines, rests on fewer than FEW_CASES
    matched cases."""
    o = s.overall
    if o is None:
        return ""
    more = "Run the same suite on both machines (`chipbench run --suite default`) to match more."
    if o.few:
        return (
            f"{s.machine}'s figure rests on {cases(o.cases)}, fewer than {FEW_CASES}: read it as a hint, not a "
            f"verdict. {more}"
        )
    few = [f for f in s.families if f.few]
    if not few:
        return ""
    names = ", ".join(f"{f.title} ({f.cases})" for f in few)
    return (
        f"{s.machine}'s line(s) for {names} rest on fewer than {FEW_CASES} matched cases: read them as hints, "
        f"not verdicts; the headline rests on {cases(o.cases)}. {more}"
    )


def family_line(f: Mean) -> str:
    dist = f", {f.disturbed} measured on a disturbed machine" if f.disturbed else ""
    few = " (few cases: a hint)" if f.few else ""
    return f"{f.title}: {f.value:.3g}x (95% CI {ci(f.ci)}) over {cases(f.cases)}{dist}{few}"


def headline(report: Report) -> list[str]:
    """A sentence per machine: its geometric-mean speed-up over the baseline on the cases both ran, with
    its interval; then a caution where that rests on few cases."""
    out = []
    for s in standings(report):
        out.append(overall_line(s, report.baseline))
        if c := caution(s):
            out.append(f"Caution: {c}")
    return out


def summary_lines(report: Report) -> list[str]:
    """The headline with each machine's family lines under it (indented), for a terminal."""
    out = []
    for s in standings(report):
        out.append(overall_line(s, report.baseline))
        if c := caution(s):
            out.append(f"Caution: {c}")
        out += [f"  {family_line(f)}" for f in s.families]
    return out


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("chipbench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _machine_ceilings(m: Machine) -> str:
    parts = [f"{dt} {fmt(v)} TFLOP/s" for dt, v in sorted(m.matmul_tflops.items())]
    if m.copy_gbps:
        parts.append(f"copy {fmt(m.copy_gbps)} GB/s")
    got = ", ".join(parts) or "not measured (run `chipbench calibrate`)"
    return f"{got}; {m.probe}" if m.probe else got


def _machine_peaks(m: Machine) -> str:
    parts = [f"{dt} {fmt(v)} TFLOP/s" for dt, v in sorted(m.peak_tflops.items())]
    if m.peak_gbps:
        parts.append(f"memory {fmt(m.peak_gbps)} GB/s")
    return ", ".join(parts) or "none published for this device"


def to_html(report: Report) -> str:
    """The whole page: plotly.js once, then every figure's div and call."""
    plots: list[tuple[str, str, str]] = []  # (section, title, html or "")
    bars = figures.speedup_bars(report)
    plots.append(("speedup", "Speed-up", figures.to_html(bars, "fig-speedup") if bars else ""))
    roof_notes = {}
    for i, m in enumerate(report.machines):
        fig, off = figures.roofline(report, m.id)
        roof_notes[m.id] = off
        plots.append(("roofline", m.id, figures.to_html(fig, f"fig-roofline-{i}") if fig else ""))
    extra = [
        ("scaling", "Scaling over processes", figures.scaling(report),
         "no process-count sweep in these results: run `chipbench run ... --nproc-per-node N` at two or more N"),
        ("collectives", "Collectives", figures.collectives(report),
         "no collective in these results: run `chipbench run comm.all_reduce --nproc-per-node 2`"),
        ("latency", "Latency against throughput", figures.latency(report),
         "no inference batch sweep in these results: run `chipbench run dlrm.inference --suite full`"),
        ("energy", "Performance per joule", figures.efficiency_bars(report, energy=True),
         "not measured: none of these results carries an energy reading"),
        ("price", "Performance per dollar", figures.efficiency_bars(report, energy=False),
         "not measured: none of these results carries a price"),
    ]  # fmt: skip
    sweeps = [
        (sec, title, figures.to_html(fig, f"fig-{sec}") if fig else "", why) for sec, title, fig, why in extra
    ]
    lim: list[Limit] = limits(report.pooled)
    points = {m.id: roofline_points(m, report.pooled)[0] for m in report.machines}
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        standings=[(s, overall_line(s, report.baseline), caution(s)) for s in standings(report)],
        left_out=left_out_by_machine(report),
        few_cases=FEW_CASES,
        ci=ci,
        machines=[(m, _machine_ceilings(m), _machine_peaks(m)) for m in report.machines],
        families=_families(report),
        plots=plots,
        roof_notes=roof_notes,
        points=points,
        sweeps=sweeps,
        limits=lim,
        breakdowns=breakdowns(report.pooled),
        fmt=fmt,
        pct=pct,
        plotly_js=plotly.offline.get_plotlyjs(),
        plotly_version=plotly.__version__,
        n_figures=sum(1 for *_, h in plots if h) + sum(1 for _, _, h, _ in sweeps if h),
    )


def to_markdown(report: Report) -> str:
    """A summary for CI job summaries and pull-request comments: headline, machines, speed-ups."""
    lines = [f"## {text.markdown(report.title)}", ""]
    for st in standings(report):
        lines.append(f"- {text.markdown(overall_line(st, report.baseline))}")
        if c := caution(st):
            lines.append(f"- **Caution:** {text.markdown(c)}")
        lines += [f"  - {text.markdown(family_line(f))}" for f in st.families]
    if len(report.machines) < 2:
        lines.append("- one machine: nothing to compare")
    lines += ["", "### Machines", ""]
    lines += text.markdown_table(
        ("machine", "device", "cpu", "stack", "measured ceilings", "published peaks", "files shown"),
        [
            [m.id, m.device, m.cpu, " ".join(f"{k} {v}" for k, v in m.stack.items()), _machine_ceilings(m),
             _machine_peaks(m), f"{len(m.files)} of {m.files_read}"]
            for m in report.machines
        ],
    )  # fmt: skip
    for lo in left_out_by_machine(report):
        if lo.newest:
            lines += [
                "",
                f"Left out of {text.markdown(lo.machine)}'s newest commit {text.markdown(lo.newest_commit)}:",
            ]
            lines += [f"- {text.markdown(x.case)}: {text.markdown(x.reason)}" for x in lo.newest]
    lines += ["", f"### Cases (speed-up over {text.markdown(report.baseline)}, 95% CI)", ""]
    table = []
    for r in report.rows:
        for line in _row_lines(report, r):
            table.append(
                [line.case if line.first else "", line.machine, line.median, line.throughput, line.ceiling,
                 line.speedup, line.apart or "; ".join(line.notes)]
            )  # fmt: skip
    lines += text.markdown_table(
        ("case", "machine", "median ms", "throughput", "of ceiling", "speed-up", "notes"), table
    )
    if report.notes or report.skipped:
        lines += ["", "### Notes", ""]
        lines += [f"- {text.markdown(n)}" for n in report.notes]
        lines += [f"- left out {text.markdown(s.path)}: {text.markdown(s.reason)}" for s in report.skipped]
    return "\n".join(lines) + "\n"
