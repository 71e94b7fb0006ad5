"""A run on a busy machine says so once: one line for the disturbed cases, one for the flagged figures,
each case behind --verbose; a calibration stored on a busy machine is labelled, and every share of it is
flagged; torch's is_fx_tracing notice, which says nothing about the run, is dropped where it is raised."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from chipbench.platform.ceilings import Ceilings, best_of
from chipbench.results import document
from chipbench.results.render import disturbed_summary, flags_summary, results_table
from chipbench.results.typed import as_document
from tests.helpers import run_outcome

BUSY = "its threads waited 65% of their runnable time for a CPU another process held (limit 10%)"


def _doc(ceilings: Ceilings | None, delays: tuple[float, ...] = ()) -> dict:
    run = run_outcome()
    ok = run.outcomes[0]
    outcomes = []
    for i, d in enumerate(delays or (0.0,)):
        seen = {
            "run_delay_share": d,
            "disturbed": f"its threads waited {d:.0%} of their runnable time" if d else None,
        }
        m = {**ok.payload["measurement"], "extra": {"contention": seen}}
        case = replace(ok.case, overrides={**ok.case.overrides, "m": 1024 + i})
        outcomes.append(replace(ok, case=case, payload={**ok.payload, "measurement": m}))
    return document.build(
        replace(run, outcomes=outcomes), ceilings=ceilings, suite=None, argv=[], commit_info={}
    )


def test_disturbed_cases_are_one_line_naming_the_worst() -> None:
    doc = _doc(None, (0.3, 0.73, 0.0))
    line = disturbed_summary(doc)
    assert line is not None and "\n" not in line
    assert line.startswith("disturbed: 2 of 3 cases (calib.matmul [2] worst: threads waited 73%")
    assert "rerun when quiet" in line and "--verbose" in line
    assert disturbed_summary(_doc(None, (0.0,))) is None


def test_a_busy_calibration_is_labelled_and_every_share_of_it_flagged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet = Ceilings("cpu-test", matmul_tflops={"fp32": 0.4}, copy_gbps=20.0, torch="2")
    busy = replace(quiet, matmul_tflops={"fp32": 0.0044}, copy_gbps=5.0, disturbed=BUSY)
    # A ceiling is the best seen: a quiet one keeps its figures and drops the busy label...
    assert best_of(quiet, busy) == (replace(quiet, disturbed=None), ["matmul fp32", "copy"])
    # ...and a busy one stored over nothing keeps its label, as it does through the cache's JSON.
    assert best_of(None, busy)[0].disturbed == BUSY
    assert Ceilings.from_json(busy.to_json()) == busy
    doc = _doc(busy)
    (b,) = doc["benchmarks"]
    assert doc["chipbench"]["ceilings"]["disturbed"] == BUSY
    assert any(
        f.startswith("share_of_ceiling_flops is of a ceiling measured on a disturbed")
        for f in b["extra_info"]["flags"]
    )
    assert results_table(doc)[0][5].endswith(
        "%!* matmul"
    )  # above 100% of a low, disturbed ceiling: both marks
    assert "_of_ceiling_" in (flags_summary(doc) or "")
    clean = _doc(quiet)
    assert clean["chipbench"]["ceilings"].get("disturbed") is None and flags_summary(clean) is None

    from chipbench.cli.run import _report

    monkeypatch.setenv("COLUMNS", "100")
    _report(as_document(doc), Path("r.json"), 0)
    assert capsys.readouterr().err.count("\n") == 1  # one line for the flagged case
    _report(as_document(doc), Path("r.json"), 0, verbose=True)
    flags = b["extra_info"]["flags"]
    assert capsys.readouterr().err.count("\n") == len(flags) + 1 > 2  # and each flag behind --verbose


def test_the_fx_tracing_notice_is_dropped_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    import chipbench.models.dlrm_embeddings  # noqa: F401  (installs the filter)

    log = logging.getLogger("torch.fx._symbolic_trace")
    with caplog.at_level(logging.WARNING, logger=log.name):
        log.warning(
            "is_fx_tracing will return true for both fx.symbolic_trace and torch.export. Please use ..."
        )
        log.warning("something else torch says")
    assert [r.getMessage() for r in caplog.records] == ["something else torch says"]


def test_a_busy_machine_stretches_the_default_time_out_not_a_given_one() -> None:
    from chipbench.execution.options import RunOptions
    from chipbench.execution.session import BUSY_STRETCH_MAX, case_limit_s

    default = RunOptions(time_budget_s=3.0)
    assert case_limit_s(default, 2, None) == case_limit_s(default, 2, 1.5) == 120.0  # quiet, or unknown
    assert case_limit_s(default, 2, 5.0) == pytest.approx(300.0)  # two busy loops beside our threads
    assert case_limit_s(default, 2, 40.0) == 120.0 * BUSY_STRETCH_MAX
    assert case_limit_s(RunOptions(timeout_s=30.0), 2, 5.0) == 30.0  # --timeout is the user's word


def test_the_legend_explains_a_mark_only_where_a_row_bears_it() -> None:
    from chipbench.results.render import RESULTS_COLUMNS, results_legend

    def row(of_limit: str) -> list[str]:
        return [of_limit if c == "of limit" else "x" for c in RESULTS_COLUMNS]

    plain = results_legend([row("34% copy"), row("-")])
    assert "±ci95" in plain and "`*`" not in plain and "`!`" not in plain and "disturbed" not in plain
    marked = results_legend([row("112%! copy"), row("46%* matmul")])
    assert "`!` above 100%" in marked and "`*` of a ceiling measured on a disturbed machine" in marked
