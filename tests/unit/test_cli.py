"""The `chipbench` command in this process: every bad-input path (one line, exit 2, nothing written),
`describe`, `env`, `list`, output paths checked first, and Ctrl-C keeping what finished."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from chipbench.cli import main
from chipbench.results import files


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["run", "nope.bench"], "unknown benchmark 'nope.bench'"),
        (["run", "--suite", "huge"], "invalid choice: 'huge'"),
        (["run", "--device", "tpu"], "lazily evaluated backend without torch.accelerator support"),
        (["run", "--dtype", "int4"], "invalid choice: 'int4'"),
        (["run", "--bogus-flag"], "unrecognized arguments: --bogus-flag"),
        (["run", "calib.matmul", "--set", "nope=1"], "unknown config key 'nope'"),
        (["run", "calib.matmul", "--set", "m=big"], "m='big' is not a valid int"),
        (["run", "calib.matmul", "--set", "m"], "not key=value"),
        (
            ["run", "calib.matmul", "--time-budget", "-1"],
            "--time-budget: must be a finite number of seconds > 0",
        ),
        (
            ["run", "calib.matmul", "--time-budget", "nan"],
            "--time-budget: must be a finite number of seconds > 0",
        ),
        (
            ["run", "calib.matmul", "--time-budget", "inf"],
            "--time-budget: must be a finite number of seconds > 0",
        ),
        (["run", "calib.matmul", "--timeout", "0"], "--timeout: must be a finite number of seconds > 0"),
        (["run", "calib.matmul", "--timeout", "nan"], "--timeout: must be a finite number of seconds > 0"),
        (["run", "calib.matmul", "--dist-timeout", "nan"], "--dist-timeout: must be a finite number"),
        (["run", "llama.train_step", "--set", "ffn_dim_multiplier=inf"], "is not a finite number"),
        (["run", "calib.matmul", "--set", "m=" + "9" * 400], "is out of range"),
        (["run", "dlrm.train_step", "--set", "rows=-5"], "rows must be positive"),
        (["run", "dlrm.train_step", "--set", "batch_size=1.5"], "is not a valid int (a whole number)"),
        (
            ["run", "calib.matmul", "selftest.busy", "--suite", "smoke"],
            "selftest.busy has no case in the smoke suite",
        ),
        (["calibrate", "--time-budget", "-1"], "--time-budget: must be a finite number of seconds > 0"),
        (["calibrate", "--size", "0"], "--size: must be between 1 and 2^31"),
        (["ab", "--a", ".", "--b", ".", "--rounds", "0"], "--rounds: must be between 1 and 2^31"),
        (["history", ".", "--p-value", "nan"], "--p-value: must be a finite number"),
        (["describe", "calib.nope"], "unknown benchmark"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_in_process(args: list[str], msg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and err.startswith("chipbench: error:") and "\n" not in err
    assert not (tmp_path / "results").exists()


def test_describe_and_env_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "calib.matmul", "--set", "m=64", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["m"] == 64 and d["flops_per_step"] == 2 * 64 * 2048 * 2048
    assert main(["env", "--json", "--device", "cpu"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["device"]["kind"] == "cpu" and env["auto_dtype"]["dtype"] in ("fp32", "bf16")
    assert "none" in env["ceilings"] and env["machine_id"].startswith("cpu-")


def test_env_output_keeps_the_json_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # scripts/gpu-check.sh: one probe of the machine for both its log and its env.json
    assert main(["env", "--device", "cpu", "--output", str(tmp_path / "env.json")]) == 0
    table = capsys.readouterr().out
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["machine_id"] in table and "auto_dtype.dtype" in table
    assert main(["env", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out).keys() == env.keys()
    assert main(["env", "--device", "cpu", "--output", str(tmp_path)]) == 2  # a folder: said before any probe
    assert "is a folder" in capsys.readouterr().err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert "calib.matmul" in capsys.readouterr().out
    assert main(["list", "--suite", "smoke"]) == 0
    assert "calib.copy[size_mib=16]" in capsys.readouterr().out


def test_ctrl_c_saves_what_finished(tmp_path: Path) -> None:
    import signal
    import threading

    from chipbench.core.cases import Case
    from chipbench.execution.options import Destination, Listener, RunOptions
    from chipbench.execution.pools import WorkerPool
    from chipbench.execution.session import execute

    # Ctrl-C as in a terminal's foreground job. A shell starts a background job (`make test &`) with SIGINT
    # ignored, and Python keeps an ignored SIGINT: the interrupt below would then never come.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    first_done = threading.Event()

    def interrupt() -> None:
        if first_done.wait(120):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the second benchmark hangs

    threading.Thread(target=interrupt, daemon=True).start()
    out = tmp_path / "r.json"
    cases = [Case("selftest.busy", {}), Case("selftest.busy", {"fail": "hang"})]
    try:
        got = execute(
            cases,
            pool=WorkerPool("cpu"),
            options=RunOptions(time_budget_s=0.05, timeout_s=120),
            destination=Destination(None, ["chipbench"], out),
            listener=Listener(on_done=lambda oc: first_done.set()),
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert got.exit_code == 130 and got.path == out, (got.exit_code, got.doc["chipbench"]["errors"])
    saved = files.load(out)
    assert [b["name"] for b in saved["benchmarks"]] == ["selftest.busy"]
    assert saved["chipbench"]["interrupted"] is True


def test_output_paths_checked_before_any_benchmark_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chipbench.execution import pools

    def no_worker(*a: object, **k: object) -> None:
        raise AssertionError("a worker started before the output paths were checked")

    monkeypatch.setattr(pools.WorkerPool, "launch", no_worker)
    monkeypatch.chdir(tmp_path)
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    cases = [
        (["run", "selftest.busy", "--output", str(tmp_path)], "is a folder"),
        (["run", "selftest.busy", "--output", str(a_file / "r.json")], "is a file, not a folder"),
        (["run", "selftest.busy", "--markdown", str(a_file / "r.md")], "is a file, not a folder"),
        (["calibrate", "--output", str(a_file / "c.json")], "is a file, not a folder"),
        (["ab", "--a", sys.executable, "--b", sys.executable, "--output-dir", str(a_file)], "is a file, not"),
        (["compare", "a.json", "b.json", "--markdown", str(a_file / "x.md")], "is a file, not a folder"),
    ]
    for args, msg in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_interrupt_during_the_save_waits_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Ctrl-C (or SIGTERM) while the results are written is held: the file is written whole,
    then the run reports the interrupt."""
    import signal

    from chipbench.core.cases import Case
    from chipbench.execution.options import Destination, RunOptions
    from chipbench.execution.pools import WorkerPool
    from chipbench.execution.session import execute
    from chipbench.results import files as results_files

    real_save = results_files.save

    def interrupted_save(doc: dict, path: Path | None) -> results_files.Saved:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        return real_save(doc, path)

    monkeypatch.setattr(results_files, "save", interrupted_save)
    out = tmp_path / "r.json"
    got = execute(
        [Case("selftest.busy", {})], pool=WorkerPool("cpu"), options=RunOptions(time_budget_s=0.05, timeout_s=60),
        destination=Destination(None, ["chipbench"], out),
    )  # fmt: skip
    assert got.exit_code == 130 and got.path == out
    assert [b["name"] for b in files.load(out)["benchmarks"]] == ["selftest.busy"]


def test_each_command_parses_from_its_own_module_as_from_the_whole_parser() -> None:
    """`chipbench CMD` builds the parser of CMD's module alone: every command must be mapped, and its
    subparser (flags, help) must be the one the whole parser has."""
    import argparse

    from chipbench.cli.app import MODULE_OF, build_parser

    def commands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        (sub,) = (a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        return dict(sub.choices)

    whole = commands(build_parser())
    assert set(whole) == set(MODULE_OF)
    for name, parser in whole.items():
        assert commands(build_parser(name))[name].format_help() == parser.format_help(), name


def test_a_ctrl_c_that_python_wrapped_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python 3.11 wraps a Ctrl-C that lands while a dataclass body is made (a lazily imported module).
    from chipbench.cli import app

    def wrapped(argv: list[str] | None) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'left_out'") from exc

    monkeypatch.setattr(app, "_command", wrapped)
    assert app.main(["list"]) == 130 and capsys.readouterr().err == "chipbench: interrupted\n"

    def other(argv: list[str] | None) -> int:
        raise RuntimeError("a bug, not a Ctrl-C")

    monkeypatch.setattr(app, "_command", other)
    with pytest.raises(RuntimeError, match="a bug"):
        app.main(["list"])
