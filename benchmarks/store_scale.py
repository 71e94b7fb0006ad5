"""The results store at fleet scale, against the folder-based commands on the same files in the same run.

    .venv/bin/python benchmarks/store_scale.py --machines 50 --commits 1000 --cases 60 --samples 100 \\
        --work /tmp/store-scale [--postgres] [--json results/store-scale/RUN.json]

Writes a synthetic fleet (`store_scale_data`: one results file per machine and commit, made by the
harness's own document builder and writer), then times each command as its own process (the real
`chipbench` entry point; wall time and the process's peak resident memory from `wait4`):

- `ingest` of every file (files per second), into SQLite and, with --postgres, into a private PostgreSQL
  server (`tests/pg_server.py`: fsync off, as in the tests);
- `history` of one machine (first with every series new, then again with none new) and of one case;
  `compare --base-last 5` of a new run against the machine's store history; `dashboard` of the store;
- the folder-based `history` and `compare` over the machine's folder (`results/<machine>/`, the layout
  `chipbench run` writes), and, with --whole-tree, `history` over the whole tree with `--machine-id` (what
  a folder of every machine costs: it parses every file);
- the dashboard's first machine page in headless Chromium: when the panels in sight were drawn (the
  page's own clock, without virtual time), and the wall time to draw all of them.

Nothing is extrapolated: the JSON says the fleet it measured. Goals (docs/measured.md#the-results-store):
`history` of one machine >= 15x faster than the folder-based one and < 2 s; dashboard < 60 s; peak memory
< 1 GiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from chipbench.platform import hardware  # noqa: E402
from store_scale_data import Fleet, case_name, generate, machine_ids, write_machine  # noqa: E402

# The command, and its peak resident memory from its own /proc (VmHWM: the high-water mark of this
# process's memory; getrusage's maxrss would also count the benchmark's own, inherited at fork).
CHIPBENCH = [
    sys.executable, "-c",
    "import atexit, os, sys\n"
    "def hwm():\n"
    "    with open('/proc/self/status') as f, open(os.environ['STORE_SCALE_HWM'], 'w') as out:\n"
    "        out.write(f.read().split('VmHWM:')[1].split()[0])\n"
    "atexit.register(hwm)\n"
    "from chipbench.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n",
]  # fmt: skip


def glob(case: str) -> str:
    """A case name as a --benchmark pattern that matches it alone (its brackets are fnmatch's)."""
    return case.replace("[", "[[]")


@dataclass(frozen=True)
class Timed:
    """One command, run once as its own process."""

    what: str
    backend: str
    """sqlite, postgresql, or folder."""
    command: str
    wall_s: float
    peak_rss_mib: float
    exit_code: int
    tail: str
    """The last line it printed (stdout, else stderr)."""


def timed(what: str, backend: str, args: list[str], shown: list[str] | None = None) -> Timed:
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as d,
    ):
        hwm = Path(d) / "hwm"
        t0 = time.perf_counter()
        p = subprocess.run([*CHIPBENCH, *args], stdout=out, stderr=err, text=True,
                           env={**os.environ, "COLUMNS": "160", "STORE_SCALE_HWM": str(hwm)})  # fmt: skip
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text = out.read() or err.read()
        kib = float(hwm.read_text()) if hwm.exists() else 0.0
    lines = [x for x in text.splitlines() if x.strip()]
    cmd = " ".join(["chipbench", *(shown or args)])
    got = Timed(what, backend, cmd, round(wall, 3), round(kib / 1024, 1), p.returncode,
                lines[-1][:300] if lines else "")  # fmt: skip
    print(f"{backend:10} {what:32} {wall:8.2f} s {got.peak_rss_mib:6.0f} MiB  exit {p.returncode}  {got.tail[:80]}",
          flush=True)  # fmt: skip
    return got


def store_commands(
    url: str, shown_url: str, root: Path, machine: str, new: Path, out: Path, backend: str
) -> list[Timed]:
    case = glob(case_name(0))
    runs = [
        (
            "ingest (every file)",
            ["ingest", str(root), "--store", url, "--branch", "main", "--reason", "commit"],
        ),
        ("history one machine, all new", ["history", "--store", url, "--machine-id", machine]),
        ("history one machine", ["history", "--store", url, "--machine-id", machine]),
        ("history one case", ["history", "--store", url, "--machine-id", machine, "--benchmark", case]),
        ("compare --base-last 5", ["compare", "--base-store", url, "--base-last", "5", str(new)]),
        ("dashboard", ["dashboard", "--store", url, "-o", str(out)]),
    ]
    return [timed(what, backend, args, [a.replace(url, shown_url) for a in args]) for what, args in runs]


