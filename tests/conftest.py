from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_server import PgServer
from tests.pg_server import unavailable as pg_server_unavailable


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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server of this test session (tests/pg_server.py); the test skips where none can start."""
    why = pg_server_unavailable()
    if why:
        pytest.skip(f"PostgreSQL half skipped: {why}")
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty results store's URL: a SQLite file, then a database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()
