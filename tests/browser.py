"""Headless Chromium for the page tests (the report's, the dashboard's) and the dashboard's benchmark:
find it, open a page from disk with the network off, read what the page says of its own drawing."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path


def find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def offline_prefix() -> list[str]:
    """Run in a network namespace with no interface where the machine allows it; the page's own policy
    (default-src 'none') and a dead proxy keep requests off otherwise."""
    for cmd in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*cmd, "true"], capture_output=True, timeout=10).returncode == 0:
                return cmd
        except (OSError, subprocess.TimeoutExpired):
            pass
    return []


def chromium(browser: str, tmp: Path, *args: str, virtual: bool = True) -> subprocess.CompletedProcess[str]:
    """Chromium headless on `args` (a page's URL last). `virtual`: a virtual time budget, so the page's
    timers (work it defers) run before the DOM is dumped; without it Chromium dumps once the page loads."""
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        f"--user-data-dir={tmp / 'profile'}", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr", "--v=0", *(["--virtual-time-budget=20000"] if virtual else []),
    ]  # fmt: skip
    return subprocess.run(
        [*offline_prefix(), browser, *flags, *args], capture_output=True, text=True, timeout=180
    )


def status(dom: str) -> dict[str, str]:
    """The attributes of the page's `render-status` element as drawn (what its script wrote there)."""
    if 'id="render-status"' not in dom:
        return {}
    tag = dom.split('id="render-status"', 1)[1].split(">", 1)[0]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


def png_ink(path: Path) -> float:
    """Share of pixel bytes that are not white, from the PNG's own bytes (8-bit RGB or RGBA)."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, channels = 8, b"", 0, 4
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        kind, body = raw[pos + 4 : pos + 8], raw[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, _h, _depth, color = struct.unpack(">IIBB", body[:10])
            channels = {2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    data = zlib.decompress(idat)
    stride = width * channels + 1
    # Filtered scanlines: a blank page compresses to rows of filter byte + zero deltas or 0xff bytes.
    pixels = b"".join(data[i + 1 : i + stride] for i in range(0, len(data), stride))
    return sum(1 for b in pixels[::7] if b not in (0, 255)) / max(1, len(pixels[::7]))