def folder_commands(root: Path, machine: str, new: Path, whole_tree: bool) -> list[Timed]:
    case = glob(case_name(0))
    mine = str(root / machine)
    runs = [
        ("history one machine", ["history", mine]),
        ("history one case", ["history", mine, "--benchmark", case]),
        ("compare --base-last 5", ["compare", mine, str(new), "--base-last", "5"]),
    ]
    if whole_tree:
        runs.insert(1, ("history one machine, whole tree", ["history", str(root), "--machine-id", machine]))
    return [timed(what, "folder", args) for what, args in runs]


def browser(page: Path) -> dict[str, Any]:
    """The page in headless Chromium: first the page's own clock at the panels in sight (no virtual time:
    Chromium dumps the page once it has loaded), then the wall time until every panel was drawn."""
    from tests.browser import chromium, find_browser, status

    exe = find_browser()
    if exe is None:
        return {"skipped": "no Chromium here"}
    tmp = page.parent.parent / "chromium"
    first = status(
        chromium(
            exe, tmp, "--window-size=1400,1600", "--dump-dom", page.resolve().as_uri(), virtual=False
        ).stdout
    )
    t0 = time.perf_counter()
    done = chromium(exe, tmp, "--window-size=1400,1600", "--dump-dom", page.resolve().as_uri())
    wall = time.perf_counter() - t0
    every = status(done.stdout)
    return {
        "page": page.name, "page_bytes": page.stat().st_size, "panels": every.get("data-panels"),
        "in_sight": first.get("data-first"), "in_sight_drawn_ms": first.get("data-first-ms"),
        "all_drawn": every.get("data-drawn"), "errors": every.get("data-errors"),
        "all_drawn_wall_s_with_chromium_start": round(wall, 2),
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machines", type=int, default=50)
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--work", type=Path, required=True, help="a folder for the files, stores and pages")
    ap.add_argument("--postgres", action="store_true", help="also a private PostgreSQL server")
    ap.add_argument("--whole-tree", action="store_true", help="also the folder history over every machine")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    fleet = Fleet(args.machines, args.commits, args.cases, args.samples)
    root = args.work / "results"
    spec = args.work / "fleet.json"
    t0 = time.perf_counter()
    if not (spec.exists() and json.loads(spec.read_text()) == asdict(fleet)):
        shutil.rmtree(args.work, ignore_errors=True)
        paths = generate(fleet, root)
        spec.write_text(json.dumps(asdict(fleet)))
        print(f"wrote {len(paths)} files in {time.perf_counter() - t0:.0f} s", flush=True)
    machine = machine_ids(root)[0]
    # A new run of the first machine, outside the tree: the head a pull request would compare.
    one_more = Fleet(1, fleet.commits + 1, fleet.cases, fleet.samples, seed=99)
    new = write_machine(
        one_more, dict(hardware.environment("cpu")), 0, args.work / "new", first=fleet.commits
    )[-1]
    n_files = sum(1 for _ in root.rglob("*.json"))
    disk = sum(p.stat().st_size for p in root.rglob("*.json"))
    results: list[Timed] = []
    results += folder_commands(root, machine, new, args.whole_tree)
    db = args.work / "store.sqlite"
    db.unlink(missing_ok=True)
    results += store_commands(str(db), str(db), root, machine, new, args.work / "dashboard-sqlite", "sqlite")
    store_bytes = {"sqlite": db.stat().st_size if db.exists() else None}
    if args.postgres:
        from tests.pg_server import PgServer, unavailable

        if why := unavailable():
            print(f"no PostgreSQL: {why}", flush=True)
        else:
            server = PgServer()
            try:
                url = server.new_database()
                shown = url.replace(server.password, "***")
                results += store_commands(
                    url, shown, root, machine, new, args.work / "dashboard-pg", "postgresql"
                )
            finally:
                server.stop()
    page = next(iter(sorted((args.work / "dashboard-sqlite").glob("machine-*.html"))), None)
    drawn = (
        browser(page)
        if page and not args.no_browser
        else {"skipped": "no page" if not page else "--no-browser"}
    )
    print(json.dumps(drawn), flush=True)
    report = {
        "benchmark": "benchmarks/store_scale.py",
        "argv": sys.argv[1:],
        "machine_id": hardware.machine_id(dict(hardware.environment("cpu"))),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_1m_at_end": os.getloadavg()[0],
        "fleet": asdict(fleet),
        "files": n_files,
        "files_mib": round(disk / 2**20, 1),
        "store_bytes": store_bytes,
        "timed": [asdict(t) for t in results],
        "browser": drawn,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failed = [t for t in results if t.exit_code == 2 or t.exit_code < 0]
    for t in failed:
        print(f"failed: {t.backend} {t.what}: exit {t.exit_code}: {t.tail}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
