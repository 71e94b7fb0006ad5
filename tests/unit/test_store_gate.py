"""The gate reads a results store: `history --store`, `compare --base-store` and `report --store` give what
`history DIR`, `compare DIR NEW` and `report FILES` give on the files the store was made from (the committed
results and generated histories with planted steps), on SQLite and on a real PostgreSQL server; history
analyses a benchmark again only where it has new points, and keeps a change point's status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the store needs SQLAlchemy (make setup installs it)")

from chipbench.cli import main
from chipbench.gate import history
from chipbench.gate.compare import RERUN_EXIT
from chipbench.store import IngestOptions, open_store
from tests.histories import Plan, commit, write_history

ROOT = Path(__file__).resolve().parents[2]
INTEL = "results/cpu-intel-r-xeon-r-processor-2c-amx"
AMD = "results/cpu-amd-epyc-2c-avx2"


def _out(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> str:
    got = main(argv)
    out = capsys.readouterr().out
    assert got == code, out
    return out


def _ingest(url: str, *paths: str | Path, branch: str | None = None) -> None:
    with open_store(url) as store:
        rep = store.ingest([Path(p) for p in paths], IngestOptions(branch=branch))
    assert rep.ok, rep.refused


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths, as a CI job gives them: both sides name the files alike."""
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def intel_history() -> str:
    """`history` of the committed Intel folder, once for the module (its analysis takes seconds)."""
    import contextlib
    import io
    import os

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["history", INTEL, "--json"]) == 0
    finally:
        os.chdir(here)
    return buf.getvalue()


