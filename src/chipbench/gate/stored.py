"""The gate's runs from a results store (chipbench.store) instead of a folder of results files: `history
--store`, `compare --base-store` and `report --store` read the same runs as the folder-based commands would
read from the files the store was made from, and give the same answers (tests/unit/test_store_gate.py).

- **history**: the machine's runs and their summary rows (`Store.points`: no sample decoded, no JSON
  parsed), made into the records `history.analyse_runs` reads from files. Each benchmark's analysis
  (change points, host drift, noise) is kept in the store's database (`history_analyses`, beside the
  store's tables) with the newest run id it saw and the parameters it ran with; a benchmark is analysed
  again only where a run newer than that has a point of it, or the parameters differ. Change points found
  are saved as the store's change points (`save_change_points`: one known already keeps its status) and
  the series' watermarks set.
- **compare's baseline**: per case the runs `baseline.choose` picks among the base branch's runs of the
  new side's machine, chosen from the summary rows; only the picked runs' documents (samples included)
  are read. A NEW file the store holds already (the same bytes) is never in its own baseline.
- **report**: per machine its newest runs' documents.

A run's median here is the one its file records (what `history` reads); compare's baseline choice and
spread in a folder read the median of the samples, which a file chipbench wrote records exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chipbench.core.errors import UsageError
from chipbench.gate import baseline, history
from chipbench.gate.baseline import Entry, Run, RunSpread, Side
from chipbench.results.typed import ResultsDocument

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from chipbench.store import Store, StoredPoint

ANALYSIS_VERSION = 1
"""Bumped when history's analysis changes what it finds: analyses kept by an older one are made again."""


def open_existing(url: str | None) -> Store:
    """The store at `url` (None: the default one), which must exist already (a read never makes an empty one); one line where it
    cannot be opened, where SQLAlchemy is missing, or where the URL is wrong."""
    from chipbench.store import open_store
    from chipbench.store.url import parse

    where = parse(url)
    if where.sqlite_path is not None and not where.sqlite_path.is_file():
        raise UsageError(
            f"no store at {where.redacted}: put results into it first (`chipbench ingest results --store "
            f"{where.redacted}`), or give the path of an existing one"
        )
    return open_store(url)


def _machine(store: Store, machine_id: str | None) -> str:
    """The machine to read: the one given (which must have runs), else the store's only one."""
    have = store.machines()
    if not have:
        raise UsageError(f"the store {store.url.redacted} holds no runs: `chipbench ingest` some first")
    if machine_id is None:
        if len(have) > 1:
            raise UsageError(
                f"the store {store.url.redacted} holds {len(have)} machines ({', '.join(have[:8])}"
                f"{' ...' if len(have) > 8 else ''}); pick one with --machine-id"
            )
        return have[0]
    if machine_id not in have:
        raise UsageError(
            f"no runs of machine {machine_id!r} in the store {store.url.redacted} (it holds: "
            f"{', '.join(have[:8])}{' ...' if len(have) > 8 else ''})"
        )
    return machine_id


# ---------------------------------------------------------------- history


def records(
    store: Store, machine_id: str, pattern: str | None
) -> tuple[list[history.RunRecord], dict[str, int]]:
    """The machine's runs as history reads them, in history order; and per benchmark the newest run id
    with a point of it."""
    pts = store.points(machine_id, pattern=pattern)
    cases: dict[int, list[history.CaseRun]] = {}
    newest: dict[str, int] = {}
    for p in pts:
        cases.setdefault(p.run_id, []).append(
            history.CaseRun(p.case, p.group, p.median_s, p.version_hash, p.disturbed)
        )
        newest[p.case] = max(newest.get(p.case, 0), p.run_id)
    runs = [
        history.RunRecord(r.file, r.commit or "unknown", r.commit_time or r.datetime or "", r.stack,
                          tuple(cases.get(r.id, ())), r.host_probe)
        for r in store.runs(machine_id)
    ]  # fmt: skip
    return runs, newest


