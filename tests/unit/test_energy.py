"""Energy and cost: RAPL zones read without double counting and across a wrap, NVML through its binding,
prices from flags or a file, the metrics derived (the whole phase end to end: tests/e2e/test_energy.py)."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import pytest

from chipbench.core import price
from chipbench.core.contract import Work
from chipbench.core.errors import UsageError
from chipbench.platform import energy
from chipbench.results.metrics import Setting, derive_metrics
from tests.helpers import powercap_zone


def _tree(root: Path) -> Path:
    powercap_zone(root, "intel-rapl:0", "package-0", 1_000)
    powercap_zone(root, "intel-rapl:0:0", "core", 500)  # part of package-0: never counted
    powercap_zone(root, "intel-rapl:0:1", "dram", 100)
    powercap_zone(root, "intel-rapl:1", "package-1", 2_000)
    powercap_zone(root, "intel-rapl:2", "psys", 9_000)  # the whole platform: would double count
    return root


def test_rapl_counts_packages_and_dram_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(energy.POWERCAP_ENV, str(_tree(tmp_path)))
    src = energy.rapl()
    assert isinstance(src, energy.Rapl) and src.scope == "cpu_package+dram"
    assert sorted(z.name for z in src.zones) == ["dram", "package-0", "package-1"]
    assert src.joules() == 0.0
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text(str(1_000 + 3_000_000))  # +3 J
    (tmp_path / "intel-rapl:0:1" / "energy_uj").write_text(str(100 + 1_000_000))  # +1 J
    (tmp_path / "intel-rapl:0:0" / "energy_uj").write_text(str(9_999_999))  # ignored
    assert src.joules() == pytest.approx(4.0)


def test_rapl_counter_wrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    powercap_zone(tmp_path, "intel-rapl:0", "package-0", 990_000, max_uj=1_000_000)
    monkeypatch.setenv(energy.POWERCAP_ENV, str(tmp_path))
    src = energy.rapl()
    assert isinstance(src, energy.Rapl)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("20000")  # wrapped: 10,000 + 20,000 uJ
    assert src.joules() == pytest.approx(0.03)


def test_no_rapl_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(energy.POWERCAP_ENV, str(tmp_path / "absent"))
    got = energy.source_for("cpu", [0])
    assert isinstance(got, energy.Unavailable) and "no RAPL" in got.why and "absent" in got.why
    assert isinstance(energy.source_for("xpu", [0]), energy.Unavailable)


def test_nvml_counter_and_polled_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"counter": True}
    mj = {0: 1000, 1: 7000}

    def total(h: int) -> int:
        if not state["counter"]:
            raise RuntimeError("not supported")  # pre-Volta
        mj[h] += 500  # each read: another 0.5 J on that device
        return mj[h]

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetTotalEnergyConsumption=total, nvmlDeviceGetPowerUsage=lambda h: 250_000,  # mW
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    src = energy.nvidia([0, 1])
    assert isinstance(src, energy.Nvml) and src.method == "counter"
    a = src.joules()
    assert src.joules() - a == pytest.approx(1.0)  # two devices, +0.5 J each
    state["counter"] = False
    polled = energy.nvidia([0])
    assert isinstance(polled, energy.Polled) and polled.method == "polled"
    try:
        j0 = polled.joules()
        time.sleep(0.2)
        assert 250 * 0.15 < polled.joules() - j0 < 250 * 0.4
    finally:
        polled.close()
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert "nvidia-ml-py" in energy.nvidia([0]).why  # type: ignore[union-attr]


def test_energy_and_cost_metrics() -> None:
    work = Work(samples=100, tokens=None)
    st = {"p50": 0.01, "p90": 0.01, "p99": 0.01}
    reading = {"joules_per_step": 2.0, "avg_power_w": 200.0, "idle_power_w": 50.0}
    p = price.Price(per_hour_usd=3.6, per_kwh_usd=0.36)
    m, missing = derive_metrics(work, 0.01, st, Setting("x", None, None, price=p), peak_mem_bytes=None,
                                energy=reading)  # fmt: skip
    assert m["joules_per_sample"] == pytest.approx(0.02) and m["samples_per_joule"] == pytest.approx(50.0)
    assert m["samples_per_s"] == pytest.approx(1e4) and m["samples_per_dollar"] == pytest.approx(1e7)
    # 0.02 J a sample: 2e4 J a million = 0.00556 kWh = $0.002
    assert m["energy_usd_per_million_samples"] == pytest.approx(2e4 / 3.6e6 * 0.36)
    assert m["avg_power_w"] == 200.0 and m["idle_power_w"] == 50.0 and not missing
    # Two ranks: the energy is the job's, a step is both ranks' samples.
    m2, _ = derive_metrics(work, 0.01, st, Setting("x", None, None, world_size=2), peak_mem_bytes=None,
                           energy=reading)  # fmt: skip
    assert m2["joules_per_sample"] == pytest.approx(0.01)
    m3, missing3 = derive_metrics(work, 0.01, st, Setting("x", None, None), peak_mem_bytes=None,
                                  energy={"unavailable": "no RAPL: /x absent"})  # fmt: skip
    assert "joules_per_sample" not in m3 and missing3["joules_per_sample"] == "no RAPL: /x absent"
    assert "no price" in missing3["samples_per_dollar"]


def test_price_file(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text('[machine."m1"]\nprice_per_hour = 2.5\nprice_source = "list"\nprice_date = 2026-11-01\n')
    entries = price.load_file(f)
    got = price.resolve("m1", per_hour=None, per_kwh=0.1, file=f, entries=entries)
    assert got == price.Price(2.5, 0.1, "--price-per-kwh from the command line; the rest: list", "2026-11-01")
    assert price.resolve("m1", per_hour=None, per_kwh=None, file=f, entries=entries) == price.Price(
        2.5, None, "list", "2026-11-01"
    )
    with pytest.raises(UsageError, match=r'no \[machine."m2"\] entry'):
        price.resolve("m2", per_hour=None, per_kwh=None, file=f, entries=entries)
    assert price.resolve("m2", per_hour=None, per_kwh=None, file=None, entries=None) is None
    for bad, message in (
        ('[machine."m"]\nprice_per_hour = -1\n', "must be a finite number"),
        ('[machine."m"]\ncost = 1\n', "unknown key 'cost'"),
        ("price_per_hour = 1\n", "expected only"),
        ("[machine\n", "not valid TOML"),
    ):
        f.write_text(bad)
        with pytest.raises(UsageError, match=message):
            price.load_file(f)


class _FakeSource:
    scope, method, update_period_s = "gpu", "counter", 0.02

    def joules(self) -> float:
        return time.perf_counter() * 100.0  # a 100 W device

    def close(self) -> None:
        pass


class _Host:
    kind = "cpu"

    def synchronize(self) -> None:
        pass


def test_a_short_window_is_extended() -> None:
    from chipbench.measure import energy as window

    # One step was asked (the timed median said it would fill the window); it took 1 ms: the window is
    # extended to the minimum, never read over a few milliseconds.
    got = window.measure_energy(lambda: time.sleep(0.001), _Host(), _FakeSource(), 1)  # type: ignore[arg-type]
    assert got.window_s >= window.MIN_WINDOW_S and got.steps > 100
    assert got.avg_power_w == pytest.approx(100.0, rel=0.01) and got.idle_power_w == pytest.approx(
        100.0, rel=0.01
    )


def test_rapl_without_permission_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    powercap_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    monkeypatch.setenv(energy.POWERCAP_ENV, str(tmp_path))

    def denied(z: energy.RaplZone) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(energy.Rapl, "_read", staticmethod(denied))
    got = energy.rapl()
    assert isinstance(got, energy.Unavailable) and "not readable by this user" in got.why


def test_a_window_unlike_the_timed_steps_is_flagged_with_both_step_times() -> None:
    from dataclasses import replace

    from chipbench.measure import energy as window
    from chipbench.results import document
    from tests.helpers import run_outcome

    # Steps of about 2 ms against a timed median of 1 ms (another job beside the window): flagged.
    slow = window.measure_energy(lambda: time.sleep(0.002), _Host(), _FakeSource(), 1, timed_step_s=1e-3)  # type: ignore[arg-type]
    assert (
        slow.window_step_s > 1.5e-3
        and slow.unlike_timed
        and "slower than the timed median 1 ms" in slow.unlike_timed
    )
    alike = replace(slow, timed_step_s=slow.window_step_s * 1.05)
    assert alike.unlike_timed is None and replace(slow, timed_step_s=None).unlike_timed is None
    recorded = slow.as_dict()
    assert recorded["timed_step_s"] == 1e-3 and recorded["window_step_s"] == slow.window_step_s

    # In the results: the per-sample energy carries the flag; a window like the timed steps carries none.
    run = run_outcome()
    for reading, flagged in ((slow, True), (alike, False)):
        ok = run.outcomes[0]
        extra = {**ok.payload["measurement"]["extra"], "energy": reading.as_dict()}
        payload = {**ok.payload, "measurement": {**ok.payload["measurement"], "extra": extra}}
        one = replace(run, outcomes=[replace(ok, payload=payload)])
        doc = document.build(one, ceilings=None, suite=None, argv=[], commit_info={})
        (b,) = doc["benchmarks"]
        assert "joules_per_sample" in b["extra_info"]["metrics"]
        marked = [f for f in b["extra_info"]["flags"] if "energy window" in f]
        assert bool(marked) == flagged and (not marked or marked[0].startswith("joules_per_sample"))
        assert b["extra_info"]["measurement"]["extra"]["energy"]["timed_step_s"] == reading.timed_step_s
