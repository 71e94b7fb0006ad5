"""The one query the dashboard needs that the store's API gives only at more cost: the summary columns of a
machine's shown runs, as `PointRow`s. `Store.points` also decodes each row's stack and file (what
`history` needs to group runs); the panels need neither, and at 18,000 rows a machine page that decoding
was most of the dashboard's time (benchmarks/store_scale.py). It reads the store's own tables
(`chipbench.store.schema`) through its engine, values bound as parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from chipbench.report.dashboard import PointRow
from chipbench.store import Store, schema

CHUNK = 500
"""Run ids bound per statement (SQLite and PostgreSQL both cap a statement's parameters)."""


def point_rows(store: Store, machine_id: str, run_ids: Sequence[int]) -> list[PointRow]:
    """The machine's results in these runs that have a median, in no particular order."""
    s = schema.results.c
    q = select(s.run_id, s.name, s.median_s, s.ci_low, s.ci_high, s.version_hash, s.disturbed).where(
        s.machine_id == machine_id, s.median_s.is_not(None)
    )
    out: list[PointRow] = []
    ids = list(dict.fromkeys(run_ids))
    engine = store._engine  # the store's own engine: this module is a query of the store's, kept here
    with engine.connect() as conn:
        for i in range(0, len(ids), CHUNK):
            out += [PointRow(*r) for r in conn.execute(q.where(s.run_id.in_(ids[i : i + CHUNK])))]
    return out
