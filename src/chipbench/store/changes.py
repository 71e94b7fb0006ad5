"""The store's change points and series watermarks: kept, listed, given a status. Writes are upserts on
their natural keys (machine, case, commit; machine, case), safe with several writers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Engine, Insert, Table, select, update

from chipbench.core.errors import UsageError
from chipbench.store import schema
from chipbench.store.engine import now, writing
from chipbench.store.records import STATUSES, ChangePointRecord, StoredChangePoint


def insert_ignore(dialect: str, table: Table, keys: Sequence[str]) -> Insert:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, in the dialect's own words."""
    return _insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys))


def _insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


_FIGURES = tuple(f.name for f in fields(ChangePointRecord) if f.name not in ("case", "commit"))
_COLUMN = {"case": "case_name", "commit": "commit_id"}


def _values(machine_id: str, r: ChangePointRecord) -> dict[str, Any]:
    return {
        "machine_id": machine_id,
        **{_COLUMN.get(f.name, f.name): getattr(r, f.name) for f in fields(ChangePointRecord)},
    }


def _stored(row: Any) -> StoredChangePoint:
    m = row._mapping
    return StoredChangePoint(
        **{f.name: m[_COLUMN.get(f.name, f.name)] for f in fields(ChangePointRecord)},
        id=int(m["id"]),
        machine_id=m["machine_id"],
        status=m["status"],
        note=m["note"],
        created=m["created"],
    )


def save(engine: Engine, machine_id: str, records: list[ChangePointRecord]) -> list[StoredChangePoint]:
    if not records:
        return []
    cp = schema.change_points
    stamp = now()
    with writing(engine) as conn:
        for r in records:
            stmt = _insert(engine.dialect.name, cp).values(
                **_values(machine_id, r), status="open", note="", created=stamp
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["machine_id", "case_name", "commit_id"],
                set_={c: stmt.excluded[c] for c in _FIGURES},
            )
            conn.execute(stmt)
        got = {
            (row.case_name, row.commit_id): _stored(row)
            for row in conn.execute(select(cp).where(cp.c.machine_id == machine_id))
        }
    return [got[(r.case, r.commit)] for r in records]


def listed(engine: Engine, status: str | None, machine_id: str | None) -> list[StoredChangePoint]:
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown change-point status {status!r}: use one of {', '.join(STATUSES)}")
    cp = schema.change_points
    q = select(cp).order_by(cp.c.id.desc())
    if status is not None:
        q = q.where(cp.c.status == status)
    if machine_id is not None:
        q = q.where(cp.c.machine_id == machine_id)
    with engine.connect() as conn:
        return [_stored(r) for r in conn.execute(q)]


def set_status(engine: Engine, cp_id: int, status: str, note: str | None) -> StoredChangePoint:
    if status not in STATUSES:
        raise UsageError(f"unknown change-point status {status!r}: use one of {', '.join(STATUSES)}")
    cp = schema.change_points
    values: dict[str, str] = {"status": status}
    if note is not None:
        values["note"] = note
    with writing(engine) as conn:
        done = conn.execute(update(cp).where(cp.c.id == cp_id).values(**values))
        if done.rowcount != 1:
            raise UsageError(f"no change point {cp_id} in the store (`chipbench history --store` lists them)")
        row = conn.execute(select(cp).where(cp.c.id == cp_id)).one()
    return _stored(row)


def watermarks(engine: Engine, machine_id: str) -> dict[str, int]:
    s = schema.series_state
    with engine.connect() as conn:
        got = conn.execute(select(s.c.case_name, s.c.last_run_id).where(s.c.machine_id == machine_id))
        return {r.case_name: int(r.last_run_id) for r in got}


def set_watermarks(engine: Engine, machine_id: str, marks: Mapping[str, int]) -> None:
    if not marks:
        return
    s = schema.series_state
    with writing(engine) as conn:
        for case, run_id in marks.items():
            stmt = _insert(engine.dialect.name, s).values(
                machine_id=machine_id, case_name=case, last_run_id=run_id
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["machine_id", "case_name"],
                    set_={"last_run_id": stmt.excluded.last_run_id},
                )
            )
