"""File writes that never leave a partial file: a temporary file in the same folder, fsync, then rename
(or, for a name that must not be taken twice, a hard link that fails if the name exists). Files get the
mode the umask gives, as `open` would; output paths can be checked before any work starts."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str, *, exclusive: bool = False) -> Path:
    """Write `text` to `path` so that readers see the old file or the whole new one, never a part.

    exclusive: never replace an existing file; when `path` is taken, `stem-2.suffix`, `stem-3.suffix`, ...
    Returns the path written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), _umask_mode())
            os.fsync(f.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return path
        for i in range(1, 1000):
            target = path if i == 1 else path.with_name(f"{path.stem}-{i}{path.suffix}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:
                # No hard links here (vfat, some network file systems): claim the name, then replace it.
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                except FileExistsError:
                    continue
                os.replace(tmp, target)
            return target
        raise FileExistsError(f"no free name next to {path}")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if exclusive:
            Path(tmp).unlink(missing_ok=True)


def atomic_write_json(path: Path, data: Any, *, exclusive: bool = False) -> Path:
    return atomic_write_text(
        path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n", exclusive=exclusive
    )


def check_writable(path: Path, flag: str, *, folder: bool = False) -> None:
    """A one-line UsageError, before any work, when `path` (a file, or a folder with folder=True) could
    not be written: it is a folder (a file), a file (a folder), under a file, or in a folder this process
    cannot write (permissions, a read-only file system). Nothing is created."""
    p = Path(path)
    if p.exists():
        if folder and not p.is_dir():
            raise UsageError(f"{flag} {p} is a file, not a folder; give a folder")
        if not folder and p.is_dir():
            raise UsageError(f"{flag} {p} is a folder; give a file path")
        if not folder and not os.access(p, os.W_OK):
            raise UsageError(f"{flag} {p} cannot be written (no permission or a read-only file system)")
    probe = p if folder and p.is_dir() else p.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{flag} {p} cannot be created: {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".chipbench-probe.", dir=probe)
    except OSError as exc:
        raise UsageError(
            f"{flag} {p} cannot be written: folder {probe} is not writable ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(tmp)
