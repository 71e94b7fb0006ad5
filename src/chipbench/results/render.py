"""How a results document is shown: summary rows for the terminal table and Markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping

from chipbench.core import text
from chipbench.results.header import DeviceInfo, MachineInfo
from chipbench.results.model import Benchmark, Stats
from chipbench.results.typed import Document, as_document


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0"
    return f"{v:.{digits}g}" if abs(v) < 1e5 else f"{v:.3e}"


UNSTABLE_CI_PCT = 20.0
"""Above this half-width of the median's 95% CI (in % of the median), the table says "unstable"."""

SUMMARY_COLUMNS = (
    "benchmark",
    "median_ms",
    "±ci95",
    "rounds",
    "throughput",
    "tflops",
    "gbps",
    "of_ceiling",
    "peak_mem_gib",
)


def _ci_text(st: Stats) -> str:
    """The half-width of the median's 95% CI in % of the median; "unstable" past UNSTABLE_CI_PCT."""
    lo, hi = st.median_ci95 or (None, None)
    if lo is None or hi is None or not st.median:
        return "-"
    half = (hi - lo) / 2 / st.median * 100
    # A median known to worse than +-20% is noise, not a figure to read: flagged instead.
    return f"{half:.1f}%" if half <= UNSTABLE_CI_PCT else "unstable"


def _summary_row(b: Benchmark) -> list[str]:
    m = b.extra_info.metrics
    st = b.stats
    tput = ""
    if "tokens_per_s" in m:
        tput = f"{_fmt(m['tokens_per_s'])} tok/s"
    elif "samples_per_s" in m:
        tput = f"{_fmt(m['samples_per_s'])} samples/s"
    if "scaling_efficiency" in m:
        tput += f" ({m['scaling_efficiency'] * 100:.0f}% scaling)"
    gbps = _fmt(m.get("gbps"))
    if "gbps_busbw" in m:
        gbps += f" (bus {_fmt(m['gbps_busbw'])})"
    share = m.get("share_of_ceiling_flops", m.get("share_of_ceiling_bw"))
    median = st.median_s
    return [
        b.name,
        _fmt(median * 1e3 if median is not None else None, 4),
        _ci_text(st),
        str(st.rounds if st.rounds is not None else len(st.data)),
        tput or "-",
        _fmt(m.get("tflops")),
        gbps,
        "-" if share is None else f"{share * 100:.0f}%" + ("!" if share > 1.0 else ""),
        _fmt(m.get("peak_mem_gib")),
    ]


def summary_rows(doc: Document) -> list[list[str]]:
    """One row per benchmark (and per error) for the terminal or Markdown table."""
    typed = as_document(doc)
    rows = [_summary_row(b) for b in typed.benchmarks]
    for e in typed.errors:
        rows.append([e.name, f"ERROR {e.error_type}: {e.message[:60]}", "", "", "", "", "", "", ""])
    return rows


def to_markdown(doc: Document) -> str:
    typed = as_document(doc)
    mi = typed.machine_info or MachineInfo()
    dev = mi.device or DeviceInfo()
    md = text.markdown
    commit = ((typed.commit_info.id if typed.commit_info else None) or "?")[:12]
    lines = [
        f"### chipbench results: {md(dev.name or '?')} ({md(dev.kind or '?')})",
        "",
        f"machine {md(typed.header.machine_id or '?')}, commit {md(commit)}, "
        f"torch {md(mi.package('torch') or '?')}, {md(typed.datetime or '')}",
        "",
        *text.markdown_table(SUMMARY_COLUMNS, summary_rows(typed)),
    ]
    return "\n".join(lines) + "\n"


HEADLINE_GROUPS = (
    "dlrm.train_step", "dlrm.inference", "dlrm.embedding", "llama.train_step", "llama.forward",
    "hstu.train_step", "hstu.inference", "calib.matmul", "calib.copy",
)  # fmt: skip
"""The whole steps and the figures a hardware engineer asks for first, in this order."""


def human(v: float, unit: str) -> str:
    """3.1e6 samples/s -> '3.1 M samples/s'; 5.8e10 B/s -> '58 GB/s' (SI prefixes join symbols)."""
    gap = "" if unit[:1].isupper() else " "
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{gap}{unit}"
    return f"{v:.3g} {unit}"


def _limit(m: Mapping[str, float], dtype: str, when: str) -> str:
    """Which of the device's limits a whole step reaches, and how far."""
    if "mfu" in m:
        return f"MFU {m['mfu'] * 100:.0f}% ({dtype} peak)"
    if "share_of_ceiling_flops" in m:
        return f"{m['share_of_ceiling_flops'] * 100:.0f}% of the {dtype} matmul ceiling ({when})"
    if "share_of_ceiling_bw" in m:
        return f"{m['share_of_ceiling_bw'] * 100:.0f}% of the copy bandwidth ceiling ({when})"
    return "no ceiling: run `chipbench calibrate`"


