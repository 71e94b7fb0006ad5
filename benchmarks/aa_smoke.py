"""A/A on this machine: N back-to-back smoke runs of the same code, each consecutive pair compared.

    .venv/bin/python benchmarks/aa_smoke.py [--runs 20] [--suite smoke] [--out-dir DIR]

Runs `chipbench run --suite smoke --output DIR/run-NN.json` N times in a row, then
`chipbench compare run-(i-1).json run-i.json --json --allow-empty` for each of the N - 1 consecutive pairs.
Nothing changed between the runs, so any `regression` or `improvement` is a false alarm: a pair *flags*
when any case gets either (issue 31's goal: at most 1 pair in 20). `host drift`, `inconclusive`,
`unchanged` and `disturbed` flag nothing; a pair where every common case was disturbed is counted apart
(the machine was not quiet enough to say). One line per pair on stderr; the last line on stdout is one
JSON object: runs, pairs, flagged, flagged_share, disturbed_pairs, the verdicts summed over the pairs,
each pair's flagged cases, the folder and the minutes spent. Exit 0 unless a run or a compare failed.

Run it on a quiet machine: on a shared one most cases come out `disturbed` and the count says little.
Not a pytest file: pytest collects only test_*.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHIPBENCH = [sys.executable, "-m", "chipbench.cli"]
FLAGS = ("regression", "improvement")


def smoke_run(out: Path, suite: str) -> None:
    """One `chipbench run` of the suite into `out`; raises on a failed run."""
    got = subprocess.run([*CHIPBENCH, "run", "--suite", suite, "--output", str(out)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if got.returncode not in (0, 4) or not out.exists():  # 4: a case was disturbed (its file is written)
        raise SystemExit(f"chipbench run exited {got.returncode}: {got.stderr.strip()[-500:]}")


def compare_pair(base: Path, new: Path) -> dict[str, Any]:
    """`chipbench compare base new --json`'s output; raises on bad input (exit 2)."""
    got = subprocess.run([*CHIPBENCH, "compare", str(base), str(new), "--json", "--allow-empty"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if got.returncode == 2:
        raise SystemExit(f"chipbench compare {base} {new}: {got.stderr.strip()}")
    out: dict[str, Any] = json.loads(got.stdout)
    return out


def summarize(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Flagged pairs and the verdicts summed, from each pair's `compare --json`."""
    totals: dict[str, int] = {}
    flagged: list[list[str]] = []
    disturbed = 0
    for p in pairs:
        for verdict, n in p["summary"].items():
            totals[verdict] = totals.get(verdict, 0) + n
        flagged.append([f"{r['benchmark']} {r['verdict']} {r['ratio']:.3f}" for r in p["results"]
                        if r["verdict"] in FLAGS])  # fmt: skip
        judged = sum(p["summary"].get(v, 0) for v in (*FLAGS, "unchanged", "inconclusive", "host drift"))
        disturbed += bool(p["summary"].get("disturbed")) and not judged
    n_flagged = sum(bool(f) for f in flagged)
    return {"pairs": len(pairs), "flagged": n_flagged,
            "flagged_share": round(n_flagged / len(pairs), 3) if pairs else None,
            "disturbed_pairs": disturbed, "goal": "flagged <= 1 in 20", "verdicts": totals,
            "flagged_cases": flagged}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="back-to-back runs (pairs: runs - 1)")
    ap.add_argument("--suite", default="smoke")
    ap.add_argument(
        "--out-dir", type=Path, default=None, help="where the runs go (default: a temporary folder)"
    )
    args = ap.parse_args()
    if args.runs < 2:
        raise SystemExit("--runs must be at least 2 (one pair)")
    stamp = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    out_dir = args.out_dir or Path(tempfile.gettempdir()) / f"chipbench-aa-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    files = []
    for i in range(args.runs):
        f = out_dir / f"run-{i:02d}.json"
        smoke_run(f, args.suite)
        files.append(f)
        print(f"run {i + 1} of {args.runs}: {f} ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    pairs = []
    for a, b in itertools.pairwise(files):
        p = compare_pair(a, b)
        pairs.append(p)
        counts = ", ".join(f"{n} {v}" for v, n in p["summary"].items() if n)
        print(f"{a.name} -> {b.name}: {counts}", file=sys.stderr, flush=True)
    summary = {"runs": args.runs, "suite": args.suite, **summarize(pairs), "out_dir": str(out_dir),
               "minutes": round((time.monotonic() - t0) / 60, 1)}  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
