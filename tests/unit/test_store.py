"""The results store (chipbench.store, `chipbench ingest`) on SQLite and on a real PostgreSQL server
(tests/pg_server.py): idempotent ingest of the committed results, hostile files refused, a failed file
leaving nothing, documents rebuilt equal to the strict reader's, the folder code's order, change points,
and a password that is never shown or kept."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sqlalchemy", reason="the store needs SQLAlchemy (make setup installs it)")

from sqlalchemy import create_engine, select, text

from chipbench.cli import main
from chipbench.core.errors import UsageError
from chipbench.gate import baseline
from chipbench.results.files import load_typed, result_files
from chipbench.results.typed import ResultsDocument
from chipbench.store import (
    ChangePointRecord,
    IngestOptions,
    StoreError,
    open_store,
    rows,
    schema,
    url,
)
from tests.helpers import MACHINE, write_results
from tests.unit.test_hostile_files import GOOD, HOSTILE

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _committed(f: Path) -> ResultsDocument | None:
    """The strict reader's document of a committed file (None: refused), read once per test process."""
    try:
        return load_typed(ROOT / f)
    except UsageError:
        return None


def _accepted(files: list[Path]) -> dict[str, Path]:
    """content hash -> first file of it, for the files the strict reader takes."""
    out: dict[str, Path] = {}
    for f in files:
        if _committed(f) is not None:
            out.setdefault(hashlib.sha256(f.read_bytes()).hexdigest(), f)
    return out