def headline(doc: Document) -> list[list[str]]:
    """One row per whole-step benchmark: throughput, p99 latency, compute, share of the device's limits
    (which ceiling, measured when), peak memory; in human units."""
    typed = as_document(doc)
    ceil = typed.header.ceilings
    when = ((ceil.measured_at if ceil else None) or "")[:10]
    rows = []
    for group in HEADLINE_GROUPS:
        for b in typed.benchmarks:
            if b.group != group:
                continue
            m = b.extra_info.metrics
            tput = (
                human(m["gbps"] * 1e9, "B/s") if group in ("dlrm.embedding", "calib.copy") and "gbps" in m
                else human(m["tokens_per_s"], "tokens/s") if "tokens_per_s" in m
                else human(m["samples_per_s"], "samples/s") if "samples_per_s" in m
                else human(m["gbps"] * 1e9, "B/s") if "gbps" in m else "-"
            )  # fmt: skip
            compute = human(m["tflops"] * 1e12, "FLOP/s") if "tflops" in m else "-"
            mem = m.get("peak_mem_gib")
            rows.append([
                b.name, tput, f"{m['step_ms_p99']:.3g} ms" if "step_ms_p99" in m else "-", compute,
                _limit(m, b.extra_info.dtype or "", when), f"{mem:.3g} GiB" if mem is not None else "-",
            ])  # fmt: skip
    return rows


HEADLINE_COLUMNS = ("benchmark", "throughput", "p99 step", "compute", "of the device's limits", "peak memory")


def roofline_lines(doc: Document, short: bool = False) -> list[str]:
    """One compact line per whole step with a roofline breakdown: its share of the floor, whether its
    parts add up to it, and the part that holds it back most (time above its own floor). `short`: cases
    named as the terminal's table names them (`short_names`)."""
    typed = as_document(doc)
    names = short_names(typed) if short else {}
    out = []
    for b in typed.benchmarks:
        r = b.extra_info.roofline
        if r is None or not r.parts:
            continue
        worst = r.parts.get(r.holds_back or "")
        cover = "" if r.covered else f" (the parts' pass took {r.parts_cover:.2f}x the step)"
        held = (
            f"({worst.bound}-bound, {worst.ms:.3g} ms against a {worst.floor_ms:.3g} ms floor)"
            if worst is not None
            else "(?-bound, 0 ms against a 0 ms floor)"
        )
        out.append(
            f"roofline {names.get(b.name, b.name)}: {r.share_of_roofline * 100:.0f}% of roofline speed "
            f"(floor {r.floor_ms:.3g} ms, step {r.step_ms:.3g} ms){cover}; held back most by {r.holds_back} {held}"
        )
    return out


def _seconds(v: float | None) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)  # an integer past float's range raises
    except OverflowError:
        return None
    return f if math.isfinite(f) and f >= 0 else None


def time_line(doc: Document) -> str | None:
    """Where a run's wall time went: each case's set-up, its timed steps (first step, warm-up and rounds)
    and its parts pass, and the rest (start, imports, workers, writing). None for a document without
    these figures (files from before they were recorded)."""
    typed = as_document(doc)
    spent = {"setup_s": 0.0, "total_s": 0.0, "after_s": 0.0}
    seen = False
    for b in typed.benchmarks:
        m = b.extra_info.measurement
        if m is None:
            continue
        for key, got in (
            ("setup_s", m.extra.setup_s),
            ("total_s", m.extra.total_s),
            ("after_s", m.extra.after_s),
        ):
            v = _seconds(got)
            if v is not None:
                spent[key] += v
                seen = seen or key == "setup_s"
    if not seen:
        return None
    parts = (
        f"set-up {spent['setup_s']:.0f} s, timed steps {spent['total_s']:.0f} s, "
        f"parts passes {spent['after_s']:.0f} s"
    )
    wall = _seconds(typed.header.wall_s)
    if wall is None:
        return f"time: {parts}"
    rest = max(0.0, wall - sum(spent.values()))
    return f"time: {wall:.0f} s from start to save; {parts}, the rest {rest:.0f} s"


RESULTS_COLUMNS = ("case", "median\nms", "±ci95", "throughput", "compute", "of limit", "peak\nmemory")
"""The terminal's one results table (the Markdown table and the results file hold every figure)."""

RESULTS_LEGEND = (
    "±ci95: half-width of the median's 95% interval; `-` too few samples for one (under 6), `unstable`"
    f" wider than ±{UNSTABLE_CI_PCT:.0f}% (noise: rerun on a quieter machine). of limit: MFU (share of the"
    " published peak) or share of this machine's measured ceiling (`matmul`, `copy`); `-` none known"
    " (run `chipbench calibrate`)"
)


