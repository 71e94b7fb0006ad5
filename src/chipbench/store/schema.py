"""The store's tables: one schema for SQLite and PostgreSQL (SQLAlchemy Core), made on first open.

- `runs`: one results file (its sha256 is the key: ingesting the same bytes twice adds nothing).
- `results`: one benchmark of a run, its summary columns (what `history` reads without decoding a sample)
  and its record as read, minus the samples (what `documents` rebuilds the file from).
- `samples`: a result's raw samples, zlib of float64 little-endian.
- `change_points`: a change found in a machine's series of a case, with the status people give it.
- `series_state`: per machine and case, the newest run a change-point analysis has seen.
- `store_meta`: the schema version.

JSON is kept as text (both databases, key order as in the file).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 1
"""Bumped with every change of the tables; a store of a newer version is refused, never written."""

metadata = MetaData()

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("machine_id", Text, nullable=False),
    Column("device", Text),
    Column("stack", Text, nullable=False),
    # JSON list of [field, value] pairs (results.provenance.stack).
    Column("commit_id", Text),
    Column("commit_time", Text),
    Column("commit_ts", Double),
    # commit_time as POSIX seconds; NULL where missing or unreadable (sorts last).
    Column("run_datetime", Text),
    Column("run_ts", Double),
    Column("branch", Text),
    Column("reason", String(16), nullable=False),
    Column("source_file", Text, nullable=False),
    Column("header", Text, nullable=False),
    # The document as read, `benchmarks` left empty (JSON).
    Column("host_probe", Text),
    # chipbench.host_probe as read (JSON), where the run had one.
    Column("probe_matmul_gflops", Double),
    Column("probe_copy_gbps", Double),
    Column("ingested_at", Text, nullable=False),
)
Index("runs_machine_order", runs.c.machine_id, runs.c.commit_ts, runs.c.run_ts)
Index("runs_machine_branch", runs.c.machine_id, runs.c.branch)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    # Its place in the file's `benchmarks`.
    Column("machine_id", Text, nullable=False),
    # The run's (a series of one machine is one index range).
    Column("name", Text, nullable=False),
    Column("group_name", Text),
    Column("version_hash", Text),
    Column("config", Text, nullable=False),
    Column("requested", Text),
    Column("sample_count", Integer, nullable=False),
    Column("median_s", Double),
    Column("ci_low", Double),
    Column("ci_high", Double),
    Column("disturbed", Text),
    Column("metrics", Text, nullable=False),
    Column("record", Text, nullable=False),
    # The benchmark as read, `stats.data` left empty (JSON).
    UniqueConstraint("run_id", "position"),
)
Index("results_series", results.c.machine_id, results.c.name, results.c.run_id)
Index("results_run", results.c.run_id, results.c.name)

samples = Table(
    "samples",
    metadata,
    Column("result_id", Integer, ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

change_points = Table(
    "change_points",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("machine_id", Text, nullable=False),
    Column("case_name", Text, nullable=False),
    Column("commit_id", Text, nullable=False),
    Column("previous_commit", Text, nullable=False),
    Column("ratio", Double, nullable=False),
    Column("ci_low", Double),
    Column("ci_high", Double),
    Column("p_value", Double),
    Column("direction", String(16), nullable=False),
    Column("before_median_s", Double),
    Column("after_median_s", Double),
    Column("changed", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("created", Text, nullable=False),
    UniqueConstraint("machine_id", "case_name", "commit_id", name="change_points_one_per_commit"),
)
Index("change_points_status", change_points.c.status, change_points.c.machine_id)

series_state = Table(
    "series_state",
    metadata,
    Column("machine_id", Text, primary_key=True),
    Column("case_name", Text, primary_key=True),
    Column("last_run_id", Integer, nullable=False),
    # The newest run id the last change-point analysis of this series saw.
)
