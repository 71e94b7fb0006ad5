"""The results store: results files kept in a database (SQLite by default, PostgreSQL for a team), read
by the gate and the dashboard at fleet scale. The JSON files stay the raw record: a store can be rebuilt
from them at any time (docs/store.md).

API (everything typed, frozen; rows never leave the package):

- `open_store(url) -> Store`: None -> `store.sqlite` in chipbench's cache folder ($CHIPBENCH_CACHE_DIR);
  a path or `sqlite:///PATH` -> that SQLite file; `postgresql://USER:PASSWORD@HOST:PORT/DB` (psycopg 3).
  The schema is made where absent. `Store.url` is a `StoreURL`; its `redacted` (also `str()`) shows `***`
  for the password, which is never printed, logged or stored. Cannot open: `StoreError` (a UsageError).
  `Store` is a context manager (`close()`).
- `Store.ingest(paths, IngestOptions(branch, reason)) -> IngestReport(added, present, refused)`: files
  or folders of them, each through the strict reader, one transaction each, keyed by the sha256 of its
  bytes (the same bytes twice add nothing, also with several writers at once).
- Reads, all in the folder code's order (results.provenance.order_key: commit time, the run's datetime,
  the path as ingested), sorted in Python after the query:
  `machines() -> list[str]`; `runs(machine_id, *, branch=None, last=None) -> list[StoredRun]`;
  `runs_by_id(ids) -> list[StoredRun]`;
  `points(machine_id, *, pattern=None, run_ids=None) -> list[StoredPoint]` (summary columns only: the
  fast path of `history`; disturbed points and those without a median included);
  `documents(run_ids) -> list[(path, ResultsDocument)]` (equal to `load_typed` of the file, samples
  included); `samples(result_ids) -> dict[result id, float64 array]`; `counts() -> dict[table, rows]`.
- Change points: `save_change_points(machine_id, [ChangePointRecord]) -> [StoredChangePoint]` (an upsert
  on machine, case, commit: status and note kept), `change_points(status=None, machine_id=None)` (newest
  first), `set_status(id, status, note=None)`; per series the newest run id an analysis saw:
  `series_watermarks(machine_id) -> {case: run id}`, `set_series_watermarks(machine_id, {case: run id})`.

Imported only by the commands that use it: without SQLAlchemy, importing it is one UsageError saying what
to install (an offline GPU image runs benchmarks without it).
"""

from __future__ import annotations

from chipbench.core.errors import UsageError

try:
    import sqlalchemy  # noqa: F401
except ImportError:  # pragma: no cover - the lent GPU image
    raise UsageError(
        "the results store needs SQLAlchemy, which this environment lacks: `pip install 'sqlalchemy==2.1.9'` "
        "(or `make setup`)"
    ) from None

from chipbench.store.database import Store, open_store
from chipbench.store.engine import StoreError
from chipbench.store.records import (
    DIRECTIONS,
    REASONS,
    STATUSES,
    ChangePointRecord,
    IngestedFile,
    IngestOptions,
    IngestReport,
    RefusedFile,
    StoredChangePoint,
    StoredPoint,
    StoredRun,
)
from chipbench.store.url import StoreURL

__all__ = [
    "DIRECTIONS",
    "REASONS",
    "STATUSES",
    "ChangePointRecord",
    "IngestOptions",
    "IngestReport",
    "IngestedFile",
    "RefusedFile",
    "Store",
    "StoreError",
    "StoreURL",
    "StoredChangePoint",
    "StoredPoint",
    "StoredRun",
    "open_store",
]
