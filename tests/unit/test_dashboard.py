"""The dashboard's model and pages, from typed inputs (no store, no browser): order, escaping, names."""

from __future__ import annotations

import json

import pytest

from chipbench.report import dashboard_page
from chipbench.report.dashboard import ChangePoint, Index, PointRow, Run, machine_history, machine_line, slug
from tests.dashboard_data import HOSTILE_MACHINE, STEP_CASE, case, history


def _cp(i: int, when: str, status: str = "open", direction: str = "slower") -> ChangePoint:
    return ChangePoint(i, "m", "c", 1.1, None, f"c{i}", f"p{i}", when, status=status, direction=direction)


def test_index_lists_open_changes_newest_first_and_the_rest_apart() -> None:
    cps = (
        _cp(1, "2026-01-02"), _cp(2, "2026-03-01"), _cp(3, "2026-02-01", "acknowledged"),
        _cp(4, "2026-04-01", "fixed"), _cp(5, "2026-05-01", direction="host drift"),
    )  # fmt: skip
    idx = Index("t", cps, ())
    assert [c.id for c in idx.open] == [2, 1]
    assert [c.id for c in idx.looked_at] == [4, 3]
    assert [c.id for c in idx.host_drift] == [5]  # a move of the host, never a regression
    html = dashboard_page.index_html(idx)
    assert html.index('data-id="2"') < html.index('data-id="1"') < html.index('id="looked-at"')


def test_status_is_checked() -> None:
    with pytest.raises(ValueError, match="status 'closed'"):
        _cp(1, "2026", status="closed")


def test_slugs_are_safe_and_distinct() -> None:
    names = ["../../etc/passwd", "a/b", "a_b", "a b", "<x>", ""]
    slugs = [slug(n, "machine") for n in names]
    assert len(set(slugs)) == len(names)
    assert all(s.replace("-", "").replace("_", "").replace(".", "").isalnum() for s in slugs)


def test_machine_history_keeps_the_given_order_and_drops_unknown_runs() -> None:
    runs = [Run(9, "b", "2026-01-02"), Run(3, "a", "2026-01-01")]
    rows = [
        PointRow(3, "x", 2e-3, None, None, "h", None),
        PointRow(9, "x", 1e-3, 0.9e-3, 1.1e-3, "h", "busy"),
        PointRow(4, "x", 1e-3, None, None, "h", None),  # a run not shown
        PointRow(9, "y", float("nan"), None, None, "h", None),  # no median
    ]
    h = machine_history("m", runs, rows)
    assert [r.run_id for r in h.runs] == [9, 3]
    (p,) = h.panels
    assert [(pt.run, pt.median_s, pt.ci_s, pt.disturbed) for pt in p.points] == [
        (0, 1e-3, (0.9e-3, 1.1e-3), "busy"), (1, 2e-3, (2e-3, 2e-3), ""),
    ]  # fmt: skip
    assert machine_line(h).last_commit == "a"


def test_page_data_cannot_close_its_script_and_marks_what_changed() -> None:
    h = history(60, 5)
    text = dashboard_page.data_json(h)
    assert "<" not in text and ">" not in text and "&" not in text.replace("\\u0026", "")
    data = json.loads(text)
    assert data["machine"] == "cpu-&lt;img src=x onerror=&quot;alert(1)&quot;&gt;-2c"  # plotly renders HTML
    step = next(p for p in data["panels"] if p["id"] == slug(case(STEP_CASE), "case"))
    assert [k for k, *_ in step["h"]] == [20]  # the version hash changed at run 20
    assert [d[0] for d in step["d"]] == [0, 37]  # disturbed runs are drawn hollow
    assert step["cp"][0][1:3] == ["open", "1.2x (95% CI 1.15-1.25) open"]
    html = dashboard_page.machine_html(h, "t")
    assert HOSTILE_MACHINE not in html and "<script>" not in html.replace('<script src="', "")
    assert "<script>" not in html  # no inline script: the page's policy allows scripts from its folder only


def test_an_interval_for_a_change_point_kept_without_one() -> None:
    from chipbench.report.dashboard_build import with_intervals

    runs = [Run(i, f"c{i}", f"2026-01-{1 + i:02d}") for i in range(12)]
    rows = [
        PointRow(i, "x", (1e-3 if i < 6 else 1.3e-3) * (1 + 0.01 * (i % 3)), None, None, "h", None)
        for i in range(12)
    ]
    kept = ChangePoint(1, "m", "x", 1.3, None, "c6", "c5", "2026-01-07")
    known = ChangePoint(2, "m", "x", 1.3, (1.0, 2.0), "c6", "c5", "2026-01-07")
    unseen = ChangePoint(3, "m", "x", 1.3, None, "c99", "c98", "2026-02-01")  # its commit is not shown
    got, same, none = with_intervals([kept, known, unseen], runs, rows)
    assert got.ratio_ci is not None and 1.2 < got.ratio_ci[0] <= 1.3 <= got.ratio_ci[1] < 1.4
    assert same.ratio_ci == (1.0, 2.0) and none.ratio_ci is None
