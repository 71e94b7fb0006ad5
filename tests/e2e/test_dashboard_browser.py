"""The dashboard in a real browser, from disk, with the network off: a machine page of 300 commits x 60
cases stays under 5 MB and every panel draws with no script error; strings from results files stay text.
Headless Chromium (`.ci/run` installs it); without it the test skips, except under CI, where it fails.
How fast it draws is measured by benchmarks/store_scale.py, not here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chipbench.report import dashboard_page
from chipbench.report.dashboard import Index, machine_line
from tests.browser import chromium, find_browser, png_ink, status
from tests.dashboard_data import HOSTILE_MACHINE, history

MAX_PAGE_BYTES = 5_000_000


def _browser() -> str:
    exe = find_browser()
    if exe is None:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("no Chromium on a CI machine: .ci/run installs Debian's chromium; run it as root")
        pytest.skip("no Chromium here (apt-get install chromium, as root, to run this test)")
    return exe


def test_machine_page_of_300_commits_and_60_cases_draws(tmp_path: Path) -> None:
    exe = _browser()
    h = history(300, 60)
    out = tmp_path / "dash"
    out.mkdir()
    for name, text in dashboard_page.assets().items():
        (out / name).write_text(text)
    page = out / h.page
    page.write_text(dashboard_page.machine_html(h, "fleet"))
    (out / "index.html").write_text(
        dashboard_page.index_html(
            Index("fleet", tuple(c for p in h.panels for c in p.change_points), (machine_line(h),))
        )
    )
    assert page.stat().st_size <= MAX_PAGE_BYTES  # plotly.js is one shared file beside the pages

    shot = tmp_path / "shot.png"  # the same launch draws the page once for both (each launch: seconds)
    dom = chromium(
        exe,
        tmp_path,
        "--window-size=1400,1600",
        "--dump-dom",
        f"--screenshot={shot}",
        page.resolve().as_uri(),
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    got = status(dom.stdout)
    assert got.get("data-panels") == "60" and got.get("data-drawn") == "60", got
    assert got.get("data-errors") == "0", got
    assert 0 < int(got["data-page-width"]) <= 1400, got  # nothing wider than the window
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    # Names from results files are text: no element they spell was made.
    assert "<img" not in dom.stdout and "<b>bold</b>" not in dom.stdout and "<i>3</i>" not in dom.stdout
    assert "cpu-&lt;img src=x onerror=" in dom.stdout
    # Change points and version-hash changes are drawn on their panels (plotly's shapes and notes).
    assert dom.stdout.count('class="shape-group"') >= 60 and "1.2x (95% CI 1.15-1.25) open" in dom.stdout

    index = chromium(exe, tmp_path, "--dump-dom", (out / "index.html").resolve().as_uri())
    assert index.returncode == 0
    assert f'href="{h.page}#' in index.stdout and 'data-id="7"' in index.stdout  # the open one, linked
    assert "&lt;u&gt;host&lt;/u&gt;" in index.stdout  # the invalid one's note, listed apart, as text
    assert HOSTILE_MACHINE not in index.stdout

    assert shot.exists(), dom.stderr[-2000:]
    assert png_ink(shot) > 0.02  # text and plots, not a blank page