def test_history_of_the_committed_results_from_the_store_equals_the_folders(
    store_url: str, at_root: None, intel_history: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _ingest(store_url, INTEL, AMD)
    argv = ["history", "--store", store_url, "--machine-id", INTEL.split("/")[1], "--json"]
    got = _out(capsys, argv)
    assert got == intel_history
    assert json.loads(got)["change_points"]  # the committed history holds some: the check compares something
    with open_store(store_url) as store:
        kept = store.change_points(machine_id=INTEL.split("/")[1])
    assert {(c.case, c.commit) for c in kept} == {
        (c["benchmark"], c["commit"]) for c in json.loads(got)["change_points"]
    }

    # Nothing new: no benchmark is analysed again, and the answer is the same.
    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError("analysed again without new points")

    monkeypatch.setattr(history, "analyse", refuse)
    assert _out(capsys, argv) == intel_history


def test_planted_steps_found_alike_and_only_new_series_analysed_again(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_history(tmp_path / "h", Plan())
    _ingest(store_url, tmp_path / "h")
    folder = json.loads(_out(capsys, ["history", str(tmp_path / "h"), "--json"]))
    stored = json.loads(_out(capsys, ["history", "--store", store_url, "--json"]))
    assert stored == folder
    found = {(c["benchmark"], c["commit"], c["direction"]) for c in stored["change_points"]}
    assert found == {("g.a", commit(12), "regression"), ("g.b", commit(8), "improvement"),
                     ("g.c", commit(16), "regression")}  # fmt: skip
    assert [(d["benchmark"], d["commit"]) for d in stored["host_drift"]] == [("g.d", commit(5))]

    # Someone looked at g.a's change point; a new run of g.b alone comes in.
    with open_store(store_url) as store:
        (cp,) = [c for c in store.change_points() if c.case == "g.a"]
        store.set_status(cp.id, "acknowledged", "known: the new kernel")
    doc = json.loads(files[-1].read_text())
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b["name"] == "g.b"]
    doc["datetime"] = "2026-03-02T12:00:00+00:00"
    (tmp_path / "h" / "late.json").write_text(json.dumps(doc))
    _ingest(store_url, tmp_path / "h" / "late.json")
    seen: list[str] = []
    real = history.analyse

    def counted(name: str, *a: Any, **k: Any) -> history.Analysis:
        seen.append(name)
        return real(name, *a, **k)

    monkeypatch.setattr(history, "analyse", counted)
    again = json.loads(_out(capsys, ["history", "--store", store_url, "--json"]))
    assert seen == ["g.b"]
    assert again == json.loads(_out(capsys, ["history", str(tmp_path / "h"), "--json"]))
    with open_store(store_url) as store:
        (cp,) = [c for c in store.change_points() if c.case == "g.a"]
    assert (cp.status, cp.note) == ("acknowledged", "known: the new kernel")

    # Other parameters are another analysis: every benchmark again, the same as the folder's.
    seen.clear()
    argv = ["--json", "--min-magnitude", "30%"]
    got = _out(capsys, ["history", "--store", store_url, *argv])
    assert sorted(seen) == ["g.a", "g.b", "g.c", "g.d"]
    assert got == _out(capsys, ["history", str(tmp_path / "h"), *argv])


def test_a_disturbed_newest_run_asks_for_a_rerun_on_both(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_history(tmp_path / "h", Plan(commits=8, newest_disturbed=True, seed=3))
    _ingest(store_url, tmp_path / "h")
    folder = _out(capsys, ["history", str(tmp_path / "h"), "--json", "--benchmark", "g.[cd]"], RERUN_EXIT)
    assert (
        _out(capsys, ["history", "--store", store_url, "--json", "--benchmark", "g.[cd]"], RERUN_EXIT)
        == folder
    )
    assert json.loads(folder)["disturbed"][-1]["newest"] is True


def _newest_commit_runs(folder: Path) -> list[Path]:
    """The runs of the newest commit in a folder of committed baselines (`<UTC time>_<commit>_...json`)."""
    newest = max(folder.glob("*.json"), key=lambda f: f.name)
    commit = newest.stem.split("_")[1]
    return sorted(folder.glob(f"*_{commit}_*.json"))


AMD_NEW = _newest_commit_runs(ROOT / AMD)
"""The AMD folder's newest commit's runs (3)."""


def _in_root(argv: list[str], *outputs: Path) -> tuple[str, ...]:
    """What `main(argv)` prints, run at the repository root, and the text of the files it wrote."""
    import contextlib
    import io
    import os

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            main(argv)
    finally:
        os.chdir(here)
    return buf.getvalue(), *(p.read_text() for p in outputs)


INTEL_NEW = ROOT / INTEL / "20261129T170623.493165Z_82329928_5295.json"
"""The Intel folder's newest run."""


@pytest.fixture(scope="module")
def intel_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Intel folder's two newest commits' runs but its newest (INTEL_NEW): 8 files, 2 commits."""
    base = tmp_path_factory.mktemp("intel")
    for pattern in ("*_82329928_*.json", "*_c833a251_*.json"):
        for f in (ROOT / INTEL).glob(pattern):
            if f != INTEL_NEW:
                (base / f.name).write_bytes(f.read_bytes())
    return base


@pytest.fixture(scope="module")
def intel_compare(tmp_path_factory: pytest.TempPathFactory, intel_base: Path) -> tuple[str, ...]:
    """`compare` of INTEL_NEW against the base folder's last 2 runs per case: JSON, then Markdown."""
    md = tmp_path_factory.mktemp("cmp") / "a.md"
    new = str(INTEL_NEW.relative_to(ROOT))
    return _in_root(
        ["compare", str(intel_base), "--base-last", "2", new, "--json", "--markdown", str(md)], md
    )


def test_compare_with_the_stores_last_runs_equals_the_folders(
    store_url: str, at_root: None, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    intel_compare: tuple[str, ...], intel_base: Path,
) -> None:  # fmt: skip
    new = str(INTEL_NEW.relative_to(ROOT))
    _ingest(store_url, intel_base, new, branch="main")  # NEW is in the store too: never its own baseline
    md = tmp_path / "b.md"
    argv = ["compare", "--base-store", store_url, "--base-last", "2", "--branch", "main", new, "--json"]
    stored = _out(capsys, [*argv, "--markdown", str(md)])
    assert stored == intel_compare[0]
    got = json.loads(stored)
    assert {Path(f).name.split("_")[1] for f in got["base"]} == {"c833a251", "82329928"}  # both commits
    assert INTEL_NEW.name not in " ".join(got["base"])
    assert got["summary"]["inconclusive"] > 0  # cases were compared
    # The Markdown: the same but for the title's base.
    assert md.read_text().splitlines()[1:] == intel_compare[1].splitlines()[1:]
    # Another branch holds nothing: one line, exit 2.
    assert main(["compare", "--base-store", store_url, "--branch", "topic", new]) == 2
    err = capsys.readouterr().err.strip()
    assert "no runs of machine" in err and "'topic'" in err and "\n" not in err


def test_compare_on_a_generated_history_equals_the_folders(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every branch (no --branch), the whole baseline at each case's hash (no --base-last)."""
    files = write_history(tmp_path / "h", Plan(commits=10, seed=4))
    new = tmp_path / "new.json"
    files[-1].rename(new)
    _ingest(store_url, tmp_path / "h")
    folder = _out(capsys, ["compare", str(tmp_path / "h"), str(new), "--json"])
    assert _out(capsys, ["compare", "--base-store", store_url, str(new), "--json"]) == folder
    got = json.loads(folder)["summary"]
    assert (
        sum(got[v] for v in ("unchanged", "inconclusive", "regression", "improvement")) == 4
    )  # all compared


@pytest.fixture(scope="module")
def amd_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`report`'s Markdown of the AMD folder's newest commit's files."""
    out = tmp_path_factory.mktemp("rep")
    files = [str(f.relative_to(ROOT)) for f in AMD_NEW]
    return _in_root(["report", *files, "-o", str(out / "a.html"), "--markdown", str(out / "a.md"), "--title", "t"],
                    out / "a.md")[1]  # fmt: skip


def test_report_of_the_stores_latest_runs_equals_the_report_of_their_files(
    store_url: str, at_root: None, capsys: pytest.CaptureFixture[str], tmp_path: Path, amd_report: str
) -> None:
    from chipbench.gate import stored

    _ingest(store_url, AMD)
    argv = [
        "report",
        "--store",
        store_url,
        "-o",
        str(tmp_path / "b.html"),
        "--markdown",
        str(tmp_path / "b.md"),
    ]
    _out(capsys, [*argv, "--title", "t"])
    assert (tmp_path / "b.md").read_text() == amd_report
    page = (tmp_path / "b.html").read_text()
    assert all(str(f.relative_to(ROOT)) in page for f in AMD_NEW)  # the page names the files it shows
    # --last N: each machine's newest N runs, of any commit.
    got = stored.latest_documents(store_url, stored.Latest(last=4))
    assert [str(f) for f, _ in got] == [
        str(f.relative_to(ROOT)) for f in sorted((ROOT / AMD).glob("*.json"))[-4:]
    ]


def test_bad_stores_and_mixed_sources_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_history(tmp_path / "h", Plan(commits=4))
    missing = str(tmp_path / "nope.sqlite")
    cases = [
        (["history", "--store", missing], "no store at"),
        (["history", "--store", "mysql://u@h/db"], "unknown store URL scheme"),
        (["history", str(tmp_path / "h"), "--store", missing], "not both"),
        (["compare", "--base-store", missing, str(tmp_path / "h")], "no store at"),
        (["compare", "--base-store", missing, str(tmp_path / "h"), str(tmp_path / "h")], "not both"),
        (["compare", str(tmp_path / "h"), str(tmp_path / "h"), "--branch", "main"], "--base-store"),
        (["report", "--store", missing, "-o", str(tmp_path / "r.html")], "no store at"),
        (["report", str(tmp_path / "h"), "--store", missing, "-o", str(tmp_path / "r.html")], "not both"),
        (["history"], "(DIR) or a store (--store URL)"),
        (["compare", str(tmp_path / "h")], "needs BASE and NEW"),
        (["report", "-o", str(tmp_path / "r.html")], "or a store (--store URL)"),
        (["report", str(tmp_path / "h"), "--last", "2", "-o", str(tmp_path / "r.html")], "with --store"),
    ]
    for argv, says in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err, (argv, err)
    assert not (tmp_path / "nope.sqlite").exists()  # a read never makes a store
    # Without SQLAlchemy: one line saying what to install.
    for name in [
        m for m in sys.modules if m == "sqlalchemy" or m.startswith(("sqlalchemy.", "chipbench.store"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    monkeypatch.delitem(sys.modules, "chipbench.gate.stored", raising=False)
    assert main(["history", "--store", missing]) == 2
    err = capsys.readouterr().err.strip()
    assert "SQLAlchemy" in err and "\n" not in err