def test_committed_results_twice_same_rows_and_documents_equal(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    files = result_files(Path("results"))
    good = _accepted(files)
    expected_results = sum(len(_committed(f).benchmarks) for f in good.values())  # type: ignore[union-attr]
    with open_store(store_url) as store:
        first = store.ingest([Path("results")], IngestOptions(branch="main", reason="commit"))
        counts = store.counts()
        # A file whose bytes another already brought (a local copy of a baseline) is present, not added.
        assert len(first.added) == len(good)
        assert len(first.refused) == len(files) - len(first.added) - len(first.present)
        assert counts == {
            "runs": len(good), "results": expected_results, "samples": expected_results, "change_points": 0,
        }  # fmt: skip
        second = store.ingest([Path("results")])
        assert not second.added and store.counts() == counts
        assert {f.content_hash for f in second.present} == set(good)
        # Every run rebuilt equals the strict reader's document of its file, samples included.
        for m in store.machines():
            runs = store.runs(m)
            docs = store.documents([r.id for r in runs])
            assert [f for f, _ in docs] == [r.file for r in runs]
            for f, d in docs:
                assert d == _committed(Path(f)), f
            assert all(r.branch == "main" and r.reason == "commit" for r in runs)


def _synthetic(folder: Path) -> list[Path]:
    """Five runs of one machine whose commit times do not follow their names, and one of another."""
    rng = np.random.default_rng(1)
    times = ["2026-01-03", "2026-01-01", "2026-01-05", "2026-01-02", None]
    out = []
    for i, t in enumerate(times):
        p = write_results(
            folder / f"run{i}.json",
            {"a.x": rng.lognormal(-7, 0.02, 20), "b.y": rng.lognormal(-6, 0.02, 15)},
            commit=f"c{i}",
            commit_time=f"{t}T00:00:00+00:00" if t else "",
            hashes={"a.x": "h1" if i < 3 else "h2", "b.y": "h1"},
        )
        out.append(p)
    other = json.loads(json.dumps(MACHINE))
    other["chipbench_machine_id"] = "cpu-other-4c"
    out.append(write_results(folder / "z-other.json", {"a.x": [1e-3, 1.1e-3]}, machine=other))
    return out


def test_reads_in_the_folder_codes_order(store_url: str, tmp_path: Path) -> None:
    files = _synthetic(tmp_path / "r")
    ordered = sorted(((f, load_typed(f)) for f in files[:5]), key=lambda fd: baseline.order_key(fd[1], fd[0]))
    with open_store(store_url) as store:
        rep = store.ingest([tmp_path / "r"], IngestOptions(reason="nightly"))
        assert len(rep.added) == 6 and not rep.refused
        assert store.machines() == ["cpu-other-4c", "cpu-test-2c"]
        runs = store.runs("cpu-test-2c")
        assert [r.file for r in runs] == [str(f) for f, _ in ordered]
        assert [r.order for r in runs] == [baseline.order_key(d, f) for f, d in ordered]
        assert [r.file for r in store.runs("cpu-test-2c", last=2)] == [r.file for r in runs[-2:]]
        assert store.runs("cpu-test-2c", branch="nope") == []
        assert runs[0].stack == baseline.stack(ordered[0][1]) and runs[0].machine_id == "cpu-test-2c"
        pts = store.points("cpu-test-2c")
        want = [(str(f), b.name) for f, d in ordered for b in d.benchmarks]
        assert [(p.file, p.case) for p in pts] == want
        for p in pts:
            doc = dict(ordered)[Path(p.file)]
            b = next(b for b in doc.benchmarks if b.name == p.case)
            assert (p.median_s, p.version_hash, p.samples) == (
                b.stats.median_s,
                b.extra_info.version_hash,
                len(b.samples),
            )
        assert {p.case for p in store.points("cpu-test-2c", pattern="a.*")} == {"a.x"}
        some = store.points("cpu-test-2c", run_ids=[runs[1].id])
        assert [p.run_id for p in some] == [runs[1].id] * 2
        got = store.samples([p.result_id for p in some])
        b = ordered[1][1].benchmarks
        assert [list(got[p.result_id]) for p in some] == [list(x.samples) for x in b]


def test_hostile_files_refused_with_their_reason_the_rest_in(store_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, label in enumerate(sorted(HOSTILE)):
        (folder / f"bad{i:02d}.json").write_bytes(HOSTILE[label])
    (folder / "good.json").write_text(json.dumps(GOOD))
    with open_store(store_url) as store:
        rep = store.ingest([folder])
        assert [Path(f.path).name for f in rep.added] == ["good.json"]
        assert len(rep.refused) == len(HOSTILE)
        for f in rep.refused:
            assert Path(f.path).name in f.reason and "\n" not in f.reason, f
        assert store.counts()["runs"] == 1 and store.counts()["results"] == 1


def _good_with(label: str, change: dict[str, Any]) -> str:
    doc = json.loads(json.dumps(GOOD))
    doc["commit_info"]["id"] = label
    doc["benchmarks"][0].update(change)
    return json.dumps(doc)  # ASCII: "\u0000" and "\ud800" stay JSON escapes


def test_text_a_database_cannot_hold(store_url: str, tmp_path: Path) -> None:
    """JSON lets a string hold NUL or a lone surrogate: in a summary column (a name) the file is refused
    with why; inside kept JSON (a case's info) it is kept and read back as it was."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "nul.json").write_text(_good_with("c1", {"name": "b.\x00x"}))
    (folder / "surrogate.json").write_text(_good_with("c2", {"group": "b\ud800"}))
    kept = folder / "in-info.json"
    kept.write_text(_good_with("c3", {"extra_info": {"info": {"k": "a\x00\udfff\x1b[31m"}}}))
    odd = Path(os.fsdecode(bytes(folder) + b"/odd-\xff.json"))  # a file name that is not UTF-8
    odd.write_text(_good_with("c4", {}))
    with open_store(store_url) as store:
        rep = store.ingest([folder])
        assert sorted(Path(f.path).name for f in rep.refused) == ["nul.json", "surrogate.json"]
        assert all("NUL or a lone surrogate" in f.reason for f in rep.refused)
        assert len(rep.added) == 2
        runs = store.runs("cpu-test-2c")
        [(_, doc)] = [d for d in store.documents([r.id for r in runs]) if d[0] == str(kept)]
        assert doc == load_typed(kept) and doc.benchmarks[0].extra_info.info["k"] == "a\x00\udfff\x1b[31m"
        assert any(r.file.endswith("odd-\\xff.json") for r in runs)


def test_without_the_libraries_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _synthetic(tmp_path / "r")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # an import of it fails, as where it is absent
    assert main(["ingest", str(files[0]), "--store", "postgresql://u:pw@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "psycopg" in err and "pip install" in err
    for name in [m for m in sys.modules if m == "chipbench.store" or m.startswith("chipbench.store.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    assert main(["ingest", str(files[0]), "--store", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SQLAlchemy" in err and "pip install" in err
    assert not (tmp_path / "s.db").exists()


def test_a_failure_mid_file_leaves_nothing(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _synthetic(tmp_path / "r")
    real = rows.to_rows

    def broken(*a: Any, **kw: Any) -> rows.Rows:
        made = real(*a, **kw)  # the run and its results go in; its samples then fail (NOT NULL)
        return rows.Rows(made.run, made.results, [None] * len(made.samples))  # type: ignore[list-item]

    with open_store(store_url) as store:
        store.ingest(files[:1])
        before = store.counts()
        monkeypatch.setattr(rows, "to_rows", broken)
        with pytest.raises(StoreError, match="nothing of it was kept"):
            store.ingest(files[1:2])
        assert store.counts() == before
        monkeypatch.setattr(rows, "to_rows", real)
        assert len(store.ingest(files[1:2]).added) == 1


def test_change_points_and_watermarks(store_url: str) -> None:
    cp = ChangePointRecord("a.x", "c3", "c2", 1.2, "slower", p_value=0.001, ci_low=1.1, ci_high=1.3)
    with open_store(store_url) as store:
        [saved] = store.save_change_points("m1", [cp])
        assert (saved.status, saved.machine_id, saved.ratio, saved.case) == ("open", "m1", 1.2, "a.x")
        store.set_status(saved.id, "acknowledged", "known: the new allocator")
        # Found again with new figures: it keeps its status and note.
        [again] = store.save_change_points("m1", [ChangePointRecord("a.x", "c3", "c2", 1.25, "slower")])
        assert (again.id, again.ratio, again.status, again.note) == (
            saved.id,
            1.25,
            "acknowledged",
            "known: the new allocator",
        )
        store.save_change_points("m2", [ChangePointRecord("b.y", "c9", "c8", 0.8, "faster")])
        assert [c.machine_id for c in store.change_points()] == ["m2", "m1"]  # newest first
        assert [c.case for c in store.change_points(status="open")] == ["b.y"]
        assert [c.case for c in store.change_points(machine_id="m1")] == ["a.x"]
        with pytest.raises(UsageError, match="no change point 999"):
            store.set_status(999, "fixed")
        with pytest.raises(UsageError, match="unknown change-point status"):
            store.set_status(saved.id, "closed")
        assert store.series_watermarks("m1") == {}
        store.set_series_watermarks("m1", {"a.x": 3, "b.y": 4})
        store.set_series_watermarks("m1", {"a.x": 7})
        assert store.series_watermarks("m1") == {"a.x": 7, "b.y": 4}
        assert store.series_watermarks("m2") == {}


def test_cli_exit_codes(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _synthetic(tmp_path / "r")
    assert main(["ingest", str(files[0]), str(files[1]), "--store", store_url, "--reason", "pr"]) == 0
    out = capsys.readouterr().out
    assert "2 file(s) added" in out and "0 refused" in out
    (tmp_path / "r" / "bad.json").write_bytes(HOSTILE["sample NaN"])
    assert main(["ingest", str(tmp_path / "r"), "--store", store_url]) == 1  # refused: named; the rest in
    got = capsys.readouterr()
    assert "4 file(s) added" in got.out and "2 already there" in got.out and "1 refused" in got.out
    assert "bad.json" in got.err
    assert main(["ingest", str(tmp_path / "missing"), "--store", store_url]) == 2
    assert main(["ingest", str(files[0]), "--store", store_url, "--reason", "whim"]) == 2
    with open_store(store_url) as store:
        assert store.counts()["runs"] == 6
        assert {r.reason for r in store.runs("cpu-test-2c")} == {"pr", "manual"}


def test_password_never_shown_nor_kept(
    pg_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = pg_server.password
    good = pg_server.new_database()
    assert pw in good
    files = _synthetic(tmp_path / "r")
    (tmp_path / "r" / "bad.json").write_bytes(HOSTILE["empty"])
    assert main(["ingest", str(tmp_path / "r"), "--store", good]) == 1
    got = capsys.readouterr()
    assert pw not in got.out + got.err and "***" in got.out
    wrong = good.replace(pw, pw + "x")
    assert main(["ingest", str(files[0]), "--store", wrong]) == 2
    err = capsys.readouterr().err
    assert pw not in err and "***" in err and err.count("\n") == 1
    with open_store(good) as store:
        assert pw not in repr(store) + str(store.url) + repr(store.url)
    engine = create_engine(url.parse(good).sqlalchemy_url)
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert pw not in repr(tuple(row)), table.name
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 6
    engine.dispose()


def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert url.parse(None).sqlite_path == tmp_path / "cache" / "store.sqlite"
    with open_store(None) as store:  # the cache folder is made
        assert store.url.sqlite_path is not None and store.url.sqlite_path.is_file()
    assert url.parse("s.db").sqlite_path == Path("s.db").absolute()
    assert url.parse(f"sqlite:///{tmp_path}/x.db").sqlite_path == tmp_path / "x.db"
    pg = url.parse("postgresql://me:s3cr%40t@db.example:5433/bench")
    assert pg.dialect == "postgresql" and pg.sqlalchemy_url.drivername == "postgresql+psycopg"
    assert pg.redacted == "postgresql://me:***@db.example:5433/bench" and "s3cr" not in repr(pg) + str(pg)
    assert pg.scrub("auth failed for s3cr@t") == "auth failed for ***"
    for bad, why in [
        ("", "empty"),
        ("mysql://u@h/db", "unknown store URL scheme"),
        ("postgresql://u:pw@h:5432", "names no database"),
        ("sqlite://", "needs a file"),
    ]:
        with pytest.raises(UsageError, match=why):
            url.parse(bad)
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(tmp_path / "no" / "s.db"))
    (tmp_path / "notdb").write_text("hello, this is not a database file at all" * 100)
    with pytest.raises(StoreError, match="not a database"):
        open_store(str(tmp_path / "notdb"))


def test_a_newer_schema_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_engine(url.parse(store_url).sqlalchemy_url)
    with engine.begin() as conn:
        conn.execute(
            schema.store_meta.update().where(schema.store_meta.c.key == "schema_version").values(value="99")
        )
    engine.dispose()
    with pytest.raises(StoreError, match=r"schema is version 99.*upgrade chipbench"):
        open_store(store_url)
