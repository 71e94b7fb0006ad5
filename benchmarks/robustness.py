"""Measures how chipbench holds at its edges: hostile results files, bad command lines, fuzzed documents,
kills and interrupts. Every figure of docs/methodology.md's "Reliability" section comes from this script.

Run: .venv/bin/python benchmarks/robustness.py [--fuzz 2000] [--kills 3] [--interrupts 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit.test_hostile_files import GOOD, HOSTILE  # noqa: E402

from chipbench.core.errors import UsageError  # noqa: E402
from chipbench.gate import compare, history  # noqa: E402
from chipbench.gate.thresholds import Thresholds  # noqa: E402
from chipbench.results import validate  # noqa: E402

ENV = {**os.environ, "CI": "true", "CHIPBENCH_QUIET_RANKS": "1"}


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chipbench.cli", *args], capture_output=True, text=True, cwd=cwd, env=ENV,
        timeout=timeout,
    )  # fmt: skip


def clean(p: subprocess.CompletedProcess[str]) -> bool:
    """Exit 2, one line on stderr, no traceback."""
    err = p.stderr.strip()
    return p.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1


def hostile_files(tmp: Path) -> dict[str, Any]:
    good = tmp / "good.json"
    good.write_text(json.dumps(GOOD))
    calls = handled = tracebacks = 0
    failures = []
    for label, raw in sorted(HOSTILE.items()):
        d = tmp / f"h{calls}"
        d.mkdir()
        bad = d / "bad.json"
        bad.write_bytes(raw)
        for args in (["compare", str(good), str(bad)], ["compare", str(bad), str(good)], ["history", str(d)]):
            p = cli(*args)
            calls += 1
            handled += clean(p)
            tracebacks += "Traceback" in p.stderr
            if not clean(p):
                failures.append(f"{label}: {args[0]} exit {p.returncode}")
    return {
        "files": len(HOSTILE),
        "calls": calls,
        "handled": handled,
        "tracebacks": tracebacks,
        "failures": failures,
    }


def _mutate(doc: Any, rng: random.Random) -> Any:
    """One random change somewhere in the document: a value replaced, a key dropped, a type swapped."""
    values: list[Any] = [
        None,
        True,
        -1,
        0,
        1.5,
        -1e-3,
        1e308,
        "x",
        "0.001",
        [],
        {},
        [1e-3],
        {"data": [1]},
        "\x1b[31m",
    ]
    doc = json.loads(json.dumps(doc))
    node: Any = doc
    for _ in range(rng.randint(1, 5)):
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.3 or not isinstance(node[key], (dict, list)):
                if rng.random() < 0.2:
                    del node[key]
                else:
                    node[key] = rng.choice(values)
                return doc
            node = node[key]
        elif isinstance(node, list) and node:
            i = rng.randrange(len(node))
            if rng.random() < 0.3 or not isinstance(node[i], (dict, list)):
                node[i] = rng.choice(values)
                return doc
            node = node[i]
    return doc


def fuzz(n: int) -> dict[str, Any]:
    rng = random.Random(0)
    base = json.loads(json.dumps(GOOD))
    base["benchmarks"] = [
        {**GOOD["benchmarks"][0], "name": f"b.{i}", "stats": {"data": list(np.random.default_rng(i).lognormal(-7, 0.05, 12))}}
        for i in range(3)
    ]  # fmt: skip
    loaded = rejected = crashes = 0
    sites: dict[str, int] = {}
    t0 = time.perf_counter()
    for _ in range(n):
        raw = json.dumps(_mutate(base, rng), allow_nan=True).encode()
        try:
            doc = validate.parse(raw, Path("fuzz.json"))
            side = compare.Side([], [doc], {})
            for b in doc["benchmarks"]:
                side.entries[b["name"]] = compare.Entry(
                    b["name"], b.get("group"), set(), [np.asarray(b["stats"]["data"], float)]
                )
            compare.compare_sides(side, side, Thresholds(), n_boot=50)
            history.series([(Path("f"), doc)], None)
            loaded += 1
        except UsageError:
            rejected += 1
        except Exception as exc:  # what the run must never see
            crashes += 1
            site = f"{type(exc).__name__} at {exc.__traceback__.tb_frame.f_code.co_name if exc.__traceback__ else '?'}"
            sites[site] = sites.get(site, 0) + 1
    return {"documents": n, "loaded": loaded, "rejected_in_one_line": rejected, "uncaught": crashes,
            "sites": sites, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def huge(tmp: Path, n: int) -> dict[str, Any]:
    """`chipbench compare` of two files of n samples each (10M samples is a file of about 230 MB)."""
    if n <= 0:
        return {"skipped": True}
    rng = np.random.default_rng(0)
    paths = []
    for side, scale in (("base", 1.0), ("new", 1.25)):
        doc = json.loads(json.dumps(GOOD))
        doc["benchmarks"][0]["stats"] = {"data": (scale * rng.lognormal(np.log(1e-3), 0.05, n)).tolist()}
        p = tmp / f"{side}.json"
        p.write_text(json.dumps(doc))
        paths.append(p)
    t0 = time.perf_counter()
    r = cli("compare", str(paths[0]), str(paths[1]), "--json", timeout=900)
    wall = time.perf_counter() - t0
    verdict = json.loads(r.stdout)["results"][0]["verdict"] if r.returncode in (0, 1) else None
    return {"samples_per_side": n, "file_mb": round(paths[0].stat().st_size / 1e6), "exit": r.returncode,
            "verdict": verdict, "seconds": round(wall, 1)}  # fmt: skip


BAD_LINES: list[list[str]] = [
    ["run", "nope.bench"], ["run", "--suite", "huge"], ["run", "--device", "tpu"], ["run", "--bogus"],
    ["run", "calib.matmul", "--set", "nope=1"], ["run", "calib.matmul", "--set", "m=big"],
    ["run", "calib.matmul", "--timeout", "nan"], ["run", "calib.matmul", "--timeout", "0"],
    ["run", "calib.matmul", "--timeout", "-5"], ["run", "calib.matmul", "--time-budget", "nan"],
    ["run", "calib.matmul", "--time-budget", "inf"], ["run", "llama.train_step", "--set", "ffn_dim_multiplier=inf"],
    ["run", "calib.matmul", "--set", "m=" + "9" * 400], ["run", "dlrm.train_step", "--set", "rows=-5"],
    ["run", "dlrm.train_step", "--set", "batch_size=1.5"], ["run", "calib.matmul", "selftest.busy", "--suite", "smoke"],
    ["run", "selftest.busy", "--dist-timeout", "nan", "--nproc-per-node", "2"],
    ["calibrate", "--time-budget", "-1"], ["calibrate", "--size", "0"],
    ["run", "selftest.busy", "--output", "{tmp}"], ["run", "selftest.busy", "--output", "{file}/r.json"],
    ["run", "selftest.busy", "--markdown", "{file}/r.md"],
]  # fmt: skip


def bad_lines(tmp: Path) -> dict[str, Any]:
    a_file = tmp / "f.txt"
    a_file.write_text("x")
    work = tmp / "cwd"
    work.mkdir()
    handled, failures = 0, []
    for line in BAD_LINES:
        args = [a.format(tmp=tmp, file=a_file) for a in line]
        p = cli(*args, cwd=work)
        written = list(work.rglob("*.json")) + list(tmp.glob("*.json"))
        ok = clean(p) and not written
        handled += ok
        if not ok:
            failures.append(f"{' '.join(line)}: exit {p.returncode}")
    return {"lines": len(BAD_LINES), "handled": handled, "failures": failures}


def kills(tmp: Path, tries: int) -> dict[str, Any]:
    """kill -9 of `chipbench run` mid-benchmark, one process and two: what is left running after 30 s."""
    out: dict[str, Any] = {}
    for label, extra in (("1 process", []), ("2 processes", ["--nproc-per-node", "2"])):
        orphans = []
        for i in range(tries):
            p = subprocess.Popen(
                [sys.executable, "-m", "chipbench.cli", "run", "selftest.busy", "--set", "fail=hang",
                 "--output", str(tmp / f"k{i}.json"), *extra],
                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            parent = psutil.Process(p.pid)
            end = time.monotonic() + 180
            while time.monotonic() < end:
                kids = parent.children(recursive=True)
                if kids and any(_cpu(k) > 8.0 for k in kids):
                    break
                time.sleep(0.3)
            kids = parent.children(recursive=True)
            p.send_signal(signal.SIGKILL)
            p.wait()
            _, alive = psutil.wait_procs(kids, timeout=30)
            orphans.append(len(alive))
            for a in alive:
                a.kill()
        out[label] = {"tries": tries, "processes_left_after_30s": orphans}
    return out


def _cpu(p: psutil.Process) -> float:
    try:
        return float(p.cpu_times().user)
    except psutil.Error:
        return 0.0


def interrupts(tmp: Path, tries: int) -> dict[str, Any]:
    """Ctrl-C once the first benchmark finished, and again 0-200 ms later, while the results are saved."""
    saved = 0
    for i in range(tries):
        out = tmp / f"i{i}.json"
        p = subprocess.Popen(
            [sys.executable, "-m", "chipbench.cli", "run", "selftest.busy", "calib.copy", "--time-budget", "0.2",
             "--output", str(out)],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert p.stdout is not None
        for line in p.stdout:
            if line.startswith("[1/2]"):
                break
        p.send_signal(signal.SIGINT)
        time.sleep(random.Random(i).uniform(0, 0.2))
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
        with contextlib.suppress(OSError, ValueError, KeyError):
            saved += bool(json.loads(out.read_text())["benchmarks"])
    return {"tries": tries, "results_saved": saved}


# --- the edges (issue 33): special files, config files, outputs, extremes, signals --------------------


def _judge(p: subprocess.CompletedProcess[str] | None, *, want: tuple[int, ...] = (2,)) -> str:
    """'ok', 'hang' (no answer in 60 s), 'traceback' or 'unclean' (another exit, or more than one line)."""
    if p is None:
        return "hang"
    if "Traceback" in p.stderr:
        return "traceback"
    lines = p.stderr.strip().splitlines()
    if p.returncode not in want or (p.returncode == 2 and len(lines) != 1):
        return "unclean"
    return "ok"


def _try(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            [sys.executable, "-m", "chipbench.cli", *args], capture_output=True, text=True, cwd=cwd,
            env={**ENV, **(env or {})}, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None


def _tally(results: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"tries": len(results)}
    for k in ("ok", "hang", "traceback", "unclean"):
        out[k] = sum(v == k for v in results.values())
    out["failures"] = sorted(k for k, v in results.items() if v != "ok")
    return out


def _machine_id() -> str:
    """This machine's id: the name of its ceilings cache file."""
    from chipbench.platform import hardware

    return hardware.machine_id(hardware.environment("cpu"))


