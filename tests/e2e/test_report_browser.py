"""A real browser opens the report from disk with the network off: every plot draws, no script error
reaches the console, and a screenshot is not blank. Headless Chromium (Debian's `chromium`; `.ci/run`
installs it); without it the test skips, except under CI, where it fails."""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import pytest

from chipbench.report import assemble, page, summary
from tests.browser import chromium as _chromium
from tests.browser import find_browser as _browser
from tests.browser import png_ink as _png_ink
from tests.report_docs import bench, doc, write

A, B, C = "cpu-test-a-2c-avx2", "cpu-test-b-4c-avx512", "cpu-test-c-8c-avx512"


def _rich_results(root: Path) -> Path:
    """Three machines with every kind of figure: speed-ups in three families (B's differ case by case, so
    their order means something), rooflines, scaling, collectives, latency, energy and price; C shares
    only two cases with the baseline A, so its headline carries the caution."""
    for mid, scale in ((A, 1.0), (B, 0.5)):
        benches = [
            bench("dlrm.train_step", {"preset": "a", "dtype": "fp32"}, median_s=2e-3 * scale, flops=1e8, nbytes=1e7,
                  metrics={"samples_per_s": 1e5 / scale, "samples_per_joule": 50 / scale, "samples_per_dollar": 1e8 / scale,
                           "share_of_ceiling_flops": 0.4, "share_of_ceiling_bw": 0.1}),
            bench("dlrm.train_step", {"preset": "a", "dtype": "fp32"}, world=2, median_s=2.2e-3 * scale,
                  metrics={"samples_per_s": 1.8e5 / scale}),
            bench("calib.matmul", {"dtype": "fp32"}, median_s=1e-3 * scale, flops=4e8, nbytes=4e6),
            *(bench("dlrm.inference", {"preset": "a", "batch_size": bs}, median_s=bs * 1e-6 * scale,
                    metrics={"samples_per_s": bs / (bs * 1e-6 * scale)}) for bs in (64, 512, 4096)),
            *(bench("comm.all_reduce", {"size_mib": s}, world=2, nbytes=s * 2**20, bytes_convention="collective algbw",
                    metrics={"gbps_busbw": 5.0 * s / (s + 4)}) for s in (1, 16, 256)),
            # B at 4x, 1.8x, 1.2x, 0.87x, ... of A on these: an order that means something.
            *(bench(name, {"preset": "a", "n": k}, median_s=1e-3 * (1.0 if mid == A else 0.25 + 0.3 * k)) for k, name in
              enumerate(("dlrm.mlp", "hstu.attention", "dlrm.embedding", "hstu.train_step", "llama.rope",
                         "llama.forward", "dlrm.interaction", "llama.gemm"))),
        ]  # fmt: skip
        write(root / mid / "1.json", doc(mid, benches))
    write(root / C / "1.json", doc(C, [bench("calib.matmul", {"dtype": "fp32"}, median_s=0.8e-3),
                                       bench("dlrm.mlp", {"preset": "a", "n": 0}, median_s=0.7e-3)]))  # fmt: skip
    return root


def _labels(dom: str, tick: str) -> list[str]:
    """The speed-up plot's y labels as drawn, top to bottom: `ytick` the cases, `ytick2` their families."""
    svg = dom.split('id="fig-speedup"', 1)[1].split("</svg>", 1)[0]
    pat = rf'class="{tick}"><text[^>]*?data-unformatted="([^"]*)"[^>]*?transform="translate\(0,\s*([\d.]+)\)'
    return [name for name, _y in sorted(re.findall(pat, svg), key=lambda t: float(t[1]))]


def test_report_renders_in_a_browser_offline(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("no Chromium on a CI machine: .ci/run installs Debian's chromium; run it as root")
        pytest.skip("no Chromium here (apt-get install chromium, as root, to run this test)")
    rep = assemble.build([_rich_results(tmp_path / "results")], baseline=A)
    html = tmp_path / "report.html"
    html.write_text(page.to_html(rep))
    url = html.resolve().as_uri()

    shot = tmp_path / "shot.png"  # the same launch draws the page once for both (each launch: seconds)
    dom = _chromium(browser, tmp_path, "--window-size=1400,1600", "--dump-dom", f"--screenshot={shot}", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    status = dom.stdout.split('id="render-status"', 1)[1].split(">", 1)[0]
    figures = int(status.split('data-figures="')[1].split('"')[0])
    assert (
        figures == 8
    )  # speed-up, 2 rooflines (C counts no work), scaling, collectives, latency, energy, price
    assert f'data-divs="{figures}"' in status and f'data-drawn="{figures}"' in status, status
    assert 'data-errors="0"' in status, status
    assert 0 < int(status.split('data-page-width="')[1].split('"')[0]) <= 1400, status  # nothing wider
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console  # no script error, no warning

    # Under the headline, a line per family, the buyer's first; C's two matched cases carry the caution.
    lines = re.findall(
        r'<div class="standing" data-machine="([^"]+)">|class="family-line" data-family="(\w+)"', dom.stdout
    )
    assert lines == [(B, ""), *(("", f) for f in ("dlrm", "hstu", "llama", "calib", "comm")), (C, ""),
                     ("", "dlrm"), ("", "calib")]  # fmt: skip
    cautions = re.findall(r'<div class="caution" role="alert">(.*?)</div>', dom.stdout)
    assert len(cautions) == 2 and C in cautions[1] and "rests on 2 matched cases, fewer than 5" in cautions[1]
    assert "generative recommenders (HSTU) (2)" in cautions[0]  # B's headline rests on 17, its HSTU line on 2
    # The bars as drawn: grouped by family, fastest first within each (by B, the only machine on most).
    order = [family for family in summary.FAMILIES if any(r.family == family for r in rep.rows)]
    rows = [r for r in rep.rows if B in r.cells and r.cells[B].speedup and len(r.cells) > 1]
    expect = sorted(rows, key=lambda r: (order.index(r.family), -(r.cells[B].speedup or 0)))
    assert _labels(dom.stdout, "ytick") == [r.name for r in expect]
    assert _labels(dom.stdout, "ytick2") == [summary.family_title(f) for f in order]

    assert shot.exists(), dom.stderr[-2000:]
    assert _png_ink(shot) > 0.02  # text and plots, not a blank page


def test_png_ink_tells_blank_from_drawn(tmp_path: Path) -> None:
    def png(rows: list[bytes], width: int) -> bytes:
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        ihdr = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
        data = zlib.compress(b"".join(b"\x00" + r for r in rows))
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")

    blank, drawn = tmp_path / "blank.png", tmp_path / "drawn.png"
    blank.write_bytes(png([b"\xff" * 300] * 100, 100))
    drawn.write_bytes(png([bytes((i * 37 + j) % 250 + 1 for j in range(300)) for i in range(100)], 100))
    assert _png_ink(blank) == 0.0 and _png_ink(drawn) > 0.5
