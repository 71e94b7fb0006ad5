"""Build and load the chipdev C++ extension, cached by its source, the compiler flags and torch's version.

The library lands in <root>/testdev-<key>, root = $CHIPDEV_CACHE_DIR, else $XDG_CACHE_HOME/chipbench,
else ~/.cache/chipbench. Not $CHIPBENCH_CACHE_DIR (the ceilings' folder, which the test suite points at a
fresh temporary folder per test): the key names the content, so one build serves every run and test.
A cold build takes about half a minute on a 2-core machine, a cached load well under a second.
Concurrent builds of one key wait on an flock of that folder (the kernel drops it when a builder dies):
torch.utils.cpp_extension's own lock file outlives a killed build and would make every later load wait
forever, so under the flock a left-over one is removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("chipdev.cpp")
NAME = "chipdev_ext"
CFLAGS = ("-O1",)  # one translation unit, little optimisation: the kernels are torch's CPU ones


@dataclass(frozen=True)
class Built:
    """A loaded chipdev library."""

    library: Path
    """The shared library that was loaded."""
    seconds: float
    """Wall time of the build and load."""
    cached: bool
    """True when the library was already built (only loaded)."""


def compiler() -> str | None:
    """The C++ compiler torch.utils.cpp_extension will call ($CXX, else c++), or None if there is none."""
    return shutil.which(os.environ.get("CXX", "c++"))


def cache_key() -> str:
    """Hash of the source, the flags and torch's version: a new torch or an edit builds afresh."""
    h = hashlib.sha256(SOURCE.read_bytes())
    h.update(" ".join(CFLAGS).encode())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """$CHIPDEV_CACHE_DIR, else $XDG_CACHE_HOME/chipbench, else ~/.cache/chipbench."""
    env = os.environ.get("CHIPDEV_CACHE_DIR", "").strip()
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "chipbench"


def build_dir() -> Path:
    return cache_root() / f"testdev-{cache_key()}"


def build(verbose: bool = False) -> Built:
    """Compile chipdev.cpp if this key has no library yet, and load it into this process (once: a second
    call loads nothing new). Raises RuntimeError with the compiler's output when the build fails."""
    from torch.utils import cpp_extension

    folder = build_dir()
    folder.mkdir(parents=True, exist_ok=True)
    library = folder / f"{NAME}.so"
    start = time.perf_counter()
    with open(folder / "build.flock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # one builder at a time; released if it is killed
        (folder / "lock").unlink(missing_ok=True)  # torch's baton, left by a builder killed mid-build
        cached = library.exists()
        cpp_extension.load(
            NAME,
            [str(SOURCE)],
            extra_cflags=list(CFLAGS),
            build_directory=str(folder),
            is_python_module=False,
            verbose=verbose,
        )
    return Built(library, time.perf_counter() - start, cached)