def special_files(tmp: Path) -> dict[str, Any]:
    """A FIFO, /dev/zero, /dev/null, a folder and a symlink loop where a results, thresholds, price or
    ceilings file is read."""
    good = tmp / "good.json"
    good.write_text(json.dumps(GOOD))
    fifo = tmp / "pipe.json"
    os.mkfifo(fifo)
    loop = tmp / "loop.json"
    loop.symlink_to(loop)
    specials = {"fifo": fifo, "dev-zero": Path("/dev/zero"), "dev-null": Path("/dev/null"), "loop": loop}
    got: dict[str, str] = {}
    for label, sp in specials.items():
        got[f"compare {label}"] = _judge(_try("compare", str(good), str(sp)))
        got[f"report {label}"] = _judge(_try("report", str(sp), "-o", str(tmp / "r.html")))
        got[f"--thresholds {label}"] = _judge(_try("compare", str(good), str(good), "--thresholds", str(sp)))
        got[f"--price-file {label}"] = _judge(
            _try("run", "selftest.busy", "--price-file", str(sp), "--output", str(tmp / "o.json"))
        )
        cache = tmp / f"cache-{label}"
        (cache / "ceilings").mkdir(parents=True)
        (cache / "ceilings" / f"{_machine_id()}.json").symlink_to(sp)
        got[f"ceilings cache {label}"] = _judge(_try("env", env={"CHIPBENCH_CACHE_DIR": str(cache)}))
    return _tally(got)


