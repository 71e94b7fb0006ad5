"""Energy and cost end to end: bad energy and price input refused before running, the energy phase and the
soak against a powercap tree whose counters move (`CHIPBENCH_POWERCAP_ROOT`), and this machine's own path."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from chipbench.cli import main
from chipbench.platform import energy
from tests.helpers import powercap_zone, run_cli


def test_bad_energy_and_price_input_is_one_line_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[machine\n")
    out = tmp_path / "r.json"
    assert main(["run", "selftest.busy", "--price-file", str(bad), "--output", str(out)]) == 2
    assert "not valid TOML" in capsys.readouterr().err and not out.exists()
    assert main(["run", "selftest.busy", "--price-per-hour", "0", "--output", str(out)]) == 2
    assert "--price-per-hour must be" in capsys.readouterr().err
    monkeypatch.setenv(energy.POWERCAP_ENV, str(tmp_path / "absent"))
    p = run_cli("run", "selftest.busy", "--energy", "on", "--output", str(out))
    assert p.returncode == 2 and "--energy on: no RAPL" in p.stderr and not out.exists()


def test_energy_phase_end_to_end_on_a_moving_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 40 W package: a thread advances the counter as time passes, as the hardware would.
    root = tmp_path / "powercap"
    zone = powercap_zone(root, "intel-rapl:0", "package-0", 0)
    stop = threading.Event()

    def tick() -> None:
        t0 = time.perf_counter()
        while not stop.wait(0.005):  # whole values only, as sysfs gives them
            (zone / "energy_uj.tmp").write_text(str(int((time.perf_counter() - t0) * 40e6)))
            os.replace(zone / "energy_uj.tmp", zone / "energy_uj")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        out = tmp_path / "r.json"
        p = run_cli("run", "dlrm.mlp", "--suite", "smoke", "--energy", "on", "--price-per-hour", "1",
                    "--price-per-kwh", "0.5", "--output", str(out), "--time-budget", "0.2",
                    env={energy.POWERCAP_ENV: str(root)})  # fmt: skip
    finally:
        stop.set()
        thread.join()
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    (b,) = doc["benchmarks"]
    e = b["extra_info"]["measurement"]["extra"]["energy"]
    assert e["scope"] == "cpu_package" and e["method"] == "counter" and e["window_s"] >= 1.0
    assert e["avg_power_w"] == pytest.approx(40.0, rel=0.05)
    assert e["idle_power_w"] == pytest.approx(40.0, rel=0.1)
    m = b["extra_info"]["metrics"]
    # The known power x the window's step time / the batch, within 5%.
    assert m["joules_per_sample"] == pytest.approx(40.0 * (e["window_s"] / e["steps"]) / 256, rel=0.05)
    assert m["samples_per_dollar"] > 0 and m["energy_usd_per_million_samples"] > 0
    assert doc["chipbench"]["price"]["per_hour_usd"] == 1.0


def test_soak_runs_the_step_first_and_records_telemetry(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = run_cli("run", "selftest.busy", "--soak", "0.5", "--energy", "off", "--time-budget", "0.05",
                "--output", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    (b,) = json.loads(out.read_text())["benchmarks"]
    soak = b["extra_info"]["measurement"]["extra"]["soak"]
    assert soak["seconds"] >= 0.5 and soak["steps"] > 10
    assert set(soak) >= {"before", "after", "after_timing"}
    if Path("/proc/cpuinfo").exists():
        assert soak["after"]["clock_mhz_mean"] > 0
    assert "energy" not in b["extra_info"]["measurement"]["extra"]  # --energy off: no phase


def test_this_vm_runs_the_real_path_and_says_why_there_is_no_energy(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = run_cli("run", "dlrm.mlp", "--suite", "smoke", "--price-per-hour", "0.05", "--time-budget", "0.1",
                "--output", str(out), env={energy.POWERCAP_ENV: str(tmp_path / "no-powercap")})  # fmt: skip
    assert p.returncode == 0, p.stderr
    (b,) = json.loads(out.read_text())["benchmarks"]
    assert "no RAPL" in b["extra_info"]["unavailable"]["joules_per_sample"]
    assert "joules_per_sample" not in b["extra_info"]["metrics"]
    m = b["extra_info"]["metrics"]
    assert m["samples_per_dollar"] == pytest.approx(m["samples_per_s"] * 3600 / 0.05)
