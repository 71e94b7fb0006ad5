"""Connecting to a store: the engine for its URL, SQLite set for many writers (WAL, a busy wait, writes in
`BEGIN IMMEDIATE` transactions), the schema made once under a lock, and database errors as one line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from chipbench.core.errors import UsageError
from chipbench.store import schema
from chipbench.store.url import StoreURL

BUSY_TIMEOUT_S = 120.0
"""How long a SQLite writer waits for another's transaction (one file's) before it gives up."""

_LOCK_KEY = 0x63686970  # PostgreSQL advisory lock held while the schema is made ("chip")


class StoreError(UsageError):
    """The store cannot be opened or written: one line (its URL redacted), exit 2."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def connect(url: StoreURL) -> Engine:
    """An engine for `url`, its schema made where absent; a StoreError saying why it cannot be."""
    if url.dialect == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                "a PostgreSQL store needs psycopg 3, which this environment lacks: "
                "`pip install 'psycopg[binary]==3.3.9'` (or `make setup`)"
            ) from None
        engine = create_engine(url.sqlalchemy_url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    else:
        path = url.sqlite_path
        assert path is not None
        if path.exists() and not path.is_file():
            raise StoreError(f"store {path} is not a file")
        if not path.parent.is_dir():
            raise StoreError(f"cannot make store {path}: folder {path.parent} does not exist")
        engine = create_engine(url.sqlalchemy_url, connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_events(engine)
    try:
        _schema(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open store {url.redacted}: {url.scrub(reason(exc))}") from None
    return engine


def reason(exc: BaseException) -> str:
    """A database error's first line, without SQLAlchemy's statement and link."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    return lines[0] if lines else type(inner).__name__


def _sqlite_events(engine: Engine) -> None:
    # pysqlite's own transaction handling starts a transaction only at the first write, which lets two
    # writers that both read first deadlock; SQLAlchemy's recipe: the driver in autocommit, BEGIN ours.
    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None
        cur = dbapi.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        # WAL: readers never wait for a writer (kept in the file; outside any transaction).
        cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock at BEGIN (waiting its turn), so it never fails half-way.
        immediate = conn.get_execution_options().get("chipbench_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed when the block ends, rolled back (nothing kept) if it raises."""
    with engine.connect() as conn:
        conn.execution_options(chipbench_write=True)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL lock_timeout = '120s'"))
            yield conn


def _version(engine: Engine) -> int | None:
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "store_meta"):
            return None
        got = conn.execute(
            select(schema.store_meta.c.value).where(schema.store_meta.c.key == "schema_version")
        ).scalar()
    return int(got) if got is not None else None


def _schema(engine: Engine) -> None:
    """The tables, made once: several processes opening a new store at once wait for the first."""
    got = _version(engine)
    if got is None:
        with writing(engine) as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            schema.metadata.create_all(conn, checkfirst=True)
            have = conn.execute(
                select(schema.store_meta.c.value).where(schema.store_meta.c.key == "schema_version")
            ).scalar()
            if have is None:
                conn.execute(
                    schema.store_meta.insert(),
                    [
                        {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                        {"key": "created", "value": now()},
                    ],
                )
            got = int(have) if have is not None else schema.SCHEMA_VERSION
    if got != schema.SCHEMA_VERSION:
        raise StoreError(
            f"the store's schema is version {got}, this chipbench's {schema.SCHEMA_VERSION}: "
            + ("upgrade chipbench" if got > schema.SCHEMA_VERSION else "ingest its files into a new store")
        )