BAD_CONFIGS: dict[str, bytes] = {
    "100000-deep array": b"a = " + b"[" * 100_000 + b"]" * 100_000,
    "5000-deep table": b"a = {" * 5000 + b"}" * 5000,
    "not UTF-8": b"\xff\xfe x = 1",
    "not TOML": b"[machine\n",
    "unknown key": b"[machine]\nx = 1",
    "wrong type": b"benchmarks = 3",
    "2 MB": b"# " + b"x" * 2_000_000,
}


def config_files(tmp: Path) -> dict[str, Any]:
    good = tmp / "good.json"
    good.write_text(json.dumps(GOOD))
    got: dict[str, str] = {}
    for label, raw in BAD_CONFIGS.items():
        cfg = tmp / f"{len(got)}.toml"
        cfg.write_bytes(raw)
        got[f"--thresholds {label}"] = _judge(_try("compare", str(good), str(good), "--thresholds", str(cfg)))
        got[f"--price-file {label}"] = _judge(
            _try("run", "selftest.busy", "--price-file", str(cfg), "--output", str(tmp / "o.json"))
        )
    return _tally(got)


OUTPUT_LINES: list[list[str]] = [
    ["run", "selftest.busy", "--output", "{d}/same.json", "--markdown", "{d}/same.json"],
    ["report", "{r}", "-o", "{r}"],
    ["report", "{d}", "--markdown", "{r}"],
    ["compare", "{r}", "{r2}", "--markdown", "{r}"],
    ["compare", "{r}", "{r2}", "--markdown", "{r2}"],
    ["history", "{d}", "--markdown", "{r}"],
    ["run", "selftest.busy", "--price-file", "{d}/p.toml", "--output", "{d}/p.toml"],
]


