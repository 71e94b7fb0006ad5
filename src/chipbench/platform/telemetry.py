"""Clocks, temperature and throttling as the platform reports them (for `--soak`: burst against sustained).
Whatever cannot be read is absent; nothing is estimated."""

from __future__ import annotations

import re
from pathlib import Path

from chipbench.core.wire import Info
from chipbench.platform import energy

CPUINFO = Path("/proc/cpuinfo")
THERMAL = Path("/sys/class/thermal")


def _cpu() -> Info:
    out: Info = {}
    try:
        mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([0-9.]+)", CPUINFO.read_text(), re.M)]
        if mhz:
            out["clock_mhz_mean"] = sum(mhz) / len(mhz)
    except OSError:
        pass
    temps = []
    for z in sorted(THERMAL.glob("thermal_zone*")):
        try:
            temps.append(int((z / "temp").read_text()) / 1000.0)
        except (OSError, ValueError):
            continue
    if temps:
        out["temperature_c_max"] = max(temps)
    return out


def _nvidia(ident: int | str) -> Info:
    try:
        import pynvml

        pynvml.nvmlInit()
        h = energy.nvml_handle(pynvml, ident)
    except Exception as exc:  # not installed, no driver
        return {"unavailable": f"NVML: {exc}"}
    out: Info = {}
    reads = {
        "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
        "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
        "power_w": lambda: pynvml.nvmlDeviceGetPowerUsage(h) / 1e3,
        "throttle_reasons": lambda: int(pynvml.nvmlDeviceGetCurrentClocksEventReasons(h)),
    }
    for key, get in reads.items():
        try:  # an older NVML lacks some calls: the others still count
            out[key] = get()
        except Exception:
            continue
    return out


def read(kind: str, ident: int | str = 0) -> Info:
    """`ident`: the device as energy.physical_id names it."""
    if kind == "cuda":
        return {**_cpu(), **_nvidia(ident)}
    return _cpu()
