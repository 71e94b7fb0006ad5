"""Every command's output fits a terminal of 80 and 100 columns (`COLUMNS`, honoured when piped): no line
runs past the edge, and a long case name wraps over at most 2 lines of the results table."""

from __future__ import annotations

from pathlib import Path

import pytest

from chipbench.cli.app import main
from chipbench.results.typed import as_document
from tests.helpers import lognormal, result_doc, write_results

LONG = "llama.train_step[batch_size=1,dtype=bf16,flavor=llama3-8b,n_layers=1,seq_len=2048,vocab_size=128256]"
SHORT = "calib.copy[size_mib=16]"


def _files(root: Path) -> tuple[Path, Path]:
    """Four commits of two cases, one of them with a long name, the last one slower."""
    for i in range(4):
        write_results(
            root / f"r{i}.json",
            {LONG: lognormal(30, 1.0 + 0.3 * (i == 3), seed=i), SHORT: lognormal(30, 2e-3, seed=10 + i)},
            commit=f"c{i}",
            commit_time=f"2026-01-0{i + 1}T00:00:00+00:00",
        )
    return root / "r0.json", root / "r3.json"


def _widest(out: str) -> int:
    return max((len(line) for line in out.splitlines()), default=0)


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["list", "--suite", "full"],
        ["describe", "llama.train_step", "--set", "flavor=llama3-8b"],
        ["describe", "dlrm.train_step", "--set", "preset=dcnv2"],
        ["env", "--device", "cpu"],
        ["compare", "{a}", "{b}"],
        ["history", "{root}"],
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_each_command_fits_the_terminal(
    argv: list[str],
    columns: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = _files(tmp_path)
    monkeypatch.setenv("COLUMNS", str(columns))
    main([x.format(a=a, b=b, root=tmp_path) for x in argv])
    out = capsys.readouterr().out
    assert out.strip() and _widest(out) <= columns, out


def _name_lines(out: str, name: str) -> int:
    """Over how many lines of the table's first column `name` is written (0: not found)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("case "))
    x = len(lines[head]) - len(lines[head][len("case") :].lstrip())  # where the second column starts
    cells = [line[:x].replace(" ", "") for line in lines[head + 2 :]]
    want = name.replace(" ", "")
    for n in (1, 2, 3):
        if any(want in "".join(cells[i : i + n]) for i in range(len(cells))):
            return n
    return 0


@pytest.mark.parametrize("columns", [80, 100])
def test_the_results_table_fits_and_names_wrap_at_most_twice(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chipbench.cli.run import _report
    from chipbench.results.render import short_names

    monkeypatch.setenv("COLUMNS", str(columns))
    doc = as_document(result_doc())
    _report(doc, Path("r.json"), 0)
    out = capsys.readouterr().out
    assert _widest(out) <= columns, out
    assert "±ci95: half-width" in out and "`unstable`" in out  # the interval column's legend
    assert out.count("chipbench results") == 1  # one table, not a headline and a summary
    for full, short in short_names(doc).items():
        assert f"{short[short.rindex('[') :]} {full}" in out  # the legend gives the full case
        assert 1 <= _name_lines(out, short) <= 2, (short, out)
