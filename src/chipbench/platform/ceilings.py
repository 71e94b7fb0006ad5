"""Measured ceilings of a machine (from `chipbench calibrate`): one type that owns its keys, stored per
machine id in the user's cache."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chipbench.core.config import finite_number
from chipbench.core.fileio import MAX_CONFIG_BYTES, atomic_write_json, read_bytes


@dataclass(frozen=True)
class Ceilings:
    """What `chipbench calibrate` measured on one machine: the rates other results are shares of."""

    machine_id: str
    matmul_tflops: dict[str, float] = field(default_factory=dict)
    """Dense matmul TFLOP/s per dtype name (fp32, bf16, fp16)."""
    copy_gbps: float | None = None
    """Device memory bandwidth in GB/s of bytes read + written: the best of calib.copy's kernels (a copy,
    an in-place add, a fused AdamW step where the device has one): the "copy" ceiling."""
    measured_at: str | None = None
    device: str | None = None
    matmul_size: int | None = None
    matmul_sizes: dict[str, int] = field(default_factory=dict)
    """Matmul edge per dtype (emulated bf16 runs at a smaller size)."""
    copy_mib: int | None = None
    torch: str | None = None
    results_file: str | None = None
    load_avg_1m: float | None = None
    """The machine's 1-minute load when calibrating started (a busy machine is refused)."""
    disturbed: str | None = None
    """Why the machine was disturbed while calibrating, when stored anyway (`--allow-busy`): such ceilings
    are low, and the shares of them that results report are marked; None: measured quiet."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Ceilings | None:
        """The ceilings in a stored dict, or None when it is not one (a damaged or foreign file)."""
        if not isinstance(data, dict) or not isinstance(data.get("machine_id"), str):
            return None
        matmul = data.get("matmul_tflops") or {}
        copy = data.get("copy_gbps")
        if not isinstance(matmul, dict) or not all(_rate(v) for v in matmul.values()):
            return None
        if copy is not None and not _rate(copy):
            return None
        sizes = data.get("matmul_sizes") or {}
        if not isinstance(sizes, dict):
            return None
        texts = {k: data.get(k) for k in ("measured_at", "device", "torch", "results_file", "disturbed")}
        if any(v is not None and not isinstance(v, str) for v in texts.values()):
            return None
        load = data.get("load_avg_1m")
        if load is not None and not finite_number(load):
            return None
        ints = {k: data.get(k) for k in ("matmul_size", "copy_mib")}
        if any(v is not None and (not isinstance(v, int) or isinstance(v, bool)) for v in ints.values()):
            return None
        return cls(
            machine_id=data["machine_id"], matmul_tflops={str(k): float(v) for k, v in matmul.items()},
            copy_gbps=float(copy) if copy is not None else None, matmul_sizes=dict(sizes), **texts, **ints,
            load_avg_1m=float(load) if load is not None else None,
        )  # fmt: skip


def _rate(v: Any) -> bool:
    return finite_number(v) and v > 0


def best_of(old: Ceilings | None, new: Ceilings) -> tuple[Ceilings, list[str]]:
    """The ceilings to store: the new ones, except where the stored ones of the same torch are higher
    (a ceiling is the best the machine was seen to do; a busier run must not lower it). Returns what
    was kept from `old`."""
    if old is None or old.torch != new.torch:
        return new, []
    matmul = dict(new.matmul_tflops)
    kept = []
    for dtype, v in old.matmul_tflops.items():
        if v > matmul.get(dtype, 0.0) and old.matmul_sizes.get(dtype) == new.matmul_sizes.get(dtype):
            matmul[dtype] = v
            kept.append(f"matmul {dtype}")
    copy = new.copy_gbps
    if old.copy_gbps and (copy is None or old.copy_gbps > copy) and old.copy_mib == new.copy_mib:
        copy = old.copy_gbps
        kept.append("copy")
    # The label follows the figures: new's where any of its figures is stored, old's where any is kept.
    figures = len(matmul) + (copy is not None)
    why = [w for w, used in ((new.disturbed, len(kept) < figures), (old.disturbed, bool(kept))) if w and used]
    stored = dataclasses.replace(new, matmul_tflops=matmul, copy_gbps=copy, disturbed="; ".join(why) or None)
    return stored, kept


def cache_dir() -> Path:
    """Where ceilings live: $CHIPBENCH_CACHE_DIR, else the user's cache folder as each OS names it (the
    folders platformdirs gives, written out here: `run` needs nothing an offline GPU image lacks)."""
    env = os.environ.get("CHIPBENCH_CACHE_DIR")
    if env:
        return Path(env)
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "chipbench"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "chipbench" / "chipbench" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if os.path.isabs(xdg) else home / ".cache") / "chipbench"


def path_for(machine_id: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / "ceilings" / f"{machine_id}.json"


def load(machine_id: str, root: Path | None = None) -> Ceilings | None:
    """The stored ceilings of this machine, or None (a corrupt file counts as none); a FIFO, a device or
    a file too large in its place is a one-line UsageError naming it (never a wait)."""
    p = path_for(machine_id, root)
    if not os.path.lexists(p):
        return None
    try:
        data = json.loads(read_bytes(p, "ceilings cache file", MAX_CONFIG_BYTES))
    except (ValueError, RecursionError):
        return None  # a damaged cache is no calibration: the run goes on and says "run calibrate"
    c = Ceilings.from_json(data)
    return c if c is not None and c.machine_id == machine_id else None


def save(ceilings: Ceilings, root: Path | None = None) -> Path:
    p = path_for(ceilings.machine_id, root)
    atomic_write_json(p, ceilings.to_json())
    return p
