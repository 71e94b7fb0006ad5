from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from chipbench.core.errors import UsageError
from chipbench.core.fileio import atomic_write_json
from chipbench.platform.ceilings import Ceilings
from chipbench.results import document, files, render
from tests.helpers import result_doc as _doc
from tests.helpers import run_outcome as _run_outcome


def test_round_trip(tmp_path: Path) -> None:
    doc = _doc()
    path = files.write(doc, tmp_path / "r.json")
    back = files.load(path)
    assert back == json.loads(json.dumps(doc))
    b = back["benchmarks"][0]
    assert b["name"] == "calib.matmul[dtype=fp32,m=1024]" and b["group"] == "calib.matmul"
    assert b["stats"]["data"] == [0.010, 0.011, 0.0105, 0.0102, 0.0099, 0.0101]
    ei = b["extra_info"]
    assert ei["version_hash"] == "abc123" and ei["device"] == "cpu" and ei["dtype"] == "fp32"
    assert ei["metrics"]["samples_per_s"] == pytest.approx(32 / b["stats"]["median"])
    assert ei["metrics"]["share_of_ceiling_flops"] == pytest.approx(ei["metrics"]["tflops"] / 0.4)
    assert "share_of_peak_flops" in ei["unavailable"]  # a CPU has no published peak
    err = back["chipbench"]["errors"][0]
    assert err["name"] == "selftest.busy[fail=crash]" and err["error_type"] == "crash"
    assert back["chipbench"]["schema_version"] == 1 and back["chipbench"]["machine_id"].startswith("cpu-")


def test_default_path_has_machine_and_commit(tmp_path: Path) -> None:
    doc = _doc()
    p = files.default_path(doc, tmp_path)
    assert p.parent.name == doc["chipbench"]["machine_id"]
    assert p.name.endswith(f"_{doc['commit_info']['id'][:8]}_{os.getpid()}.json")