def outputs(tmp: Path) -> dict[str, Any]:
    """Outputs that are inputs, or each other: refused in one line, every input as it was (lost: an input
    changed)."""
    r, r2 = tmp / "r.json", tmp / "r2.json"
    for p in (r, r2):
        p.write_text(json.dumps(GOOD))
    (tmp / "p.toml").write_text('[machine."x"]\nprice_per_hour = 1.0\n')
    before = {p: p.read_bytes() for p in (r, r2, tmp / "p.toml")}
    got, lost = {}, 0
    for line in OUTPUT_LINES:
        got[" ".join(line)] = _judge(_try(*[a.format(d=tmp, r=r, r2=r2) for a in line]))
        lost += sum(p.read_bytes() != b for p, b in before.items())
    return {**_tally(got), "lost_inputs": lost}


def extremes(tmp: Path) -> dict[str, Any]:
    """Runs at a price of 5e-324 and 1e308 dollars an hour and with subnormal ceilings, each read back by
    compare, history and report (lost: a finished run chipbench cannot read back)."""
    got, lost = {}, 0
    for label, extra, ceil in (
        ("price 5e-324", ["--price-per-hour", "5e-324"], None),
        ("price 1e308", ["--price-per-hour", "1e308"], None),
        ("ceilings 5e-324", [], 5e-324),
    ):
        d = tmp / label.replace(" ", "-")
        cache = d / "cache"
        env = {"CHIPBENCH_CACHE_DIR": str(cache)}
        if ceil is not None:
            mid = _machine_id()
            (cache / "ceilings").mkdir(parents=True)
            (cache / "ceilings" / f"{mid}.json").write_text(json.dumps(
                {"machine_id": mid, "matmul_tflops": {"fp32": ceil}, "copy_gbps": ceil}))  # fmt: skip
        out = d / "runs" / "r.json"
        p = _try("run", "calib.copy", "--time-budget", "0.1", "--output", str(out), *extra, env=env)
        got[f"run {label}"] = _judge(p, want=(0, 4))
        if not out.exists():
            lost += 1
            continue
        for cmd in (["compare", str(out), str(out)], ["history", str(out.parent)],
                    ["report", str(out), "-o", str(d / "r.html")]):  # fmt: skip
            q = _try(*cmd)
            got[f"{cmd[0]} {label}"] = _judge(q, want=(0, 3, 4))
            lost += q is not None and q.returncode == 2
    return {**_tally(got), "lost_results": lost}


