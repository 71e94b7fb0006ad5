"""The checks of scripts/gpu-check.sh: fail when a figure is impossible or a run is missing, then print the
summary table last. `python scripts/gpu_check_verify.py OUT [--device cuda] [--tiny]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.platform import peaks
from chipbench.results import files
from chipbench.results.render import HEADLINE_COLUMNS, headline

EXPECTED = ("calibrate.json", "smoke.json", "llama.json", "dlrm.json")
SHARE_LIMIT = 1.05
"""A share of a ceiling this far above 1 is a counting error or a stale ceiling, not a result."""
PEAK_BAND = (0.60, 1.00)
"""Where a measured bf16 matmul ceiling must sit against the published dense peak."""


def check(out: Path, device: str, tiny: bool) -> tuple[list[str], list[dict[str, Any]]]:
    problems: list[str] = []
    docs: list[dict[str, Any]] = []
    names = list(EXPECTED) + ([] if tiny else ["llama-micro.json"])
    for name in names:
        try:
            docs.append(files.load(out / name))
        except UsageError as exc:
            problems.append(f"{name}: {exc}")
    calib = next((d for d in docs if d["chipbench"].get("suite") == "calibrate"), None)
    # Ceilings measured while the machine was busy (the dry run's --allow-busy on a shared box) are low by an
    # unknown factor: a share of them says nothing, so it is not checked, and the log says so.
    busy = calib is not None and any(b["extra_info"].get("disturbed") for b in calib["benchmarks"])
    if busy:
        print("note: the ceilings were measured on a busy machine: shares of them are not checked")
    elif tiny:
        # A 256^3 product is no ceiling (emulated bf16 runs other shapes faster than it): the dry run checks
        # the script, not the shares.
        print("note: the dry run's ceilings are measured at tiny sizes: shares of them are not checked")
    unchecked = busy or tiny
    for doc in docs:
        for e in doc["chipbench"]["errors"]:
            problems.append(f"error entry {e['name']}: {e['error_type']}: {e['message']}")
        for b in doc["benchmarks"]:
            x = b["extra_info"]
            timer = x["measurement"]["timer"]
            if device in ("cuda", "rocm") and "events" not in timer:
                problems.append(f"{b['name']}: timed with {timer}, not device events")
            if b["group"].startswith("calib."):
                continue  # the ceilings' own microbenchmarks (a small copy may fit in a cache)
            for k, v in x["metrics"].items():
                if k == "mfu" and not 0 < v <= 1:
                    problems.append(f"{b['name']}: MFU {v:.3f} outside (0, 1]")
                if k.startswith("share_of_") and v > SHARE_LIMIT and not unchecked:
                    problems.append(f"{b['name']}: {k} {v:.2f} above {SHARE_LIMIT}")
    if calib is not None and not tiny:
        name = calib["machine_info"]["device"]["name"]
        peak, why = peaks.peak_tflops(name, "bf16")
        got = [
            b["extra_info"]["metrics"]["tflops"]
            for b in calib["benchmarks"]
            if b["extra_info"]["dtype"] == "bf16"
        ]
        if peak and got and not PEAK_BAND[0] <= got[0] / peak <= PEAK_BAND[1]:
            problems.append(f"bf16 ceiling {got[0]:.0f} TFLOP/s is {got[0] / peak:.0%} of {why} ({peak})")
        elif not peak:
            print(f"note: {why}: the bf16 ceiling is not checked against a peak")
    return problems, docs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    problems, docs = check(args.out, args.device, args.tiny)
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text("gpu-check: headline"))
    for c in HEADLINE_COLUMNS:
        table.add_column(c, overflow="fold")
    for doc in docs:
        for row in headline(doc):
            table.add_row(*(Text(c) for c in row))
    Console(width=160).print(table)
    for p in problems:  # last, so that the end of the log names them
        print(f"gpu-check: FAILED: {p}")
    print(json.dumps({"problems": len(problems), "files": len(docs)}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
