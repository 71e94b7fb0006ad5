"""The results store: `open_store` and `Store`, its ingest and the reads the gate and the dashboard use.

Every list of runs, points or documents is in the folder code's order (results.provenance.order_key:
commit time, then the run's datetime, then the path it was ingested from): the database narrows by
machine, branch and ids; the order is made in Python after the query with the same key, as string
collations differ between databases and Python.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from chipbench.core.errors import UsageError
from chipbench.core.fileio import MAX_RESULTS_BYTES, read_bytes
from chipbench.results import validate
from chipbench.results.files import result_files
from chipbench.results.header import HostProbe
from chipbench.results.provenance import Stack
from chipbench.results.typed import ResultsDocument
from chipbench.store import changes, rows, schema
from chipbench.store.engine import StoreError, connect, now, reason, writing
from chipbench.store.records import (
    ChangePointRecord,
    IngestedFile,
    IngestOptions,
    IngestReport,
    RefusedFile,
    StoredChangePoint,
    StoredPoint,
    StoredRun,
)
from chipbench.store.url import StoreURL, parse

CHUNK = 500
"""Ids bound per query (SQLite and PostgreSQL both cap a statement's parameters)."""

T = TypeVar("T")


def open_store(url: str | None) -> Store:
    """The store at `url` (None: `store.sqlite` in chipbench's cache folder; a path or sqlite:///PATH: a
    SQLite file; postgresql://USER:PASSWORD@HOST:PORT/DB), its schema made where absent. A StoreError
    (a UsageError: one line, the password never in it) where it cannot be opened."""
    parsed = parse(url)
    if url is None and parsed.sqlite_path is not None:
        try:
            parsed.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot make the store's folder {parsed.sqlite_path.parent}: {exc.strerror}"
            ) from None
    return Store(parsed, connect(parsed))


def _prepare(path: Path, raw: bytes, key: str, options: IngestOptions) -> rows.Rows | RefusedFile:
    """A file's rows, through the strict reader; the reason where it is refused."""
    try:
        parsed = validate.parse(raw, path)
        doc = ResultsDocument.from_json(parsed)
        meta = {
            "content_hash": key,
            "branch": options.branch or (doc.commit_info.branch if doc.commit_info else None),
            "reason": options.reason,
            "source_file": rows.path_text(path),
            "ingested_at": now(),
        }
        return rows.to_rows(parsed, doc, meta)
    except UsageError as exc:
        return RefusedFile(str(path), str(exc))
    except (ValueError, TypeError, KeyError) as exc:
        return RefusedFile(str(path), f"results file {path}: {exc}")


def _chunks(ids: Iterable[T]) -> Iterator[list[T]]:
    got = list(dict.fromkeys(ids))
    for i in range(0, len(got), CHUNK):
        yield got[i : i + CHUNK]


def _inf(x: float | None) -> float:
    return math.inf if x is None else float(x)


def _order(r: Any) -> tuple[float, float, str]:
    return _inf(r.commit_ts), _inf(r.run_ts), str(r.source_file)


_RUN_COLUMNS = (
    schema.runs.c.id,
    schema.runs.c.content_hash,
    schema.runs.c.source_file,
    schema.runs.c.machine_id,
    schema.runs.c.device,
    schema.runs.c.commit_id,
    schema.runs.c.commit_time,
    schema.runs.c.commit_ts,
    schema.runs.c.run_datetime,
    schema.runs.c.run_ts,
    schema.runs.c.branch,
    schema.runs.c.reason,
    schema.runs.c.stack,
    schema.runs.c.host_probe,
)


