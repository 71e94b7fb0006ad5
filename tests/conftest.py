from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ceilings stored by a test (or by the user) must not leak into other tests.
    monkeypatch.setenv("CHIPBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # No host probe in the tests' runs (four more measurements each); tests of the probe set their own.
    monkeypatch.setenv("CHIPBENCH_PROBE_S", "0")
    # pytest-xdist's workers inherit COLUMNS=80 from their start-up: output is laid out as a piped run's
    # (no COLUMNS) unless a test sets a width on purpose.
    monkeypatch.delenv("COLUMNS", raising=False)


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist each worker is one of several processes on the cores: torch's own thread pool on
    # top of them oversubscribes the cores, and its threads spin-wait on one another many times slower.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
