"""File writes that never leave a partial file: a temporary file in the same folder, fsync, then rename
(or, for a name that must not be taken twice, a hard link that fails if the name exists). Files get the
mode the umask gives, as `open` would; output paths can be checked before any work starts."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import time
from collections.abc import Sequence
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


def _loops(p: Path) -> bool:
    try:
        os.stat(p)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


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
    for x in (p, *p.parents):
        if _loops(x):
            raise UsageError(f"{flag} {p} cannot be written: {x} is a symlink loop")
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


# --- Reading: every file chipbench reads is looked at before it is read -------------------------------

MAX_CONFIG_BYTES = 1 << 20
"""A config file (prices, thresholds, the ceilings cache) is a few hundred bytes: 1 MiB is no config."""
MAX_RESULTS_BYTES = 1 << 30
"""A results file of 10 million samples is about 230 MB; past 1 GiB its JSON would not fit in memory."""


class SkippedInput(UserWarning):
    """Something under a folder chipbench was given that it could not read (a folder it may not list, a
    FIFO named like a results file): the command goes on without it and says so (with --strict, an
    error)."""


def kind(mode: int) -> str:
    """What a file is, in words, from its st_mode."""
    for test, words in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return words
    return "not a regular file"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 10**6 else f"{n} bytes"


def check_input(path: Path, what: str, *, folder_ok: bool = False) -> os.stat_result:
    """A one-line UsageError unless `path` is a regular file (or, with folder_ok, a folder): a FIFO, a
    device, a socket, a missing path or a symlink loop is named, and nothing is opened (no wait)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {_why(exc)}") from None
    if stat.S_ISREG(st.st_mode) or (folder_ok and stat.S_ISDIR(st.st_mode)):
        return st
    want = "a file or a folder" if folder_ok else "a file"
    raise UsageError(f"{what} {path} is {kind(st.st_mode)}, not a regular file; give {want}")


def read_bytes(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them; a one-line UsageError naming
    the path otherwise. Looked at before it is opened, and opened without blocking (a FIFO swapped in
    meanwhile is named, not waited on)."""
    check_input(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {_why(exc)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{what} {path} is {kind(st.st_mode)}, not a regular file; give a file")
        too_big = f"{what} {path} is larger than {_mb(max_bytes)}, more than a {what} can be"
        if st.st_size > max_bytes:
            raise UsageError(
                f"{what} {path} is {_mb(st.st_size)}, more than the {_mb(max_bytes)} a {what} can be"
            )
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 24, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew while being read
                raise UsageError(too_big)
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {_why(exc)}") from None
    finally:
        os.close(fd)


def load_toml(path: Path, what: str, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """A TOML config file as a dict; every failure (not a file, too large, not UTF-8, not TOML, nested
    too deep) is one UsageError naming the file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    raw = read_bytes(path, what, max_bytes)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{what} {path} is not UTF-8 text (undecodable byte at offset {exc.start})"
        ) from None
    except RecursionError:
        raise UsageError(f"{what} {path} is nested too deeply to be a config file") from None
    except (ValueError, TypeError, MemoryError) as exc:  # TOMLDecodeError is a ValueError
        raise UsageError(f"{what} {path} is not valid TOML ({str(exc)[:200]})") from None


# --- Outputs: apart from the inputs and from each other; written whole, or elsewhere with a word ------


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist yet (or is a symlink loop): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(p: Path, folder: Path) -> bool:
    return os.path.realpath(p).startswith(os.path.realpath(folder).rstrip(os.sep) + os.sep)


def check_apart(
    outputs: Sequence[tuple[str, Path | None]], inputs: Sequence[tuple[str, Path | None]] = ()
) -> None:
    """A one-line UsageError, before any work, when two outputs are one path (one would replace the
    other) or an output is an input (a file given, or a results file inside a folder given): nothing
    read is ever replaced by what is written. Pairs are (flag, path); a None path is not given."""
    outs = [(f, Path(p)) for f, p in outputs if p is not None]
    for i, (flag, p) in enumerate(outs):
        for other, q in outs[:i]:
            if _same(p, q):
                raise UsageError(
                    f"{other} and {flag} are both {p}: one would replace the other; give two paths"
                )
        for name, given in inputs:
            if given is None:
                continue
            src = Path(given)
            if _same(p, src):
                raise UsageError(
                    f"{flag} {p} is the input {name}: writing it would replace it; give another path"
                )
            if src.is_dir() and p.suffix == ".json" and p.exists() and _inside(p, src):
                raise UsageError(
                    f"{flag} {p} is a file inside the input {name}: writing it would replace it; give another path"
                )


def write_text_or_elsewhere(path: Path, text: str) -> tuple[Path, str | None]:
    """Write `text` to `path` whole; when that fails (a full disk, a read-only folder, a symlink loop),
    to a file in the temporary folder instead. Returns the path written and, for the fallback, why, for
    a warning; a one-line UsageError when neither can be written. What was computed is never lost."""
    try:
        return atomic_write_text(path, text), None
    except OSError as exc:
        first = _why(exc)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    fallback = Path(tempfile.gettempdir()) / f"chipbench-{path.stem}-{stamp}-{os.getpid()}{path.suffix}"
    try:
        written = atomic_write_text(fallback, text, exclusive=True)
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({first}), nor {fallback} ({_why(exc)})") from None
    return written, f"could not write {path} ({first}); wrote {written} instead"