def signals(tmp: Path, tries: int) -> dict[str, Any]:
    """Ctrl-C at a random moment 0.1-1.5 s after the start of `list`, `report`, `compare` and `run`:
    exit 130 ending in `chipbench: interrupted` (or done first), never a traceback."""
    good = tmp / "good.json"
    good.write_text(json.dumps(GOOD))
    commands = {"list": ["list"], "report": ["report", str(good), "-o", str(tmp / "r.html")],
                "compare": ["compare", str(good), str(good)],
                "run": ["run", "selftest.busy", "--time-budget", "0.1", "--output", str(tmp / "s.json")]}  # fmt: skip
    rng = random.Random(1)
    out: dict[str, Any] = {}
    seen: list[str] = []
    for name, argv in commands.items():
        counts = {"tries": tries, "exit_130": 0, "done_first": 0, "silent_sigint": 0,
                  "traceback_before_chipbench_ran": 0, "traceback": 0, "hang": 0, "other": 0}  # fmt: skip
        for _ in range(tries):
            p = subprocess.Popen([sys.executable, "-m", "chipbench.cli", *argv], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
            time.sleep(rng.uniform(0.1, 1.5))
            p.send_signal(signal.SIGINT)
            try:
                err = p.communicate(timeout=60)[1]
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                counts["hang"] += 1
                continue
            lines = err.strip().splitlines()
            if "Traceback" in err and "chipbench" not in err:
                # Interrupted in the interpreter's own start (runpy's imports), before chipbench's first line.
                counts["traceback_before_chipbench_ran"] += 1
                seen.append(f"{name}: exit {p.returncode}: {err.strip()[-200:]!r}")
            elif "Traceback" in err:
                counts["traceback"] += 1
                seen.append(f"{name}: exit {p.returncode}: {err.strip()[-400:]!r}")
            elif p.returncode == 130 and lines[-1:] == ["chipbench: interrupted"]:
                counts["exit_130"] += 1
            elif p.returncode == 0:
                counts["done_first"] += 1
            elif p.returncode == -signal.SIGINT and not lines:
                # Ended by SIGINT without a word: before the interpreter set any handler (its first ms)
                # or, before chipbench ignored Ctrl-C once done, in the interpreter's teardown.
                counts["silent_sigint"] += 1
            else:
                counts["other"] += 1
                seen.append(f"{name}: exit {p.returncode}: {err.strip()[-120:]!r}")
        out[name] = counts
    out["others"] = seen
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fuzz", type=int, default=2000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--interrupts", type=int, default=10)
    ap.add_argument("--huge", type=int, default=10_000_000, help="samples in the huge file (0: skip)")
    ap.add_argument("--signals", type=int, default=20, help="Ctrl-C at random moments, per command")
    ap.add_argument(
        "--only", choices=("all", "edges", "signals"), default="all",
        help="edges: only issue 33's classes; signals: only Ctrl-C at random moments",
    )  # fmt: skip
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for sub in ("files", "lines", "huge", "special", "configs", "outputs", "extremes", "signals"):
            (tmp / sub).mkdir()
        report: dict[str, Any] = {}
        if args.only == "all":
            report = {
                "hostile_files": hostile_files(tmp / "files"),
                "fuzzed_documents": fuzz(args.fuzz),
                "huge_file": huge(tmp / "huge", args.huge),
                "bad_command_lines": bad_lines(tmp / "lines"),
                "kill_9": kills(tmp, args.kills),
                "double_interrupt": interrupts(tmp, args.interrupts),
            }
        if args.only != "signals":
            report["special_files"] = special_files(tmp / "special")
            report["config_files"] = config_files(tmp / "configs")
            report["outputs_that_are_inputs"] = outputs(tmp / "outputs")
            report["extremes"] = extremes(tmp / "extremes")
        report["signals_in_the_first_second"] = signals(tmp / "signals", args.signals)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