def history_of(
    url: str, machine_id: str | None, pattern: str | None, *, p_value: float, min_magnitude: float
) -> history.Analysed:
    """`history.analyse_runs` over a machine's runs in the store, each benchmark analysed again only
    where it has new points (module docstring)."""
    with open_existing(url) as store:
        mid = _machine(store, machine_id)
        runs, newest = records(store, mid, pattern)
        per, disturbed = history.series_of_runs(runs, pattern)
        params = f"v{ANALYSIS_VERSION} p={p_value!r} m={min_magnitude!r}"
        probes = {r.file: r.probe for r in runs}
        got: list[history.Analysis] = []
        fresh: list[tuple[history.Analysis, int]] = []
        with _Analyses(store) as cache:
            kept = cache.load(mid, params)
            for name in sorted(per):
                old = kept.get(name)
                if old is not None and old[0] == newest[name]:
                    got.append(_analysis(json.loads(old[1])))
                    continue
                a = history.analyse(name, per[name], probes, p_value=p_value, min_magnitude=min_magnitude)
                got.append(a)
                fresh.append((a, newest[name]))
            if fresh:  # the change points first: a history cut short between them analyses again
                _keep_change_points(store, mid, [a for a, _ in fresh])
                store.set_series_watermarks(mid, {a.benchmark: n for a, n in fresh})
                cache.save(mid, params, fresh)
    return history.Analysed(mid, runs, per, disturbed, got)


def _keep_change_points(store: Store, machine_id: str, analyses: Iterable[history.Analysis]) -> None:
    """The change points of code or stack as the store's (status open where new, kept where known)."""
    from chipbench.store import ChangePointRecord

    words = {"regression": "slower", "improvement": "faster", "host drift": "host drift"}
    store.save_change_points(
        machine_id,
        [
            ChangePointRecord(case=c.benchmark, commit=c.commit, previous_commit=c.previous_commit,
                              ratio=c.ratio, direction=words[c.direction], p_value=c.p_value,
                              before_median_s=c.before_median_s, after_median_s=c.after_median_s,
                              changed=c.changed)
            for a in analyses
            for c in a.change_points
        ],
    )  # fmt: skip


def _analysis(d: dict[str, Any]) -> history.Analysis:
    """An analysis from its kept JSON (asdict's)."""
    noise = d["noise"]
    return history.Analysis(
        d["benchmark"],
        [history.ChangePoint(**c) for c in d["change_points"]],
        [history.HostDrift(**x) for x in d["drifts"]],
        None if noise is None else RunSpread(**noise),
    )


class _Analyses:
    """History's analyses kept in the store's database (`history_analyses`, made on first save beside the
    store's own tables): one row per machine, benchmark and parameters, with the newest run id the analysis
    saw. A cache: a store rebuilt from its files makes them again. Database errors are one line."""

    LOCK = 0x63686971
    """PostgreSQL advisory lock held while the table is made (two first histories at once)."""

    def __init__(self, store: Store) -> None:
        from sqlalchemy import Column, Integer, MetaData, Table, Text

        from chipbench.store.engine import connect

        self._url = store.url
        self._engine: Engine = connect(store.url)
        self._md = MetaData()
        self.table = Table(
            "history_analyses",
            self._md,
            Column("machine_id", Text, primary_key=True),
            Column("case_name", Text, primary_key=True),
            Column("params", Text, primary_key=True),
            Column("last_run_id", Integer, nullable=False),
            Column("analysis", Text, nullable=False),
        )

    def __enter__(self) -> _Analyses:
        return self

    def __exit__(self, *exc: object) -> None:
        self._engine.dispose()

    def _failed(self, exc: Exception, doing: str) -> UsageError:
        from chipbench.store.engine import StoreError, reason

        return StoreError(f"could not {doing} history's analyses in {self._url.redacted}: "
                          f"{self._url.scrub(reason(exc))}")  # fmt: skip

    def load(self, machine_id: str, params: str) -> dict[str, tuple[int, str]]:
        from sqlalchemy import inspect, select
        from sqlalchemy.exc import SQLAlchemyError

        t = self.table
        try:
            with self._engine.connect() as conn:
                if not inspect(conn).has_table(t.name):
                    return {}
                got = conn.execute(
                    select(t.c.case_name, t.c.last_run_id, t.c.analysis).where(
                        t.c.machine_id == machine_id, t.c.params == params
                    )
                )
                return {r.case_name: (int(r.last_run_id), r.analysis) for r in got}
        except SQLAlchemyError as exc:
            raise self._failed(exc, "read") from None

    def save(self, machine_id: str, params: str, analyses: Sequence[tuple[history.Analysis, int]]) -> None:
        """Keep these analyses (each with the newest run id it saw), replacing older ones: one transaction."""
        from sqlalchemy import text
        from sqlalchemy.dialects import postgresql, sqlite
        from sqlalchemy.exc import SQLAlchemyError

        from chipbench.store.engine import writing

        pg = self._engine.dialect.name == "postgresql"
        insert: Any = postgresql.insert if pg else sqlite.insert
        t = self.table
        try:
            with writing(self._engine) as conn:
                if pg:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.LOCK})
                self._md.create_all(conn, checkfirst=True)
                for a, last in analyses:
                    stmt = insert(t).values(
                        machine_id=machine_id, case_name=a.benchmark, params=params, last_run_id=last,
                        analysis=json.dumps(asdict(a)),
                    )  # fmt: skip
                    conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["machine_id", "case_name", "params"],
                            set_={
                                "last_run_id": stmt.excluded.last_run_id,
                                "analysis": stmt.excluded.analysis,
                            },
                        )
                    )
        except SQLAlchemyError as exc:
            raise self._failed(exc, "keep") from None