def results_legend(rows: list[list[str]]) -> str:
    """The table's legend, with the `!` and `*` marks explained only where a row of `rows` bears one."""
    cells = [r[RESULTS_COLUMNS.index("of limit")] for r in rows]
    marks = [
        text
        for mark, text in (("!", "`!` above 100%"), ("*", "`*` of a ceiling measured on a disturbed machine"))
        if any(mark in c for c in cells)
    ]
    return "; ".join([RESULTS_LEGEND, *marks]) + "."


def _of_limit(m: Mapping[str, float], busy: bool) -> str:
    """The share of the device's limits a case reaches, short (the legend says which is which); `busy`:
    the ceilings were measured on a disturbed machine (a share of them is marked `*`)."""
    for key, label in (
        ("mfu", "MFU {}"),
        ("share_of_ceiling_flops", "{} matmul"),
        ("share_of_ceiling_bw", "{} copy"),
    ):
        if key in m:
            v = m[key]
            mark = ("!" if v > 1.0 else "") + ("*" if busy and key != "mfu" else "")
            return label.format(f"{v * 100:.0f}%{mark}")
    return "-"


def _throughput(group: str | None, m: Mapping[str, float]) -> str:
    if group in ("dlrm.embedding", "calib.copy") and "gbps" in m:
        return human(m["gbps"] * 1e9, "B/s")
    for key, unit in (("tokens_per_s", "tokens/s"), ("samples_per_s", "samples/s")):
        if key in m:
            out = human(m[key], unit)
            return out + (
                f" ({m['scaling_efficiency'] * 100:.0f}% scaling)" if "scaling_efficiency" in m else ""
            )
    return human(m["gbps"] * 1e9, "B/s") if "gbps" in m else "-"


def short_names(doc: Document) -> dict[str, str]:
    """Each case's short name in the terminal's table: its benchmark with a key (`dlrm.mlp [3]`) where
    the full name carries a config; the key's full name is in the legend (`legend`)."""
    typed = as_document(doc)
    names = [b.name for b in typed.benchmarks] + [e.name for e in typed.errors]
    out = {}
    for i, name in enumerate(names, 1):
        head = name.split("[", 1)[0].split("@", 1)[0]
        out[name] = name if head == name else f"{head} [{i}]"
    return out


def results_table(doc: Document) -> list[list[str]]:
    """One row per case (and per error) for the terminal: short names, figures in human units."""
    typed = as_document(doc)
    short = short_names(typed)
    busy = bool(typed.header.ceilings and typed.header.ceilings.disturbed)
    rows = []
    for b in typed.benchmarks:
        m, st = b.extra_info.metrics, b.stats
        mem = m.get("peak_mem_gib")
        rows.append([
            short[b.name], _fmt(st.median_s * 1e3 if st.median_s is not None else None, 4), _ci_text(st),
            _throughput(b.group, m), human(m["tflops"] * 1e12, "FLOP/s") if "tflops" in m else "-",
            _of_limit(m, busy), f"{mem:.3g} GiB" if mem is not None else "-",
        ])  # fmt: skip
    for e in typed.errors:
        rows.append([short[e.name], f"ERROR {e.error_type}", "", "", "", "", ""])
    return rows


def legend(doc: Document) -> list[str]:
    """The full name of each short name the table used (`[3] dlrm.mlp[batch_size=256,...]`)."""
    return [f"{s[s.rindex('[') :]} {name}" for name, s in short_names(doc).items() if s != name]


def _delay(b: Benchmark) -> float:
    m = b.extra_info.measurement
    c = m.extra.contention if m is not None else None
    return (c.run_delay_share or 0.0) if c is not None else 0.0


def disturbed_summary(doc: Document) -> str | None:
    """One line for the cases measured on a disturbed machine: how many, the worst, what it means for the
    figures and what to do; None when none was. Each case's reason is in the results file
    (`extra_info.disturbed`)."""
    typed = as_document(doc)
    hit = [b for b in typed.benchmarks if b.extra_info.disturbed]
    if not hit:
        return None
    worst = max(hit, key=_delay)
    delay = _delay(worst)
    share = f"threads waited {delay:.0%} of their time for a CPU" if delay else worst.extra_info.disturbed
    return (
        f"disturbed: {len(hit)} of {len(typed.benchmarks)} cases ({short_names(typed)[worst.name]} worst: "
        f"{share}): times may be inflated, the gate says `rerun`; rerun when quiet (each case: --verbose)"
    )


def flags_summary(doc: Document) -> str | None:
    """One line for the cases whose figures are flagged (a share above 100%); None when none is."""
    typed = as_document(doc)
    hit = [b for b in typed.benchmarks if b.extra_info.flags]
    if not hit:
        return None
    first = hit[0].extra_info.flags[0]
    first = first if len(first) <= 90 else first[:89] + "…"  # the whole of each: --verbose, the results file
    return f"flagged: {len(hit)} case(s) ({short_names(typed)[hit[0].name]}: {first}; each case: --verbose)"
