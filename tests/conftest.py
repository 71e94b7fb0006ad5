from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import schedule
from tests.pg_server import PgServer
from tests.pg_server import unavailable as pg_server_unavailable

pytest_collection_modifyitems = schedule.pytest_collection_modifyitems  # longest first (tests/schedule.py)


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
    schedule.configure(config)
    # Under pytest-xdist each worker is one of several processes on the cores: torch's own thread pool on
    # top of them oversubscribes the cores, and its threads spin-wait on one another many times slower.
    # So each worker, and the processes its tests start (the CLI's worker, torchrun's ranks), takes its
    # share of the cores (on this 2-core machine, one run each: the suite's CPU time 656 s against 736 s).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        share = max(1, (os.cpu_count() or 1) // max(1, workers))
        os.environ.setdefault("OMP_NUM_THREADS", str(share))
        torch.set_num_threads(share)


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
