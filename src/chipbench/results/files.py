"""Results files on disk: default paths, atomic writes, and loading with one-line errors for a missing,
corrupt or foreign file."""

from __future__ import annotations

import datetime as dt
import os
import stat
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.core.fileio import (
    MAX_RESULTS_BYTES,
    SkippedInput,
    atomic_write_json,
    atomic_write_text,
    check_input,
    kind,
    read_bytes,
)
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
    return validate.parse(read_bytes(path, "results file", MAX_RESULTS_BYTES), path)


def load_typed(path: Path) -> ResultsDocument:
    """`load`, typed: the one place a results file becomes a `ResultsDocument`."""
    return ResultsDocument.from_json(load(path))


def write_markdown(doc: Document, path: Path) -> None:
    atomic_write_text(path, to_markdown(as_document(doc)))


def result_files(path: Path) -> list[Path]:
    """A results file, or every *.json under a folder (recursively, sorted). What is given must be a
    regular file or a folder (a FIFO or a device is named, never waited on); what under the folder cannot
    be read (a folder it may not list, a *.json that is a FIFO) is left out with a `SkippedInput` warning
    naming it, never in silence."""
    if not os.path.lexists(path):
        raise UsageError(f"results file {path} does not exist")
    if not stat.S_ISDIR(check_input(path, "results file", folder_ok=True).st_mode):
        return [path]
    files = []

    def unreadable(exc: OSError) -> None:
        warnings.warn(
            SkippedInput(f"left out {exc.filename}: cannot read it ({exc.strerror or exc})"), stacklevel=2
        )

    for folder, _, names in os.walk(path, onerror=unreadable):
        for name in names:
            if not name.endswith(".json"):
                continue
            p = Path(folder) / name
            try:
                mode = os.stat(p).st_mode
            except OSError as exc:
                unreadable(exc)
                continue
            if stat.S_ISREG(mode):
                files.append(p)
            else:
                warnings.warn(
                    SkippedInput(f"left out {p}: it is {kind(mode)}, not a results file"), stacklevel=2
                )
    if not files:
        raise UsageError(f"no results files (*.json) under {path}")
    return sorted(files)
