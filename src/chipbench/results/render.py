"""How a results document is shown: summary rows for the terminal table and Markdown."""

from __future__ import annotations

import math
from typing import Any

from chipbench.core import text


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


def summary_rows(doc: dict[str, Any]) -> list[list[str]]:
    """One row per benchmark (and per error) for the terminal or Markdown table."""
    rows = []
    for b in doc["benchmarks"]:
        m = b["extra_info"]["metrics"]
        st = b["stats"]
        lo, hi = st.get("median_ci95") or [None, None]
        half = (hi - lo) / 2 / st["median"] * 100 if lo is not None and hi is not None else None
        # A median known to worse than +-20% is noise, not a figure to read: flagged instead.
        ci = "-" if half is None else (f"{half:.1f}%" if half <= UNSTABLE_CI_PCT else "unstable")
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
        rows.append(
            [
                b["name"],
                _fmt(st["median"] * 1e3, 4),
                ci,
                str(st["rounds"]),
                tput or "-",
                _fmt(m.get("tflops")),
                gbps,
                "-" if share is None else f"{share * 100:.0f}%" + ("!" if share > 1.0 else ""),
                _fmt(m.get("peak_mem_gib")),
            ]
        )
    for e in doc.get("chipbench", {}).get("errors", []):
        rows.append([e["name"], f"ERROR {e['error_type']}: {e['message'][:60]}", "", "", "", "", "", "", ""])
    return rows


def to_markdown(doc: dict[str, Any]) -> str:
    meta = doc.get("chipbench") or {}
    mi = doc.get("machine_info") or {}
    dev = mi.get("device") or {}
    md = text.markdown
    commit = str((doc.get("commit_info") or {}).get("id") or "?")[:12]
    lines = [
        f"### chipbench results: {md(dev.get('name', '?'))} ({md(dev.get('kind', '?'))})",
        "",
        f"machine {md(meta.get('machine_id', '?'))}, commit {md(commit)}, "
        f"torch {md((mi.get('packages') or {}).get('torch', '?'))}, {md(doc.get('datetime', ''))}",
        "",
        *text.markdown_table(SUMMARY_COLUMNS, summary_rows(doc)),
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


def headline(doc: dict[str, Any]) -> list[list[str]]:
    """One row per whole-step benchmark: throughput, p99 latency, compute, share of the device's limits
    (which ceiling, measured when), peak memory; in human units."""
    ceil = (doc.get("chipbench") or {}).get("ceilings") or {}
    when = str(ceil.get("measured_at") or "")[:10]
    rows = []
    for group in HEADLINE_GROUPS:
        for b in doc["benchmarks"]:
            if b.get("group") != group:
                continue
            m = b["extra_info"]["metrics"]
            dtype = b["extra_info"].get("dtype") or ""
            tput = (
                human(m["gbps"] * 1e9, "B/s") if group in ("dlrm.embedding", "calib.copy") and "gbps" in m
                else human(m["tokens_per_s"], "tokens/s") if "tokens_per_s" in m
                else human(m["samples_per_s"], "samples/s") if "samples_per_s" in m
                else human(m["gbps"] * 1e9, "B/s") if "gbps" in m else "-"
            )  # fmt: skip
            compute = human(m["tflops"] * 1e12, "FLOP/s") if "tflops" in m else "-"
            if "mfu" in m:
                limit = f"MFU {m['mfu'] * 100:.0f}% ({dtype} peak)"
            elif "share_of_ceiling_flops" in m:
                limit = f"{m['share_of_ceiling_flops'] * 100:.0f}% of the {dtype} matmul ceiling ({when})"
            elif "share_of_ceiling_bw" in m:
                limit = f"{m['share_of_ceiling_bw'] * 100:.0f}% of the copy bandwidth ceiling ({when})"
            else:
                limit = "no ceiling: run `chipbench calibrate`"
            mem = m.get("peak_mem_gib")
            rows.append([
                b["name"], tput, f"{m['step_ms_p99']:.3g} ms" if "step_ms_p99" in m else "-", compute, limit,
                f"{mem:.3g} GiB" if mem is not None else "-",
            ])  # fmt: skip
    return rows


HEADLINE_COLUMNS = ("benchmark", "throughput", "p99 step", "compute", "of the device's limits", "peak memory")


def roofline_lines(doc: dict[str, Any]) -> list[str]:
    """One compact line per whole step with a roofline breakdown: its share of the floor, whether its
    parts add up to it, and the part that holds it back most (time above its own floor)."""
    out = []
    for b in doc["benchmarks"]:
        r = b["extra_info"].get("roofline")
        if not isinstance(r, dict) or not isinstance(r.get("parts"), dict) or not r["parts"]:
            continue
        worst = r["parts"].get(r.get("holds_back"), {})
        cover = "" if r.get("covered") else f" (the parts' pass took {r['parts_cover']:.2f}x the step)"
        out.append(
            f"roofline {b['name']}: {r['share_of_roofline'] * 100:.0f}% of roofline speed "
            f"(floor {r['floor_ms']:.3g} ms, step {r['step_ms']:.3g} ms){cover}; held back most by {r.get('holds_back')} "
            f"({worst.get('bound', '?')}-bound, {worst.get('ms', 0):.3g} ms against a {worst.get('floor_ms', 0):.3g} ms floor)"
        )
    return out


def _seconds(v: Any) -> float | None:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    try:
        f = float(v)  # an integer past float's range raises
    except OverflowError:
        return None
    return f if math.isfinite(f) and f >= 0 else None


def time_line(doc: dict[str, Any]) -> str | None:
    """Where a run's wall time went: each case's set-up, its timed steps (first step, warm-up and rounds)
    and its parts pass, and the rest (start, imports, workers, writing). None for a document without
    these figures (files from before they were recorded)."""
    spent = {"setup_s": 0.0, "total_s": 0.0, "after_s": 0.0}
    seen = False
    benchmarks = doc.get("benchmarks")
    for b in benchmarks if isinstance(benchmarks, list) else []:
        info = b.get("extra_info") if isinstance(b, dict) else None
        m = info.get("measurement") if isinstance(info, dict) else None
        extra = m.get("extra") if isinstance(m, dict) else None
        if not isinstance(extra, dict):
            continue
        for key in spent:
            v = _seconds(extra.get(key))
            if v is not None:
                spent[key] += v
                seen = seen or key == "setup_s"
    if not seen:
        return None
    parts = (
        f"set-up {spent['setup_s']:.0f} s, timed steps {spent['total_s']:.0f} s, "
        f"parts passes {spent['after_s']:.0f} s"
    )
    run = doc.get("chipbench")
    wall = _seconds(run.get("wall_s")) if isinstance(run, dict) else None
    if wall is None:
        return f"time: {parts}"
    rest = max(0.0, wall - sum(spent.values()))
    return f"time: {wall:.0f} s from start to save; {parts}, the rest {rest:.0f} s"
