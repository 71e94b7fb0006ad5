"""Results files on disk: default paths, atomic writes, and loading with one-line errors for a missing,
corrupt or foreign file."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.core.fileio import atomic_write_json, atomic_write_text
from chipbench.results import validate
from chipbench.results.render import to_markdown
from chipbench.results.typed import Document, ResultsDocument, as_document
from chipbench.results.wire import JSONObject


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _json(doc: Document) -> Mapping[str, Any]:
    return doc.to_json() if isinstance(doc, ResultsDocument) else doc


LOCAL_ROOT = Path("results") / "local"
"""Where a run goes without --output: beside the committed baselines (results/<machine id>/), never among
them, so `chipbench compare results/<machine id>` reads baselines only; git ignores it."""


def default_path(doc: Document, root: Path = LOCAL_ROOT) -> Path:
    """results/local/<machine id>/<UTC time to the microsecond>_<commit>_<pid>.json: two runs never share
    it (and `save` never replaces a file at a default path)."""
    typed = as_document(doc)
    commit = (typed.commit_info.id if typed.commit_info else None) or "unknown"
    return root / str(typed.header.machine_id) / f"{_stamp()}_{commit[:8]}_{os.getpid()}.json"


def write(doc: Document, path: Path, *, exclusive: bool = False) -> Path:
    """Write atomically; returns the path written (with exclusive=True, the next free name)."""
    return atomic_write_json(path, _json(doc), exclusive=exclusive)


@dataclass(frozen=True)
class Saved:
    path: Path
    """Where the document is."""
    fallback_reason: str | None = None
    """Why it is not where it was asked to go (the write failed: a full disk, a vanished folder)."""


def save(doc: Document, path: Path | None) -> Saved:
    """Write the document to `path` (None: a default path, never replacing a file). If that write fails,
    it goes to a file in the temporary folder instead, and the reason says so: what finished is never
    lost to a failed write."""
    doc = _json(doc)
    target = path if path is not None else default_path(doc)
    try:
        return Saved(write(doc, target, exclusive=path is None))
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / f"chipbench-results-{_stamp()}-{os.getpid()}.json"
        written = write(doc, fallback, exclusive=True)
        return Saved(written, f"could not write {target} ({exc.strerror or exc}); saved to {written} instead")


def load(path: Path) -> JSONObject:
    """Load a results file through the strict reader (`validate`): a missing, unreadable, corrupt or
    hostile file raises a one-line UsageError naming the file and the field. The checked JSON; readers
    take `load_typed`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read results file {path}: {exc.strerror or exc}") from None
    return validate.parse(raw, path)


def load_typed(path: Path) -> ResultsDocument:
    """`load`, typed: the one place a results file becomes a `ResultsDocument`."""
    return ResultsDocument.from_json(load(path))


def write_markdown(doc: Document, path: Path) -> None:
    atomic_write_text(path, to_markdown(as_document(doc)))


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