class Store:
    """An open results store (module docstring). Close it, or use it in a `with` block."""

    def __init__(self, url: StoreURL, engine: Engine) -> None:
        self.url = url
        """Where it is (`url.redacted` for messages)."""
        self._engine = engine
        self._dialect = engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url.redacted!r})"

    # ---- ingest

    def ingest(self, paths: Sequence[Path], options: IngestOptions | None = None) -> IngestReport:
        """Put results files (or every *.json under a folder) into the store, one transaction each.

        Each file goes through the strict reader: one it refuses is listed with the reason and the rest
        go in. A file whose bytes are there already adds nothing. A path that does not exist, or a folder
        without results files, is a UsageError before anything is stored; a database failure is a
        StoreError, and the file it happened in left out whole."""
        options = options or IngestOptions()
        files = [f for p in paths for f in result_files(Path(p))]
        added: list[IngestedFile] = []
        present: list[IngestedFile] = []
        refused: list[RefusedFile] = []
        for f in dict.fromkeys(files):
            got = self._ingest_one(f, options)
            if isinstance(got, RefusedFile):
                refused.append(got)
            else:
                (added if got[1] else present).append(got[0])
        return IngestReport(tuple(added), tuple(present), tuple(refused))

    def _ingest_one(self, path: Path, options: IngestOptions) -> RefusedFile | tuple[IngestedFile, bool]:
        try:
            raw = read_bytes(path, "results file", MAX_RESULTS_BYTES)
        except UsageError as exc:
            return RefusedFile(str(path), str(exc))
        key = rows.content_hash(raw)
        try:
            # The same bytes went through the strict reader when they were stored: not parsed again.
            have = self._present(key)
            if have is not None:
                return IngestedFile(str(path), *have), False
            made = _prepare(path, raw, key, options)
            if isinstance(made, RefusedFile):
                return made
            with writing(self._engine) as conn:
                run_id = conn.execute(
                    changes.insert_ignore(self._dialect, schema.runs, ["content_hash"])
                    .values(**made.run)
                    .returning(schema.runs.c.id)
                ).scalar()
                if run_id is None:  # another writer stored the same bytes first
                    conn.rollback()
                    again = self._present(key)
                    assert again is not None
                    return IngestedFile(str(path), *again), False
                if made.results:
                    ids = (
                        conn.execute(
                            schema.results.insert().returning(
                                schema.results.c.id, sort_by_parameter_order=True
                            ),
                            [{**r, "run_id": run_id} for r in made.results],
                        )
                        .scalars()
                        .all()
                    )
                    conn.execute(
                        schema.samples.insert(),
                        [{"result_id": i, "data": b} for i, b in zip(ids, made.samples, strict=True)],
                    )
        except SQLAlchemyError as exc:
            raise StoreError(
                f"could not store {path} in {self.url.redacted}: {self.url.scrub(reason(exc))}; "
                "nothing of it was kept"
            ) from None
        return IngestedFile(str(path), run_id, key, len(made.results)), True

    def _present(self, key: str) -> tuple[int, str, int] | None:
        """(run id, content hash, results) of the run with these bytes, if stored."""
        with self._engine.connect() as conn:
            run_id = conn.execute(select(schema.runs.c.id).where(schema.runs.c.content_hash == key)).scalar()
            if run_id is None:
                return None
            n = conn.execute(
                select(func.count()).select_from(schema.results).where(schema.results.c.run_id == run_id)
            ).scalar_one()
        return int(run_id), key, int(n)

    # ---- reads

    def counts(self) -> dict[str, int]:
        """Rows per table: runs, results, samples, change_points."""
        out = {}
        with self._engine.connect() as conn:
            for t in (schema.runs, schema.results, schema.samples, schema.change_points):
                out[t.name] = int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        return out

    def machines(self) -> list[str]:
        """Every machine id with a run, sorted."""
        with self._engine.connect() as conn:
            got = conn.execute(select(schema.runs.c.machine_id).distinct()).scalars().all()
        return sorted(got)

    def runs(self, machine_id: str, *, branch: str | None = None, last: int | None = None) -> list[StoredRun]:
        """The machine's runs in order (module docstring); of one branch; the newest `last` of them."""
        if last is not None and last < 1:
            raise ValueError("last must be >= 1")
        q = select(*_RUN_COLUMNS).where(schema.runs.c.machine_id == machine_id)
        if branch is not None:
            q = q.where(schema.runs.c.branch == branch)
        with self._engine.connect() as conn:
            got = sorted(conn.execute(q).all(), key=_order)
        if last is not None:
            got = got[-last:]
        return [self._run(r) for r in got]

    def runs_by_id(self, run_ids: Iterable[int]) -> list[StoredRun]:
        """These runs, in order."""
        got: list[Any] = []
        with self._engine.connect() as conn:
            for chunk in _chunks(run_ids):
                got.extend(conn.execute(select(*_RUN_COLUMNS).where(schema.runs.c.id.in_(chunk))).all())
        return [self._run(r) for r in sorted(got, key=_order)]

    @staticmethod
    def _run(r: Any) -> StoredRun:
        probe = HostProbe.from_json(json.loads(r.host_probe)) if r.host_probe else None
        return StoredRun(
            id=int(r.id),
            content_hash=r.content_hash,
            file=r.source_file,
            machine_id=r.machine_id,
            device=r.device,
            commit=r.commit_id,
            commit_time=r.commit_time,
            datetime=r.run_datetime,
            branch=r.branch,
            reason=r.reason,
            stack=rows.stack_of(r.stack),
            host_probe=probe,
            order=_order(r),
        )

    def points(
        self, machine_id: str, *, pattern: str | None = None, run_ids: Iterable[int] | None = None
    ) -> list[StoredPoint]:
        """Every benchmark of the machine's runs (or of these runs of it), in run order then file order,
        from the summary columns. `pattern` (fnmatch) keeps those whose name or group matches, as
        `history` does; disturbed results and those without a median are listed (the reader decides)."""
        r, s = schema.runs.c, schema.results.c
        # Results and runs apart: a run's columns once per run, not once per result (60,000 rows for a
        # machine's thousand commits), read as plain tuples (a Row's attributes cost most of the time).
        q = select(
            s.run_id, s.id, s.position, s.name, s.group_name, s.version_hash, s.median_s, s.ci_low, s.ci_high,
            s.sample_count, s.disturbed,
        ).where(s.machine_id == machine_id)  # fmt: skip
        rq = select(
            r.id, r.commit_id, r.commit_time, r.commit_ts, r.run_datetime, r.run_ts, r.source_file, r.stack
        ).where(r.machine_id == machine_id)
        got: list[tuple[Any, ...]] = []
        run_rows: list[Any] = []
        with self._engine.connect() as conn:
            if run_ids is None:
                got = [tuple(row) for row in conn.execute(q)]
                run_rows = list(conn.execute(rq).all())
            else:
                for chunk in _chunks(run_ids):
                    got.extend(tuple(row) for row in conn.execute(q.where(s.run_id.in_(chunk))))
                    run_rows.extend(conn.execute(rq.where(r.id.in_(chunk))).all())
        if pattern:
            got = [
                t
                for t in got
                if fnmatch.fnmatchcase(t[3], pattern) or fnmatch.fnmatchcase(str(t[4]), pattern)
            ]
        stacks: dict[str, Stack] = {}
        per_run: dict[int, tuple[Any, ...]] = {}
        for run in run_rows:
            if run.stack not in stacks:
                stacks[run.stack] = rows.stack_of(run.stack)
            per_run[run.id] = (run.commit_id, run.commit_time, run.run_datetime, run.source_file,
                               stacks[run.stack], _order(run))  # fmt: skip
        got.sort(key=lambda t: (per_run[t[0]][5], t[2]))
        return [
            StoredPoint(int(rid), int(i), name, group, vh, med, lo, hi, int(n), dist, *per_run[rid])
            for rid, i, _, name, group, vh, med, lo, hi, n, dist in got
        ]

    def documents(self, run_ids: Iterable[int]) -> list[tuple[str, ResultsDocument]]:
        """(the path it was ingested from, the document) of these runs, in run order: each document
        equals what the strict reader makes of the original file, samples included."""
        runs: list[Any] = []
        parts: dict[int, list[tuple[int, str, bytes]]] = {}
        r, s, d = schema.runs.c, schema.results.c, schema.samples.c
        with self._engine.connect() as conn:
            for chunk in _chunks(run_ids):
                runs.extend(
                    conn.execute(
                        select(r.id, r.source_file, r.header, r.commit_ts, r.run_ts).where(r.id.in_(chunk))
                    ).all()
                )
                q = (
                    select(s.run_id, s.position, s.record, d.data)
                    .join(schema.samples, d.result_id == s.id)
                    .where(s.run_id.in_(chunk))
                )
                for row in conn.execute(q):
                    parts.setdefault(int(row.run_id), []).append((row.position, row.record, row.data))
        out = []
        for run in sorted(runs, key=_order):
            recs = sorted(parts.get(int(run.id), []))
            out.append(
                (str(run.source_file), rows.document(run.header, [(rec, blob) for _, rec, blob in recs]))
            )
        return out

    def samples(self, result_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The raw samples (seconds per step, float64) of these results, by result id."""
        out: dict[int, np.ndarray] = {}
        d = schema.samples.c
        with self._engine.connect() as conn:
            for chunk in _chunks(result_ids):
                for row in conn.execute(select(d.result_id, d.data).where(d.result_id.in_(chunk))):
                    out[int(row.result_id)] = rows.decode_samples(row.data)
        return out

    # ---- change points (chipbench.store.changes)

    def save_change_points(
        self, machine_id: str, records: Iterable[ChangePointRecord]
    ) -> list[StoredChangePoint]:
        """Keep these change points of one machine: a new one opens; one kept already (same case and
        commit) gets the new figures and keeps its status and note. The kept ones, in the given order."""
        return changes.save(self._engine, machine_id, list(records))

    def change_points(
        self, status: str | None = None, machine_id: str | None = None
    ) -> list[StoredChangePoint]:
        """The change points kept (of one status, of one machine), newest first."""
        return changes.listed(self._engine, status, machine_id)

    def set_status(self, cp_id: int, status: str, note: str | None = None) -> StoredChangePoint:
        """Set a change point's status (and its note, where given); a UsageError for an unknown id or
        status."""
        return changes.set_status(self._engine, cp_id, status, note)

    def series_watermarks(self, machine_id: str) -> dict[str, int]:
        """Per case of the machine: the newest run id its last change-point analysis saw. A series with a
        point of a larger run id (`StoredPoint.run_id`), or absent here, has new points."""
        return changes.watermarks(self._engine, machine_id)

    def set_series_watermarks(self, machine_id: str, marks: Mapping[str, int]) -> None:
        """Record that the analysis of these cases of the machine saw runs up to these ids."""
        changes.set_watermarks(self._engine, machine_id, marks)
