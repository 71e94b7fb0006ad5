"""How well a host probe's move predicts the cases' moves, on the committed results (runs nothing).

    .venv/bin/python benchmarks/probe_tolerance.py [DIR ...]   # default: the two CPU machine folders

The committed results predate the host probe, so each run's own `calib.matmul[dtype=fp32,...]` and
`calib.copy[size_mib=...]` cases stand in for it (the probe runs the same kernels, at the run's start and
end instead of among the cases). Over every pair of consecutive runs on one stack, for each other case at
one version hash in both (identical code: every move is the host's or noise), it reports how often
`gate.drift.explains` calls a move of at least 5% host drift, at several tolerances, and how often it
would excuse a planted 10% slowdown (the same pair with the new run's time x1.10). One JSON line.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

from chipbench.gate import baseline
from chipbench.gate.drift import HostDrift, explains
from chipbench.results.files import load_typed, result_files
from chipbench.results.typed import ResultsDocument

ROOTS = ("results/cpu-intel-r-xeon-r-processor-2c-amx", "results/cpu-amd-epyc-2c-avx2")
TOLERANCES = (0.03, 0.05, 0.075, 0.10)


def proxy(d: ResultsDocument, prefix: str) -> dict[str, tuple[float, str | None]]:
    return {b.name: (b.stats.median_s, b.extra_info.version_hash) for b in d.benchmarks
            if b.name.startswith(prefix) and "kernel" not in b.name and not b.extra_info.disturbed
            and b.stats.median_s}  # fmt: skip


def drift_of(a: ResultsDocument, b: ResultsDocument) -> HostDrift:
    """New over base step time of the proxy probe (each kernel's common sizes, geometric mean)."""
    got = []
    for prefix in ("calib.matmul[dtype=fp32", "calib.copy[size_mib"):
        pa, pb = proxy(a, prefix), proxy(b, prefix)
        logs = [math.log(pb[k][0] / pa[k][0]) for k in pa if k in pb and pa[k][1] == pb[k][1]]
        got.append(math.exp(float(np.mean(logs))) if logs else None)
    return HostDrift(got[0], got[1])


def pairs(roots: list[str]) -> list[tuple[float, HostDrift]]:
    """(case ratio, proxy drift) for every case at one hash in consecutive runs on one stack."""
    out = []
    for root in roots:
        docs = sorted(((f, load_typed(f)) for f in result_files(Path(root))),
                      key=lambda fd: baseline.order_key(fd[1], fd[0]))  # fmt: skip
        for (_, a), (_, b) in itertools.pairwise(docs):
            if baseline.stack(a) != baseline.stack(b):
                continue
            host = drift_of(a, b)
            before = {x.name: x for x in a.benchmarks}
            for x in b.benchmarks:
                y = before.get(x.name)
                if (
                    y is None
                    or x.name.startswith("calib.")
                    or x.extra_info.disturbed
                    or y.extra_info.disturbed
                ):
                    continue
                if (
                    x.extra_info.version_hash == y.extra_info.version_hash
                    and x.stats.median_s
                    and y.stats.median_s
                ):
                    out.append((x.stats.median_s / y.stats.median_s, host))
    return out


def main() -> None:
    got = pairs(sys.argv[1:] or list(ROOTS))
    moved = [(r, h) for r, h in got if abs(math.log(r)) >= math.log(1.05)]
    out: dict[str, object] = {"case_pairs": len(got), "moved_5pct": len(moved)}
    for tol in TOLERANCES:
        out[f"tol_{tol:g}"] = {
            "aa_moves_called_host_drift": round(sum(explains(r, h, tol) is not None for r, h in moved) / len(moved), 3),
            "planted_10pct_excused": round(sum(explains(1.10 * r, h, tol) is not None for r, h in got) / len(got), 3),
        }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
