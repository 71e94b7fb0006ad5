"""Quality of `chipbench history` and of one run against one run, from the committed results (no benchmark runs).

    .venv/bin/python benchmarks/gate_quality.py --history [--seeds 200] [--host cpu-amd-epyc-2c-avx2]

1. Change points on the committed histories (every machine folder under results/): how many lie between
   runs of identical code and stack (the same version hash and the same recorded stack on both sides), with
   the detection on main before this change (PELT over every run, Otava's prune with a Welch t-test; copied
   here as `main_detect`) and with `history.detect` now, and how much host drift history now reports apart.
2. How far runs of identical code move (`baseline.LARGEST_SAME_CODE_MOVE`): |ratio - 1| between consecutive
   undisturbed runs of identical code and stack at one commit, pooled over the machine folders; its
   quantile at 1 - 0.05/22 (a family-wise 5% over the smoke suite's 22 cases).
3. A/A on committed files: each pair of consecutive results files at one commit, compared as `compare A B`
   does (one run against one run), before (samples alone) and now: pairs that flag anything.
4. Planted steps: generated histories whose run-to-run noise is drawn from this host's measured residuals
   (log run median minus its group's mean, over groups of runs of identical code and stack), the case's
   version hash moving every `every` commits and at the planted 10% step (half way); `history.detect` must
   find it at that commit, and find nothing in the same histories without the step.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from chipbench.gate import baseline, compare, history
from chipbench.gate.thresholds import Thresholds

ROOT = Path(__file__).resolve().parents[1] / "results"
FOLDERS = ("cpu-intel-r-xeon-r-processor-2c-amx", "cpu-amd-epyc-2c-avx2")


def main_detect(x: np.ndarray, p_value: float = 0.01, min_magnitude: float = 0.05) -> list[int]:
    """main's detection before this change: PELT candidates over every run, pruned with a Welch t-test."""
    from scipy.stats import ttest_ind

    if x.size < history.MIN_POINTS:
        return []
    cps = history.candidates(np.log(x))
    while True:
        edges, tested = [0, *cps, x.size], []
        for i, b in enumerate(cps):
            before, after = x[edges[i] : b], x[b : edges[i + 2]]
            ratio = float(np.median(after) / np.median(before))
            p = 1.0
            if before.size >= 2 and after.size >= 2:
                with np.errstate(all="ignore"):
                    p = float(ttest_ind(before, after, equal_var=False).pvalue)
                p = 1.0 if math.isnan(p) else p
            tested.append((b, p, ratio, p < p_value and abs(ratio - 1.0) >= min_magnitude))
        failing = [t for t in tested if not t[3]]
        if not failing:
            return [t[0] for t in tested]
        cps.remove(max(failing, key=lambda t: (t[1], -abs(math.log(t[2]))))[0])


def _same_code(points: list[history.Point], b: int) -> bool:
    a, z = points[b - 1], points[b]
    return (a.version_hash, a.stack) == (z.version_hash, z.stack)


def committed_histories() -> None:
    print("== 1. change points on the committed histories (p < 0.01, |ratio - 1| >= 5%)")
    for folder in FOLDERS:
        mid, docs = history.load_history(ROOT / folder)
        per, _ = history.series(docs, None)
        before = same_before = same_hash = after = same_after = regressions = drift = 0
        for name, pts in per.items():
            x = np.array([p.median_s for p in pts])
            old = main_detect(x)
            before += len(old)
            same_before += sum(_same_code(pts, b) for b in old)
            same_hash += sum(pts[b - 1].version_hash == pts[b].version_hash for b in old)
            cps = history.detect(name, pts)
            after += len(cps)
            same_after += sum(_same_code(pts, c.index) for c in cps)
            regressions += sum(c.direction == "regression" for c in cps)
            drift += len(history.host_drift(name, pts))
        print(
            f"  {mid} ({len(docs)} files, {len(per)} cases): main {before} change points, {same_hash} at one "
            f"version hash, {same_before} between identical code and stack; now {after} ({regressions} regressions), {same_after} between identical "
            f"code and stack, {drift} host drift reported apart"
        )


def _pairs() -> list[tuple[str, Path, Path, float]]:
    """(machine, file a, file b, |log ratio| of each case) of consecutive runs of identical code at one commit."""
    out = []
    for folder in FOLDERS:
        side = baseline.load_side([ROOT / folder])
        for e in side.entries.values():
            runs = sorted(e.history, key=lambda r: r.order)
            for a, b in itertools.pairwise(runs):
                if a.key == b.key and not a.disturbed and not b.disturbed and a.order[0] == b.order[0]:
                    out.append((folder, Path(a.file), Path(b.file), abs(math.log(b.median_s / a.median_s))))
    return out