def test_default_paths_never_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs finishing at the same moment keep every file: a taken default name is never replaced."""
    doc = _doc()
    monkeypatch.setattr(files, "_stamp", lambda: "20260101T000000.000000Z")
    monkeypatch.chdir(tmp_path)
    saved = [files.save(doc, None).path for _ in range(3)]
    assert len(set(saved)) == 3 and all(files.load(p)["benchmarks"] for p in saved)


def test_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        p = files.write(_doc(), tmp_path / "r.json")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644


def test_failed_write_falls_back_never_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = tmp_path / "gone" / "r.json"
    target.parent.mkdir()
    target.parent.chmod(0o500)  # a folder that turned read-only (root still writes: remove it instead)
    target.parent.chmod(0o700)
    target.parent.rmdir()
    (tmp_path / "gone").write_text("a file where the folder was")
    saved = files.save(_doc(), target)
    assert saved.fallback_reason and "saved to" in saved.fallback_reason
    assert saved.path.parent == tmp_path and files.load(saved.path)["benchmarks"]


def test_markdown_summary() -> None:
    md = render.to_markdown(_doc())
    # Names render as themselves: Markdown's brackets escaped, never a link or markup.
    assert "| calib.matmul\\[dtype=fp32,m=1024\\] |" in md and "ERROR crash" in md


def test_markdown_and_terminal_escape_strings_from_files() -> None:
    from chipbench.core import text

    hostile = "b<img src=x>|[x](e)\x1b[31m*`"
    md = text.markdown(hostile)
    assert "<" not in md and "\x1b" not in md and "\\|" in md and "\\[x\\]" in md
    # What GitHub makes live even when escaped (a URL, a mention, math) goes in a code span: literal there.
    for live in ("[x](http://e) b<i>|`", "@octocat", "$x$", "fixes #12", "www.example.com"):
        md = text.markdown(live)
        fence = md[: len(md) - len(md.lstrip("`"))]
        assert fence and md.endswith(fence) and "|" not in md.replace("\\|", "")
    assert text.markdown("a`b|c://d") == "``a`b\\|c://d``"
    assert text.terminal(hostile) == "b<img src=x>|[x](e)\\x1b[31m*`"


@pytest.mark.parametrize(
    ("content", "msg"),
    [
        ("{not json", "not valid JSON"),
        ('{"benchmarks": 3}', "no 'benchmarks' list"),
        ('{"benchmarks": [{"name": "x", "stats": {}}]}', "no raw samples"),
        ('{"benchmarks": [], "chipbench": {"schema_version": 99}}', "newer than this chipbench"),
    ],
)
def test_corrupt_files_give_one_line_errors(tmp_path: Path, content: str, msg: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(UsageError, match=msg) as exc:
        files.load(p)
    assert "\n" not in str(exc.value)
    with pytest.raises(UsageError, match="cannot read"):
        files.load(tmp_path / "missing.json")


def test_interrupted_write_leaves_no_damaged_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "r.json"
    atomic_write_json(p, {"old": True})

    def boom(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)  # interrupted after part of the data was written
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(p, {"new": list(range(100_000))})
    assert json.loads(p.read_text()) == {"old": True}
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind
    with pytest.raises(ValueError):  # NaN is not JSON: nothing is written
        atomic_write_json(tmp_path / "n.json", {"x": float("nan")})
    assert not (tmp_path / "n.json").exists()


def test_exclusive_names_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def no_links(*a: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    first = atomic_write_json(tmp_path / "r.json", {"a": 1}, exclusive=True)
    second = atomic_write_json(tmp_path / "r.json", {"a": 2}, exclusive=True)
    assert (first.name, second.name) == ("r.json", "r-2.json")
    assert json.loads(first.read_text()) == {"a": 1} and json.loads(second.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-2.json", "r.json"]


def _timed(setup: Any, total: Any, after: Any) -> dict[str, Any]:
    return {"extra_info": {"measurement": {"extra": {"setup_s": setup, "total_s": total, "after_s": after}}}}


def test_time_line_says_where_the_wall_time_went() -> None:
    doc = {"chipbench": {"wall_s": 100.0}, "benchmarks": [_timed(10.0, 40.0, 5.0), _timed(2.5, 20.0, 0.0)]}
    assert render.time_line(doc) == (
        "time: 100 s from start to save; set-up 12 s, timed steps 60 s, parts passes 5 s, the rest 22 s"
    )
    # Without a wall time (a file from another tool) the parts still add up; a file from before says nothing.
    assert render.time_line({"chipbench": {}, "benchmarks": doc["benchmarks"]}) == (
        "time: set-up 12 s, timed steps 60 s, parts passes 5 s"
    )
    assert (
        render.time_line({"chipbench": {}, "benchmarks": [{"extra_info": {"measurement": {"extra": {}}}}]})
        is None
    )


def test_time_line_ignores_what_is_not_a_duration() -> None:
    hostile = [_timed("1e9", float("nan"), -5.0), _timed(True, None, float("inf")), _timed(3.0, 4.0, 1.0)]
    doc = {"chipbench": {"wall_s": "soon"}, "benchmarks": [*hostile, {"extra_info": None}, {}, []]}
    assert render.time_line(doc) == "time: set-up 3 s, timed steps 4 s, parts passes 1 s"
    assert (
        render.time_line({**doc, "chipbench": ["x"]}) == "time: set-up 3 s, timed steps 4 s, parts passes 1 s"
    )
    assert render.time_line({"chipbench": {"wall_s": 10**400}, "benchmarks": [_timed(10**400, 1, 1)]}) is None
    assert render.time_line({"chipbench": {}, "benchmarks": None}) is None


def test_typed_document_round_trips_and_keeps_unknown_keys(tmp_path: Path) -> None:
    from chipbench.results.typed import ResultsDocument

    doc = _doc()
    doc["from_another_tool"] = {"x": 1}
    doc["chipbench"]["future_field"] = [1, 2]
    b = doc["benchmarks"][0]
    b["extra_info"]["later_key"] = "kept"
    b["extra_info"]["measurement"]["extra"]["new_probe"] = {"a": None}
    b["stats"]["p999"] = 0.02
    path = files.write(doc, tmp_path / "r.json")
    typed = files.load_typed(path)
    assert typed.benchmarks[0].extra_info.version_hash == "abc123" and typed.errors[0].error_type == "crash"
    assert typed.benchmarks[0].extra_info.measurement is not None
    assert typed.benchmarks[0].extra_info.other == {"later_key": "kept"}
    # Written back: the same keys in the same order, unknown ones included.
    assert json.dumps(typed.to_json()) == json.dumps(files.load(path))
    # A plain pytest-benchmark entry gains no chipbench keys on the way through.
    plain = {"benchmarks": [{"name": "t", "stats": {"data": [0.1, 0.2], "median": 0.15}, "extra_info": {}}]}
    assert ResultsDocument.from_json(plain).to_json() == plain


def test_built_and_typed_documents_agree() -> None:
    run = _run_outcome()
    ceil = Ceilings("cpu-test", matmul_tflops={"fp32": 0.4}, copy_gbps=20.0)
    typed = document.build_document(
        run, ceilings=ceil, suite="smoke", argv=["chipbench"], commit_info={"id": "x"}
    )
    as_json = typed.to_json()
    assert list(as_json) == ["machine_info", "commit_info", "benchmarks", "datetime", "version", "chipbench"]
    assert list(as_json["benchmarks"][0]["extra_info"])[-2:] == [
        "roofline",
        "measurement",
    ]  # no scaling: one run
    assert "samples" not in as_json["benchmarks"][0]["extra_info"]["measurement"]
    assert render.summary_rows(typed) == render.summary_rows(as_json)
