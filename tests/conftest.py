from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ceilings stored by a test (or by the user) must not leak into other tests.
    monkeypatch.setenv("CHIPBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
