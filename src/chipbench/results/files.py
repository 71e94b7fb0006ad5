"""Results files on disk: default paths, atomic writes, and loading with one-line errors for a missing,
corrupt or foreign file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import chipbench
from chipbench.core.errors import UsageError
from chipbench.core.fileio import atomic_write_json, atomic_write_text
from chipbench.results.render import to_markdown


def default_path(doc: dict[str, Any], root: Path = Path("results")) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    commit = (doc.get("commit_info") or {}).get("id") or "unknown"
    return root / doc["chipbench"]["machine_id"] / f"{stamp}_{commit[:8]}.json"


def write(doc: dict[str, Any], path: Path) -> Path:
    atomic_write_json(path, doc)
    return path


def load(path: Path) -> dict[str, Any]:
    """Load and validate a results file; a missing or corrupt file raises a one-line UsageError."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read results file {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"results file {path} is not valid JSON ({exc}); re-run `chipbench run` to make a new one"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise UsageError(
            f"results file {path} has no 'benchmarks' list; is it a chipbench or pytest-benchmark file?"
        )
    meta = doc.get("chipbench")
    if isinstance(meta, dict) and meta.get("schema_version", 0) > chipbench.SCHEMA_VERSION:
        raise UsageError(
            f"results file {path} has schema {meta['schema_version']}, newer than this chipbench "
            f"({chipbench.SCHEMA_VERSION}); upgrade chipbench"
        )
    for b in doc["benchmarks"]:
        if not isinstance(b, dict) or "name" not in b or "data" not in (b.get("stats") or {}):
            raise UsageError(f"results file {path} has a benchmark entry without name or raw stats data")
    return doc


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


def load_doc(path: Path) -> dict[str, Any]:
    """`load`, with a clearer message for pytest-benchmark files saved without raw data."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        raw = None  # results.load gives the one-line message
    if isinstance(raw, dict) and isinstance(raw.get("benchmarks"), list) and "chipbench" not in raw:
        for b in raw["benchmarks"]:
            if isinstance(b, dict) and isinstance(b.get("stats"), dict) and "data" not in b["stats"]:
                raise UsageError(
                    f"pytest-benchmark file {path} has no raw samples; save with --benchmark-save-data"
                )
    return load(path)
