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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fuzz", type=int, default=2000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--interrupts", type=int, default=10)
    ap.add_argument("--huge", type=int, default=10_000_000, help="samples in the huge file (0: skip)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for sub in ("files", "lines", "huge"):
            (tmp / sub).mkdir()
        report = {
            "hostile_files": hostile_files(tmp / "files"),
            "fuzzed_documents": fuzz(args.fuzz),
            "huge_file": huge(tmp / "huge", args.huge),
            "bad_command_lines": bad_lines(tmp / "lines"),
            "kill_9": kills(tmp, args.kills),
            "double_interrupt": interrupts(tmp, args.interrupts),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
