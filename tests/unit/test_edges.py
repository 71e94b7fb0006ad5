"""The edges around the results reader: special files and config bombs are one line naming the path,
outputs never replace inputs or each other, figures at the extremes of floats are written as files
chipbench reads back, a write that fails goes elsewhere with a word, and a folder that cannot be read is
a warning (an error with --strict)."""

from __future__ import annotations

import copy
import errno
import functools
import json
import multiprocessing as mp
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from chipbench.cli import main
from chipbench.core import fileio, price
from chipbench.core.errors import UsageError
from chipbench.core.fileio import SkippedInput
from chipbench.execution import protocol
from chipbench.execution.pools import WorkerPool
from chipbench.gate import compare, history
from chipbench.gate.thresholds import Thresholds, load_thresholds
from chipbench.platform import ceilings
from chipbench.platform.ceilings import Ceilings
from chipbench.results import document, files, render, validate
from chipbench.results.outcomes import RunOutcome
from tests.helpers import run_outcome, write_results


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe.json"
    os.mkfifo(p)
    return p


def _results(tmp_path: Path, name: str = "r.json") -> Path:
    return write_results(tmp_path / name, {"b.x": [1e-3, 1.1e-3, 0.9e-3]})


# --- special files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "special", ["fifo", "/dev/zero", "/dev/null", "folder", "loop"], ids=lambda s: s.strip("/")
)
@pytest.mark.parametrize("reader", ["results", "thresholds", "price", "ceilings"])
def test_special_files_are_named_never_read(special: str, reader: str, tmp_path: Path, fifo: Path) -> None:
    if special == "fifo":
        path = fifo
    elif special == "folder":
        path = tmp_path
    elif special == "loop":
        path = tmp_path / "loop.json"
        path.symlink_to(path)
    else:
        path = Path(special)
    readers = {
        "results": lambda: files.load(path),
        "thresholds": lambda: load_thresholds(path, 0.05, 0.0),
        "price": lambda: price.load_file(path),
    }
    if reader == "ceilings":
        target = ceilings.path_for("m", tmp_path / "cache")
        target.parent.mkdir(parents=True)
        target.symlink_to(path)
        readers["ceilings"] = lambda: ceilings.load("m", tmp_path / "cache")
    with pytest.raises(UsageError) as e:
        readers[reader]()  # a FIFO would wait forever here; /dev/zero would read until memory runs out
    msg = str(e.value)
    named = ceilings.path_for("m", tmp_path / "cache") if reader == "ceilings" else path
    assert len(msg.splitlines()) == 1 and str(named) in msg
    words = {"fifo": "FIFO", "/dev/zero": "character device", "/dev/null": "character device",
             "folder": "folder", "loop": "symbolic links"}  # fmt: skip
    assert words[special] in msg


def test_a_file_too_large_for_a_config_is_named(tmp_path: Path) -> None:
    big = tmp_path / "price.toml"
    with big.open("wb") as f:
        f.truncate(fileio.MAX_CONFIG_BYTES + 1)  # sparse: no disk used
    with pytest.raises(UsageError, match="more than the 1 MB"):
        price.load_file(big)


