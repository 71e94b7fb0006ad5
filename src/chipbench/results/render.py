"""How a results document is shown: summary rows for the terminal table and Markdown."""

from __future__ import annotations

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
        "| " + " | ".join(SUMMARY_COLUMNS) + " |",
        "|" + "|".join("---" for _ in SUMMARY_COLUMNS) + "|",
    ]
    for row in summary_rows(doc):
        lines.append("| " + " | ".join(text.markdown(c) for c in row) + " |")
    return "\n".join(lines) + "\n"
