"""The history dashboard as static files: an index of change points, a page per machine with a panel per
case, and two shared scripts (plotly.js once for every page, and the dashboard's own drawing code).

A page carries its points as one JSON block that the shared script draws with plotly: building a plotly
figure per panel in Python would cost tens of milliseconds each, thousands over a fleet. Jinja2 escapes
every value in the HTML; every string the plots show (plotly renders a subset of HTML in hover labels)
is HTML-escaped here (`figures.esc`), and the JSON block cannot close its script element (`<` is written
as `\\u003c`). No page runs an inline script: the policy allows scripts from the page's own folder only.
"""

from __future__ import annotations

import json
import math
from typing import Any

import jinja2
import plotly
import plotly.offline

from chipbench.report.dashboard import ChangePoint, Index, MachineHistory
from chipbench.report.figures import esc

PLOTLY_JS = "plotly.min.js"
DASHBOARD_JS = "dashboard.js"
INDEX = "index.html"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("chipbench.report", "templates"),
        autoescape=jinja2.select_autoescape(("html", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def assets() -> dict[str, str]:
    """The shared scripts, by file name: written once beside the pages."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("chipbench.report", "templates"), autoescape=False)
    return {
        PLOTLY_JS: plotly.offline.get_plotlyjs(),
        DASHBOARD_JS: env.get_template("dashboard.js.j2").render(),
    }


def _g(v: float, digits: int = 4) -> float:
    """A number as the page needs it (4 significant digits keep a 300-commit page small)."""
    return float(f"{v:.{digits}g}") if math.isfinite(v) else 0.0


def ratio_text(c: ChangePoint) -> str:
    ci = f" (95% CI {c.ratio_ci[0]:.3g}-{c.ratio_ci[1]:.3g})" if c.ratio_ci else ""
    return f"{c.ratio:.3g}x{ci}"


def _panel_data(h: MachineHistory) -> list[dict[str, Any]]:
    out = []
    for p in h.panels:
        hashes, disturbed = [], []
        for k, pt in enumerate(p.points):
            if k and pt.version_hash != p.points[k - 1].version_hash:
                hashes.append([k, esc(p.points[k - 1].version_hash[:12]), esc(pt.version_hash[:12])])
            if pt.disturbed:
                disturbed.append([k, esc(pt.disturbed[:300])])
        out.append(
            {
                "id": p.anchor,
                "r": [pt.run for pt in p.points],
                "y": [_g(pt.median_s * 1e3) for pt in p.points],
                "lo": [_g(pt.ci_s[0] * 1e3) for pt in p.points],
                "hi": [_g(pt.ci_s[1] * 1e3) for pt in p.points],
                "d": disturbed,
                "h": hashes,
                "cp": [
                    [esc(c.when), c.status, esc(f"{ratio_text(c)} {c.status}"), c.id] for c in p.change_points
                ],
            }
        )
    return out


def data_json(h: MachineHistory) -> str:
    """The page's points as JSON that is safe inside a script element."""
    data = {
        "machine": esc(h.machine),
        "runs": {"t": [r.when for r in h.runs], "c": [esc(r.commit[:12]) for r in h.runs]},
        "panels": _panel_data(h),
    }
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def machine_html(h: MachineHistory, title: str) -> str:
    return (
        _environment()
        .get_template("dashboard_machine.html.j2")
        .render(
            h=h,
            title=title,
            data=data_json(h),
            index=INDEX,
            plotly_js=PLOTLY_JS,
            dashboard_js=DASHBOARD_JS,
            ratio_text=ratio_text,
            plotly_version=plotly.__version__,
        )
    )


def index_html(index: Index) -> str:
    return (
        _environment()
        .get_template("dashboard_index.html.j2")
        .render(
            index=index, ratio_text=ratio_text, dashboard_js=DASHBOARD_JS, plotly_version=plotly.__version__
        )
    )
