"""What a newcomer meets, end to end: a busy machine cannot lower the ceilings `calibrate` stores."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chipbench.cli import main


def test_calibrate_on_a_busy_machine_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A competitor on every core: the kernel's run-queue evidence (not the load average, which lags and
    # counts our own previous run) says the ceilings would be too low.
    import multiprocessing as mp
    import time

    from tests.helpers import spin as _spin

    ctx = mp.get_context("spawn")
    spinners = [ctx.Process(target=_spin, args=(time.time() + 120,)) for _ in range(os.cpu_count() or 2)]
    for p in spinners:
        p.start()
    cache = tmp_path / "cache"
    args = ["calibrate", "--size", "128", "--copy-mib", "4", "--time-budget", "0.2", "--cache-dir", str(cache),
            "--output", str(tmp_path / "c.json")]  # fmt: skip
    try:
        code = main(args)
    finally:
        for p in spinners:
            p.kill()
            p.join()
    assert code == 1
    err = capsys.readouterr().err
    assert "not stored: the machine was busy (its threads waited" in err
    assert not list(cache.rglob("*.json"))
    json.loads((tmp_path / "c.json").read_text())  # the measurements themselves are kept