def allowance_and_aa() -> None:
    pairs = _pairs()
    v = np.array([p[3] for p in pairs])
    qs = {"median": 0.5, "99th percentile": 0.99, "1 - 0.05/22": 1 - 0.05 / 22, "max": 1.0}
    shown = ", ".join(f"{k} {math.expm1(float(np.quantile(v, q))):.1%}" for k, q in qs.items())
    print(
        f"\n== 2. |ratio - 1| of {v.size} consecutive runs of identical code and stack at one commit: {shown}"
    )
    print(
        f"  LARGEST_SAME_CODE_MOVE = {baseline.LARGEST_SAME_CODE_MOVE:.2f}x (one run against one run: never a verdict)"
    )
    files = sorted({(m, a, b) for m, a, b, _ in pairs})
    flagged_before = flagged_now = 0
    for _, a, b in files:
        sa, sb = baseline.load_side([a]), baseline.load_side([b])
        comps = compare.compare_sides(sa, sb, Thresholds(), n_boot=300)
        flagged_now += any(c.verdict in ("regression", "improvement") for c in comps)
        old = [
            compare.compare_samples(sa.entries[n].runs, sb.entries[n].runs, n_boot=300).verdict
            for n in set(sa.entries) & set(sb.entries)
            if sa.entries[n].runs and sb.entries[n].runs and sa.entries[n].hashes == sb.entries[n].hashes
        ]
        flagged_before += any(v in ("regression", "improvement") for v in old)
    print(
        f"\n== 3. A/A, `compare A B` of {len(files)} pairs of consecutive results files at one commit: "
        f"flag anything (a regression or an improvement): before {flagged_before}, now {flagged_now}"
    )


def residuals(folder: str) -> np.ndarray:
    """This host's run-to-run noise: log run median minus its group's mean (groups of identical code and
    stack with two or more runs), scaled by sqrt(n / (n - 1)) for the centring."""
    out: list[float] = []
    for e in baseline.load_side([ROOT / folder]).entries.values():
        groups: dict[tuple[str | None, baseline.Stack], list[float]] = {}
        for r in e.history:
            if not r.disturbed:
                groups.setdefault(r.key, []).append(math.log(r.median_s))
        for g in groups.values():
            if len(g) >= 2:
                a = np.array(g)
                out.extend((a - a.mean()) * math.sqrt(a.size / (a.size - 1)))
    return np.array(out)


def planted(res: np.ndarray, seeds: int, commits: int, runs: int, every: int) -> str:
    found = near = extra = null_false = 0
    at_commit = commits // 2
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for step in (True, False):
            pts, h = [], 0
            for c in range(commits):
                h += c > 0 and (c % every == 0 or (step and c == at_commit))
                level = 1.1 if step and c >= at_commit else 1.0
                for _ in range(runs):
                    v = level * math.exp(rng.choice(res))
                    pts.append(history.Point(f"c{c}", "", v, "f", f"h{h}"))
            got = [cp.index for cp in history.detect("b", pts)]
            if step:
                found += at_commit * runs in got
                near += at_commit * runs not in got and bool(got)
                extra += sum(i != at_commit * runs for i in got)
            else:
                null_false += len(got)
    return (
        f"{commits} commits x {runs} runs, hash moving every {every} commits: 10% step found at its commit "
        f"in {found / seeds:.1%} of {seeds} seeds (elsewhere only: {near / seeds:.1%}); false change points "
        f"per series: {null_false / seeds:.2%} without a step, {extra / seeds:.2%} beside a step"
    )


def main(seeds: int = 200, host: str = "cpu-amd-epyc-2c-avx2") -> None:
    committed_histories()
    allowance_and_aa()
    res = residuals(host)
    sd, mad = float(res.std()), 1.4826 * float(np.median(np.abs(res - np.median(res))))
    print(
        f"\n== 4. planted steps, noise drawn from {res.size} residuals of {host} (sd {sd:.1%}, MAD-sd {mad:.1%})"
    )
    for commits, runs, every in ((60, 5, 10), (60, 10, 10), (60, 20, 10), (40, 3, 10)):
        print("  " + planted(res, seeds, commits, runs, every))