@pytest.mark.parametrize("command", ["compare", "history", "report"])
def test_a_fifo_given_to_a_command_is_one_line_exit_2(
    command: str, fifo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _results(tmp_path)
    argv = {"compare": ["compare", str(good), str(fifo)], "history": ["history", str(fifo)],
            "report": ["report", str(fifo), "-o", str(tmp_path / "r.html")]}[command]  # fmt: skip
    assert main(argv) == 2
    assert "FIFO" in _one_line(capsys)


# --- config files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"a = " + b"[" * 100_000 + b"]" * 100_000,  # RecursionError inside tomllib
        b"a = {" * 5000 + b"}" * 5000,
        b"\xff\xfe not utf-8",
        b"[machine\n",
        b'threshold = "5%"\n[benchmarks]\n"x" = {threshold = {a = 1}}',
        b"[machine]\nx = 1",
        b"benchmarks = 3",
        b'[benchmarks."x"]\nnoise_floor_us = "nan"',
    ],
)
@pytest.mark.parametrize("flag", ["--thresholds", "--price-file"])
def test_every_bad_config_file_is_one_line_exit_2(
    raw: bytes, flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(raw)
    good = _results(tmp_path)
    if flag == "--thresholds":
        argv = ["compare", str(good), str(good), "--thresholds", str(cfg)]
    else:
        argv = ["run", "selftest.busy", "--price-file", str(cfg), "--output", str(tmp_path / "o.json")]
    assert main(argv) == 2
    assert str(cfg) in _one_line(capsys)


# --- outputs against inputs --------------------------------------------------------------------------


def test_outputs_apart_from_inputs_and_each_other(tmp_path: Path) -> None:
    r = _results(tmp_path)
    with pytest.raises(UsageError, match="--output and --markdown are both"):
        fileio.check_apart([("--output", tmp_path / "x.json"), ("--markdown", tmp_path / "./x.json")])
    with pytest.raises(UsageError, match="is the input BASE"):
        fileio.check_apart([("--markdown", r)], [("BASE", r)])
    with pytest.raises(UsageError, match="inside the input"):
        fileio.check_apart([("-o", r)], [("RESULTS", tmp_path)])
    link = tmp_path / "link.json"
    link.symlink_to(r)
    with pytest.raises(UsageError, match="is the input"):
        fileio.check_apart([("-o", link)], [("RESULTS", r)])
    fileio.check_apart([("-o", tmp_path / "r.html"), ("--markdown", tmp_path / "r.md")], [("R", tmp_path)])


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "selftest.busy", "--output", "{d}/same.json", "--markdown", "{d}/same.json"],
        ["report", "{r}", "-o", "{r}"],
        ["report", "{d}", "--markdown", "{r}"],
        ["compare", "{r}", "{r2}", "--markdown", "{r}"],
        ["history", "{d}", "--markdown", "{r2}"],
    ],
)
def test_an_output_that_is_an_input_is_refused_before_anything_runs(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r, r2 = _results(tmp_path), _results(tmp_path, "r2.json")
    before = {p: p.read_bytes() for p in (r, r2)}
    assert main([a.format(d=tmp_path, r=r, r2=r2) for a in argv]) == 2
    assert "replace" in _one_line(capsys)
    assert {p: p.read_bytes() for p in (r, r2)} == before
    assert not (tmp_path / "same.json").exists()


# --- figures at the extremes -------------------------------------------------------------------------


@functools.cache
def _run() -> RunOutcome:
    return run_outcome()  # the machine's environment: looked at once


def _extreme_doc(step_s: float, per_hour: float | None, ceiling: float) -> dict[str, Any]:
    run = copy.deepcopy(_run())
    payload = run.outcomes[0].payload
    payload["measurement"]["samples"] = [step_s * f for f in (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    payload["measurement"]["peak_mem_bytes"] = 2**62
    ceil = Ceilings("cpu-test", matmul_tflops={"fp32": ceiling}, copy_gbps=ceiling)
    p = price.Price(per_hour, None, "test", None) if per_hour is not None else None
    return document.build(run, ceilings=ceil, suite=None, argv=["chipbench"], commit_info={"id": "c1"},
                          price=p)  # fmt: skip


STEPS = [validate.MIN_SAMPLE_S, 1e-3, validate.MAX_SAMPLE_S]
PRICES = [None, 5e-324, 1e-320, 1.0, 1e308]
CEILINGS = [5e-324, 1e-320, 1.0, 1e308]


def test_every_file_written_at_the_extremes_is_read_back(tmp_path: Path) -> None:
    from chipbench.report import assemble, page

    paths = []
    # Every step time with every price; the ceilings in turn (each meets every step time).
    extremes = [
        (s, p, CEILINGS[(i + j) % len(CEILINGS)]) for i, s in enumerate(STEPS) for j, p in enumerate(PRICES)
    ]
    for i, (step, per_hour, ceiling) in enumerate(extremes):
        doc = _extreme_doc(step, per_hour, ceiling)
        path = files.write(doc, tmp_path / "runs" / f"{i:03d}.json")
        back = files.load_typed(path)  # the strict reader: every figure finite, or it raises
        assert back.benchmarks
        render.to_markdown(back)
        render.summary_rows(back)
        paths.append(path)
    assert len(paths) == len(extremes)
    side = compare.load_side([tmp_path / "runs"])
    compare.compare_sides(side, side, Thresholds(), n_boot=20)
    _, docs = history.load_history(tmp_path / "runs")
    history.series(docs, None)
    rep = assemble.build([tmp_path / "runs"])
    page.to_html(rep)
    page.to_markdown(rep)


def test_a_figure_that_overflows_is_absent_with_its_reason() -> None:
    doc = _extreme_doc(1e-3, 1e-320, 1e-320)
    b = doc["benchmarks"][0]["extra_info"]
    assert "samples_per_dollar" not in b["metrics"]
    assert "not a finite number" in b["unavailable"]["samples_per_dollar"]
    assert "share_of_ceiling_flops" not in b["metrics"]
    json.dumps(doc, allow_nan=False)


# --- writes that fail --------------------------------------------------------------------------------


def test_a_failed_write_goes_to_the_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    written, why = fileio.write_text_or_elsewhere(loop / "r.md", "x")
    assert why is not None and "instead" in why and written.read_text() == "x"
    written.unlink()
    real = fileio.atomic_write_text

    def full(path: Path, text: str, *, exclusive: bool = False) -> Path:
        if not exclusive:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, text, exclusive=exclusive)

    monkeypatch.setattr(fileio, "atomic_write_text", full)
    written, why = fileio.write_text_or_elsewhere(tmp_path / "r.md", "y")
    assert why is not None and "No space left" in why and written.read_text() == "y"
    written.unlink()

    def none(path: Path, text: str, *, exclusive: bool = False) -> Path:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio, "atomic_write_text", none)
    with pytest.raises(UsageError, match="nor"):
        fileio.write_text_or_elsewhere(tmp_path / "r.md", "z")


def test_an_output_through_a_symlink_loop_is_refused_first(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(UsageError, match="symlink loop"):
        fileio.check_writable(loop / "r.md", "--markdown")


@pytest.mark.parametrize("command", ["report", "compare", "history"])
def test_every_command_that_writes_falls_back_on_a_full_disk(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    r = _results(tmp_path / "runs")
    real = fileio.atomic_write_text

    def full(path: Path, text: str, *, exclusive: bool = False) -> Path:
        if not exclusive:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, text, exclusive=exclusive)

    monkeypatch.setattr(fileio, "atomic_write_text", full)
    out = tmp_path / "out.md"
    argv = {"report": ["report", str(r), "-o", str(tmp_path / "r.html"), "--markdown", str(out)],
            "compare": ["compare", str(r), str(r), "--markdown", str(out)],
            "history": ["history", str(tmp_path / "runs"), "--markdown", str(out), "--allow-empty"]}[command]  # fmt: skip
    assert main(argv) in (0, 3)
    err = capsys.readouterr().err
    assert "No space left" in err and "instead" in err and "Traceback" not in err
    for line in err.splitlines():
        if "instead" in line:
            Path(line.rsplit("wrote ", 1)[1].split(" instead")[0]).unlink()


# --- folders that cannot be read ---------------------------------------------------------------------


def test_what_a_folder_holds_but_cannot_be_read_is_a_warning(
    tmp_path: Path, fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _results(tmp_path)
    (tmp_path / "locked").mkdir()
    walk = os.walk

    def no_entry(top: Any, onerror: Any = None, **kw: Any) -> Any:
        for folder, dirs, names in walk(top, onerror=onerror, **kw):
            if folder.endswith("locked"):
                onerror(PermissionError(errno.EACCES, "Permission denied", folder))
                continue
            yield folder, dirs, names

    monkeypatch.setattr(os, "walk", no_entry)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        found = files.result_files(tmp_path)
    assert found == [tmp_path / "r.json"]
    text = sorted(str(w.message) for w in got if issubclass(w.category, SkippedInput))
    assert len(text) == 2 and "FIFO" in text[1] and "locked" in text[0] and "Permission denied" in text[0]


def test_an_unreadable_folder_is_an_error_with_strict(
    tmp_path: Path, fifo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = _results(tmp_path)
    assert main(["compare", str(tmp_path), str(r)]) == 0
    assert "warning: left out" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), str(r), "--strict"]) == 2
    assert "FIFO" in _one_line(capsys)


# --- a worker of another environment -----------------------------------------------------------------


class _Runs:
    """A pickle that, loaded by plain `pickle.loads`, would run `touch` here."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (subprocess.call, (["touch", str(self.marker)],))


def _sent(kind: str, tmp_path: Path) -> bytes:
    return {
        "garbage": b"not a pickle",
        "list": pickle.dumps(["a", "list"]),
        "bad type": pickle.dumps({"type": 3}),
        "code": pickle.dumps({"type": "result", "info": _Runs(tmp_path / "ran")}),
    }[kind]


@pytest.mark.parametrize("kind", ["garbage", "list", "bad type", "code"])
def test_a_malformed_message_from_another_environment_is_one_line_naming_it(
    kind: str, tmp_path: Path
) -> None:
    """Another environment's worker is untrusted input: a message it sends that is not plain data, or not
    a reply, is a usage error naming that python (exit 2; `ab` writes no results file), and a pickle that
    names code is never run."""
    pool = WorkerPool("cpu", python="/other/env/bin/python")
    here, there = mp.Pipe()
    pool.conn, pool.proc = here, subprocess.Popen(["sleep", "30"])
    there.send_bytes(_sent(kind, tmp_path))
    with pytest.raises(UsageError, match="/other/env/bin/python sent a malformed message"):
        pool.run({"type": "stop"}, timeout_s=5)
    assert pool.proc is None  # killed: nothing more is read from it
    assert not (tmp_path / "ran").exists()


def test_our_own_worker_sending_garbage_is_a_crash_of_its_case() -> None:
    pool = WorkerPool("cpu")
    here, there = mp.Pipe()
    pool.conn, pool.proc = here, subprocess.Popen(["sleep", "30"])
    there.send_bytes(b"not a pickle")
    reply = pool.run({"type": "stop"}, timeout_s=5)  # recorded for its case; the run goes on
    assert reply["type"] == "error" and reply["error_type"] == "crash"
    assert "sent a malformed message" in reply["message"] and pool.proc is None


def test_plain_data_loads_and_code_does_not(tmp_path: Path) -> None:
    msg = {"type": "result", "s": [1.5, 2], "t": (1, None), "b": b"x", "ok": True, "set": {1}}
    assert protocol.loads(pickle.dumps(msg)) == msg
    # What older workers sent: torch's version class (read as its string, no torch needed) and numpy scalars.
    import numpy as np
    import torch

    old = protocol.loads(pickle.dumps({"torch": torch.__version__, "x": np.float64(1.5)}))
    assert old == {"torch": str(torch.__version__), "x": 1.5} and type(old["torch"]) is str
    with pytest.raises(pickle.UnpicklingError, match="plain data only"):
        protocol.loads(pickle.dumps(_Runs(tmp_path / "ran")))
    assert not (tmp_path / "ran").exists()


def test_a_truncated_hello_is_one_line_naming_the_worker() -> None:
    pool = WorkerPool("cpu", python="/other/env/bin/python")
    here, there = mp.Pipe()
    pool.conn, pool.proc = here, subprocess.Popen(["sleep", "30"])
    os.write(there.fileno(), (1000).to_bytes(4, "big") + b"short")  # a header promising more than comes
    there.close()
    with pytest.raises(RuntimeError, match="died while starting"):
        pool.wait_hello()


# --- flags the tools they reach would refuse ---------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--nproc-per-node", "2", "--dist-timeout", "1e15"], "longer than torch.distributed takes"),
        (["--nproc-per-node", "100000"], "more processes than one node runs"),
        (["--nnodes", "2", "--rdzv-endpoint", "host:99999"], "a port 1-65535"),
        (["--nnodes", "2", "--rdzv-endpoint", "host:0"], "a port 1-65535"),
    ],
)
def test_flags_beyond_what_torchrun_takes_are_one_line(
    flags: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "selftest.busy", "--output", str(tmp_path / "r.json"), *flags]) == 2
    assert said in _one_line(capsys)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("answer", "why"),
    [('{"id": 5}', "commit_info.id"), ('{"id": "abc", "ti', "must be a JSON object"), ("[1]", "JSON object")],
)
def test_ab_refuses_a_malformed_commit_answer_before_it_runs(tmp_path: Path, answer: str, why: str) -> None:
    """Another environment's chipbench is untrusted input: a malformed commit answer is one line naming
    that environment, before any round runs (it used to end in a results file the gate then refused)."""
    from chipbench.gate import ab

    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho '{answer}'\n")
    fake.chmod(0o755)
    ab.commit_of.cache_clear()
    with pytest.raises(UsageError, match=f"chipbench of {fake} answered its commit malformed.*{why}"):
        ab.commit_of(str(fake))
    fake.write_text("#!/bin/sh\nexit 1\n")  # no answer at all (no git there): unknown, as before
    ab.commit_of.cache_clear()
    assert ab.commit_of(str(fake)).id == "unknown"


# --- Ctrl-C once the command is done -------------------------------------------------------------------


def test_a_finished_command_ignores_ctrl_c_through_the_teardown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's teardown puts back SIGINT's default action, which would end a finished command by the signal
    without a word (not its exit code): once done, the process's own `main` ignores Ctrl-C."""
    import signal

    from chipbench import cli

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(sys, "argv", ["chipbench", "list"])
    try:
        assert cli.main() == 0
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
