"""`chipbench dashboard` and `chipbench triage` on a real store, SQLite and PostgreSQL (tests/pg_server.py):
the committed results in, change points kept, the pages out; a status set by `triage` moves a change point
out of the index's open list; an empty store, a missing one and an unwritable folder are one line, exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the store needs SQLAlchemy (make setup installs it)")

from chipbench.cli import main
from chipbench.report.dashboard import slug
from chipbench.store import ChangePointRecord, open_store

ROOT = Path(__file__).resolve().parents[2]
MACHINE = "cpu-amd-epyc-2c-avx2"


def _store_with_changes(url: str, capsys: pytest.CaptureFixture[str]) -> list[int]:
    assert main(["ingest", str(ROOT / "results" / MACHINE), "--store", url, "--branch", "main"]) == 0
    with open_store(url) as store:
        runs = store.runs(MACHINE)
        cases = sorted({p.case for p in store.points(MACHINE)})[:3]
        kept = store.save_change_points(
            MACHINE,
            [
                ChangePointRecord(
                    cases[0], runs[-1].commit or "", runs[0].commit or "", 1.3, "slower", 1e-4, 1.2, 1.4
                ),
                ChangePointRecord(cases[1], runs[-1].commit or "", runs[0].commit or "", 0.8, "faster", 1e-3),
                ChangePointRecord(cases[2], runs[-1].commit or "", runs[0].commit or "", 1.1, "host drift"),
            ],
        )
    capsys.readouterr()
    return [c.id for c in kept]


def _open_rows(index: str) -> list[str]:
    table = (
        index.split('id="open-change-points"', 1)[1].split("</table>", 1)[0]
        if "open-change-points" in index
        else ""
    )
    return re.findall(r'class="change-point" data-id="(\d+)"', table)


def test_dashboard_lists_open_changes_and_triage_moves_them_apart(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slower, faster, drift = _store_with_changes(store_url, capsys)
    out = tmp_path / "dash"
    assert main(["dashboard", "--store", store_url, "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "1 machine(s)" in said and "2 open change point(s), 0 looked at" in said
    assert {p.name for p in out.iterdir()} == {
        "index.html",
        "plotly.min.js",
        "dashboard.js",
        slug(MACHINE, "machine") + ".html",
    }
    index = (out / "index.html").read_text()
    assert _open_rows(index) == [str(slower), str(faster)] or _open_rows(index) == [str(faster), str(slower)]
    assert str(drift) not in _open_rows(index)  # host drift is no regression: not in the open list
    assert "1.3x (95% CI 1.2-1.4)" in index
    page = (
        (out / slug(MACHINE, "machine") + ".html").read_text()
        if False
        else (out / (slug(MACHINE, "machine") + ".html")).read_text()
    )
    for href in re.findall(r'href="([^"#]+)#([^"]+)"', index):
        assert href[0] == slug(MACHINE, "machine") + ".html" and f'id="{href[1]}"' in page  # every link lands

    assert (
        main(
            [
                "triage",
                str(slower),
                "--status",
                "acknowledged",
                "--note",
                "torch <b>bump</b>",
                "--store",
                store_url,
            ]
        )
        == 0
    )
    assert f"change point {slower}: acknowledged (torch <b>bump</b>)" in capsys.readouterr().out
    assert main(["triage", "--store", store_url]) == 0  # the open ones, listed
    listed = capsys.readouterr().out
    assert "2 open change point(s)" in listed and "faster" in listed and "host drift" in listed
    assert main(["dashboard", "--store", store_url, "-o", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert _open_rows(index) == [str(faster)]
    seen = index.split('id="looked-at"', 1)[1]
    assert f'data-id="{slower}"' in seen and "torch &lt;b&gt;bump&lt;/b&gt;" in seen


def test_dashboard_refuses_empty_missing_and_unwritable(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store(store_url).close()  # the schema, no run
    assert main(["dashboard", "--store", store_url, "-o", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no runs" in err[0] and not (tmp_path / "d").exists()
    assert main(["dashboard", "--store", str(tmp_path / "nope.sqlite"), "-o", str(tmp_path / "d")]) == 2
    assert "no store at" in capsys.readouterr().err and not (tmp_path / "nope.sqlite").exists()
    assert main(["ingest", str(ROOT / "results" / MACHINE), "--store", store_url, "--branch", "main"]) == 0
    capsys.readouterr()
    assert main(["dashboard", "--store", store_url, "-o", str(tmp_path / "d"), "--branch", "dev"]) == 2
    assert "no run of branch dev" in capsys.readouterr().err and not (tmp_path / "d").exists()
    (tmp_path / "file").write_text("x")
    assert main(["dashboard", "--store", store_url, "-o", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["triage", "99", "--status", "fixed", "--store", store_url]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
