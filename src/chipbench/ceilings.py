"""Measured ceilings of a machine (from `chipbench calibrate`), stored per machine id."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chipbench.fileio import atomic_write_json


def cache_dir() -> Path:
    """Where ceilings live: $CHIPBENCH_CACHE_DIR, else the user's cache dir."""
    env = os.environ.get("CHIPBENCH_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("chipbench"))


def path_for(machine_id: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / "ceilings" / f"{machine_id}.json"


def load(machine_id: str, root: Path | None = None) -> dict[str, Any] | None:
    """The stored ceilings of this machine, or None (a corrupt file counts as none)."""
    p = path_for(machine_id, root)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("machine_id") == machine_id else None


def save(machine_id: str, ceilings: dict[str, Any], root: Path | None = None) -> Path:
    p = path_for(machine_id, root)
    atomic_write_json(p, {"machine_id": machine_id, **ceilings})
    return p
