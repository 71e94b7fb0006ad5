"""The chipdev build's cache key and folder (tests/testdev/build.py), without building anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.testdev import build


def test_the_key_follows_torch_version_and_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = build.cache_key()
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert build.cache_key() != key
    monkeypatch.undo()
    src = tmp_path / "chipdev.cpp"
    src.write_bytes(build.SOURCE.read_bytes() + b"\n// edited\n")
    monkeypatch.setattr(build, "SOURCE", src)
    assert build.cache_key() != key


def test_the_folder_is_chipdev_cache_dir_not_the_ceilings_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHIPBENCH_CACHE_DIR", str(tmp_path / "ceilings"))
    monkeypatch.setenv("CHIPDEV_CACHE_DIR", str(tmp_path / "builds"))
    assert build.build_dir() == tmp_path / "builds" / f"testdev-{build.cache_key()}"
    monkeypatch.delenv("CHIPDEV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.build_dir().parent == tmp_path / "xdg" / "chipbench"