# ---------------------------------------------------------------- compare's baseline


def base_side(url: str, new: Side, *, branch: str | None, last: int | None) -> Side:
    """compare's base side from the store: the runs of the new side's machine (on `branch`), per case
    the ones `baseline.choose` picks, as `baseline.choose_baseline` narrows a folder's (module docstring)."""
    mids = sorted({d.recorded_machine_id or "unknown" for d in new.docs})
    if len(mids) != 1:
        raise UsageError(
            f"--base-store compares one machine's runs, and NEW holds {len(mids)} ({', '.join(mids)}): "
            "give the results of one"
        )
    with open_existing(url) as store:
        mid = mids[0]
        own = {hashlib.sha256(f.read_bytes()).hexdigest() for f in new.files}
        # NEW ingested already (the same bytes) is not its own baseline.
        ids = {r.id: r for r in store.runs(mid, branch=branch) if r.content_hash not in own}
        if not ids:
            on = f" on branch {branch!r}" if branch is not None else ""
            raise UsageError(
                f"no runs of machine {mid!r}{on} in the store {store.url.redacted} besides NEW: nothing to "
                "compare with"
            )
        entries = _entries(p for p in store.points(mid) if p.run_id in ids)
        picked = _picked(entries, new, last)
        wanted = [i for i, r in ids.items() if r.file in picked]
        loaded = sorted(((Path(f), d) for f, d in store.documents(wanted)), key=lambda fd: fd[0])
    files = [f for f, _ in loaded]
    docs: list[ResultsDocument] = [d for _, d in loaded]
    return baseline.choose_baseline(Side(files, docs, entries), new, last)


def _entries(points: Iterable[StoredPoint]) -> dict[str, Entry]:
    """Each case's whole history from the summary rows, as `baseline.load_side` makes it from files (a
    result without samples is none)."""
    entries: dict[str, Entry] = {}
    # In the folder's file order (sorted paths), not in time: the spread's sums then add up alike, to the bit.
    for p in sorted(points, key=lambda p: Path(p.file)):
        if p.samples == 0 or p.median_s is None:
            continue
        e = entries.setdefault(p.case, Entry(p.case, p.group))
        e.hashes.add(p.version_hash)
        e.history.append(
            Run(p.file, p.order, p.version_hash, p.stack, float(p.median_s), p.disturbed or None)
        )
    return entries


def _picked(entries: dict[str, Entry], new: Side, last: int | None) -> set[str]:
    """The files of the runs `baseline.choose` picks for some case."""
    out: set[str] = set()
    for name, e in entries.items():
        other = new.entries.get(name)
        out.update(
            r.file
            for r in baseline.choose(e.history, {r.key for r in other.history} if other else set(), last)
        )
    return out


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class Latest:
    """Which runs of each machine the report shows."""

    last: int | None = None
    """Its newest `last` runs; None: every run of its newest commit."""
    branch: str | None = None
    """Only runs of this branch."""

    def __post_init__(self) -> None:
        if self.last is not None and self.last < 1:
            raise ValueError("last must be >= 1")


def latest_documents(url: str, latest: Latest) -> list[tuple[Path, ResultsDocument]]:
    """Per machine in the store, its latest runs' documents (`Latest`), machine by machine."""
    out: list[tuple[Path, ResultsDocument]] = []
    with open_existing(url) as store:
        for mid in store.machines():
            runs = store.runs(mid, branch=latest.branch)
            if not runs:
                continue
            if latest.last is not None:
                runs = runs[-latest.last :]
            else:
                runs = [r for r in runs if r.commit == runs[-1].commit]
            out.extend((Path(f), d) for f, d in store.documents([r.id for r in runs]))
        if not out:
            on = f" on branch {latest.branch!r}" if latest.branch is not None else ""
            raise UsageError(f"the store {store.url.redacted} holds no runs{on} to report")
    return out
