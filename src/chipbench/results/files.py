"""Results files on disk: default paths, atomic writes, and loading with one-line errors for a missing,
corrupt or foreign file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.core.fileio import atomic_write_json, atomic_write_text
from chipbench.results import validate
from chipbench.results.render import to_markdown


def default_path(doc: dict[str, Any], root: Path = Path("results")) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    commit = (doc.get("commit_info") or {}).get("id") or "unknown"
    return root / doc["chipbench"]["machine_id"] / f"{stamp}_{commit[:8]}.json"


def write(doc: dict[str, Any], path: Path) -> Path:
    atomic_write_json(path, doc)
    return path


def load(path: Path) -> dict[str, Any]:
    """Load a results file through the strict reader (`validate`): a missing, unreadable, corrupt or
    hostile file raises a one-line UsageError naming the file and the field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read results file {path}: {exc.strerror or exc}") from None
    return validate.parse(raw, path)


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    atomic_write_text(path, to_markdown(doc))


def result_files(path: Path) -> list[Path]:
    """A results file, or every *.json under a folder (recursively, sorted)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise UsageError(f"no results files (*.json) under {path}")
        return files
    if not path.exists():
        raise UsageError(f"results file {path} does not exist")
    return [path]
