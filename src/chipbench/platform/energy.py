"""Energy counters, read around a window of device work: what the hardware can tell, never a guess.

Sources, the first that the device has:
- NVIDIA GPUs: NVML's total-energy counter (Volta and newer, millijoules) through `nvidia-ml-py`; older
  GPUs: NVML's power reading, polled.
- AMD GPUs: amdsmi's energy counter (its unit from the counter's resolution), checked against the board's
  power at the start (the counter is known to be wrong on some parts); else amdsmi's power, polled.
- CPUs: Linux powercap RAPL (`/sys/class/powercap`, or `CHIPBENCH_POWERCAP_ROOT`): every package zone and
  every DRAM zone, never a zone inside a counted one (core and uncore are parts of their package); a
  counter that wrapped between the reads is corrected with its `max_energy_range_uj`.
- Intel GPUs (XPU): no energy counter is reachable from Python (Level Zero Sysman has no maintained
  binding): unavailable, and said so.

Why not zeus 0.16, which covers NVML, amdsmi and RAPL: it installs pandas, scikit-learn, pydantic, httpx and
the `amdsmi` wheel (which needs ROCm's library at run time) on every machine, and reads a fixed /sys path;
this layer is the three readers chipbench needs, over the vendors' own bindings, imported only where used.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

POWERCAP_ENV = "CHIPBENCH_POWERCAP_ROOT"
POLL_S = 0.02
"""Power polling period where no counter exists."""
GPU_COUNTER_PERIOD_S = 0.1
"""GPU energy counters update about every 100 ms: a window is at least 10 of those."""
RAPL_PERIOD_S = 0.001


class Source(Protocol):
    scope: str
    """What is measured: gpu, cpu_package+dram, ..."""
    method: str
    """counter or polled."""
    update_period_s: float

    def joules(self) -> float:
        """Energy so far (a counter: monotonic between two reads; polled: integrated power)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Unavailable:
    why: str


# ---------------------------------------------------------------- RAPL


def powercap_root() -> Path:
    return Path(os.environ.get(POWERCAP_ENV) or "/sys/class/powercap")


@dataclass(frozen=True)
class RaplZone:
    path: Path
    name: str
    max_uj: int


def rapl_zones(root: Path) -> list[RaplZone]:
    """Package zones and DRAM zones, none inside another counted zone."""
    zones = []
    for d in sorted(root.glob("intel-rapl:*")):
        name_file, energy = d / "name", d / "energy_uj"
        if not name_file.is_file() or not energy.is_file():
            continue
        name = name_file.read_text().strip()
        depth = d.name.count(":")  # intel-rapl:0 is a package, intel-rapl:0:1 a part of it
        if (depth == 1 and name.startswith("package")) or name == "dram":
            try:
                max_uj = int((d / "max_energy_range_uj").read_text())
            except (OSError, ValueError):
                max_uj = 0
            zones.append(RaplZone(d, name, max_uj))
    return zones


class Rapl:
    method = "counter"
    update_period_s = RAPL_PERIOD_S

    def __init__(self, zones: list[RaplZone]) -> None:
        self.zones = zones
        self.scope = "+".join(
            sorted({"cpu_package" if z.name.startswith("package") else "dram" for z in zones})
        )
        self._last = [self._read(z) for z in zones]
        self._total_uj = 0

    @staticmethod
    def _read(z: RaplZone) -> int:
        return int((z.path / "energy_uj").read_text())

    def joules(self) -> float:
        for i, z in enumerate(self.zones):
            now = self._read(z)
            delta = now - self._last[i]
            if delta < 0:  # the counter wrapped past max_energy_range_uj
                delta += z.max_uj
            self._total_uj += max(0, delta)
            self._last[i] = now
        return self._total_uj / 1e6

    def close(self) -> None:
        pass


def rapl() -> Rapl | Unavailable:
    root = powercap_root()
    if not root.is_dir():
        return Unavailable(f"no RAPL: {root} absent")
    try:
        zones = rapl_zones(root)
        if not zones:
            return Unavailable(f"no RAPL package or DRAM zone under {root}")
        return Rapl(zones)
    except PermissionError:
        return Unavailable(
            f"RAPL counters under {root} are not readable by this user (root only since Linux 5.10)"
        )
    except (OSError, ValueError) as exc:
        return Unavailable(f"RAPL under {root} unreadable: {exc}")


# ---------------------------------------------------------------- polled power


class Polled:
    """Integrates a power reading (watts) polled on a thread."""

    method = "polled"

    def __init__(self, scope: str, watts: Callable[[], float], period_s: float = POLL_S) -> None:
        self.scope = scope
        self.update_period_s = period_s
        self._watts, self._period = watts, period_s
        self._j = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._t = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._sample()

    def _sample(self) -> None:
        w = self._watts()
        with self._lock:
            now = time.perf_counter()
            self._j += w * (now - self._t)
            self._t = now

    def joules(self) -> float:
        self._sample()
        with self._lock:
            return self._j

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


# ---------------------------------------------------------------- NVIDIA, AMD


def polled_gpu(library: str, watts: Callable[[], float]) -> Polled | Unavailable:
    """A GPU without a usable energy counter: its power polled, when the library reads it at all."""
    try:
        watts()
    except Exception as exc:  # the vendor library's own error types
        return Unavailable(f"{library} reports neither energy nor power here: {exc}")
    return Polled("gpu", watts)


class GpuCounter:
    """A vendor library's energy counter over some GPUs: `joules` is each kind's own reading."""

    method = "counter"
    update_period_s = GPU_COUNTER_PERIOD_S
    scope = "gpu"

    def __init__(self, library: Any, handles: list[Any]) -> None:
        self._lib, self._h = library, handles

    def close(self) -> None:
        pass


class Nvml(GpuCounter):
    def joules(self) -> float:
        return sum(self._lib.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._h) / 1e3  # mJ


def physical_id(kind: str, index: int) -> int | str:
    """The device a vendor library calls torch's device `index`: NVML numbers GPUs in PCI order and
    ignores CUDA_VISIBLE_DEVICES, so an NVIDIA GPU is named by its UUID; others by their index."""
    if kind != "cuda":
        return index
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # an old torch without the property: the index, as NVML's order may agree
        return index
    return uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"


def nvml_handle(pynvml: Any, ident: int | str) -> Any:
    """NVML's handle of a device as `physical_id` names it (a UUID, or an index)."""
    if isinstance(ident, str):
        return pynvml.nvmlDeviceGetHandleByUUID(ident)
    return pynvml.nvmlDeviceGetHandleByIndex(ident)


def nvidia(indices: list[int | str]) -> Source | Unavailable:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return Unavailable("nvidia-ml-py is not installed (make setup installs it on CUDA machines)")
    try:
        pynvml.nvmlInit()
        handles = [nvml_handle(pynvml, i) for i in indices]
    except Exception as exc:  # NVMLError subclasses per cause
        return Unavailable(f"NVML unavailable: {exc}")
    try:
        for h in handles:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        return Nvml(pynvml, handles)
    except Exception:  # pre-Volta: no energy counter; the power reading is
        return polled_gpu("NVML", lambda: sum(pynvml.nvmlDeviceGetPowerUsage(h) for h in handles) / 1e3)


class AmdCounter(GpuCounter):
    def joules(self) -> float:
        total = 0.0
        for h in self._h:
            e = self._lib.amdsmi_get_energy_count(h)
            total += e["energy_accumulator"] * e["counter_resolution"] / 1e6  # resolution in microjoules
        return total


def amd(indices: list[int | str]) -> Source | Unavailable:
    try:
        import amdsmi
    except ImportError:
        return Unavailable("amdsmi is not importable (it ships with ROCm)")
    try:
        amdsmi.amdsmi_init()
        # amdsmi's order is its own (it ignores HIP_VISIBLE_DEVICES): on a box with some GPUs hidden
        # the index can name another one; said in the README.
        handles = [amdsmi.amdsmi_get_processor_handles()[int(i)] for i in indices]
    except Exception as exc:
        return Unavailable(f"amdsmi unavailable: {exc}")

    def watts() -> float:
        return float(sum(amdsmi.amdsmi_get_power_info(h)["average_socket_power"] for h in handles))

    try:
        counter = AmdCounter(amdsmi, handles)
        # Sanity check: the counter over 0.3 s against the board's power (wrong units on some parts).
        j0, t0 = counter.joules(), time.perf_counter()
        time.sleep(0.3)
        implied = (counter.joules() - j0) / (time.perf_counter() - t0)
        power = watts()
        if power > 0 and not 0.5 * power <= implied <= 2.0 * power:
            return Polled("gpu", watts)
        return counter
    except Exception:
        return polled_gpu("amdsmi", watts)


def source_for(kind: str, device_indices: list[int | str]) -> Source | Unavailable:
    """The energy source of a device kind (its devices `device_indices`)."""
    if kind == "cuda":
        return nvidia(device_indices)
    if kind == "rocm":
        return amd(device_indices)
    if kind == "cpu":
        return rapl()
    if kind == "xpu":
        return Unavailable(
            "no XPU energy counter is reachable from Python (Level Zero Sysman has no binding)"
        )
    return Unavailable(f"no energy counter for {kind} devices")
