"""`chipbench compare BASE NEW`: the CI regression gate.

Per benchmark (matched by name and version hash) the gate estimates the ratio of medians NEW / BASE of the
per-step time (> 1 is slower) with a bootstrap 95% confidence interval from the raw samples (two-sample
resampling, each side independently, seeded), and a Mann-Whitney U rank test. The verdict is

- `regression`   when the whole interval lies above 1 + threshold and the rank test agrees (p < 0.05),
- `improvement`  when the whole interval lies below 1 - threshold and the rank test agrees,
- `unchanged`    when the whole interval lies inside [1 - threshold, 1 + threshold], or when the medians
  differ by less than the absolute noise floor,
- `inconclusive` otherwise (the interval straddles a threshold, too few samples, or the rank test
  disagrees); the report estimates how many more samples per side would settle it, from the interval's
  half-width shrinking as 1/sqrt(n).

Requiring the interval to clear the threshold (not merely exclude 1) is what keeps the false-alarm rate
low: a 1% shift that is real but below the threshold never fails CI. Requiring the rank test as well
guards against percentile-bootstrap intervals that are too narrow on small samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chipbench.core import text
from chipbench.gate import baseline
from chipbench.gate.baseline import LARGEST_SAME_CODE_MOVE, RunSpread, drift_level
from chipbench.gate.baseline import Entry as Entry
from chipbench.gate.baseline import Side as Side
from chipbench.gate.baseline import SingleRun as SingleRun
from chipbench.gate.baseline import load_side as load_side
from chipbench.gate.baseline import machine_differences as machine_differences
from chipbench.gate.thresholds import DEFAULT_THRESHOLD, Thresholds
from chipbench.results.wire import JSONObject

MIN_SAMPLES = 5  # fewer samples per side than this never give a definite verdict
RANK_ALPHA = 0.05
N_BOOT = 4000
SEED = 20240607
MAX_BOOT_SAMPLES = 20_000
"""A run with more samples is bootstrapped on a seeded random subset of this many (without replacement),
so the gate never stalls on a huge file: the interval is then a little wider than the whole run would
give (conservative); the ratio of medians and the rank test still use every sample."""
RERUN_EXIT = 4
"""`compare`/`ab`/`history` exit code when no regression was found but a case was measured on a disturbed
machine: CI should run it again, not fail and not pass."""

EMPTY_EXIT = 5
"""`compare`/`ab`/`history` exit code when they produced no verdict at all (no case in common, every case at
another version hash), unless `--allow-empty`: a gate that compared nothing does not pass. Where the common
cases were all disturbed, the exit is RERUN_EXIT: running again may give a verdict."""

VERDICTS = (
    "regression",
    "disturbed",
    "improvement",
    "host drift",
    "unchanged",
    "inconclusive",
    "not comparable",
    "only in base",
    "only in new",
)


# ---------------------------------------------------------------- statistics


def _boot_medians(x: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Medians of n_boot resamples of x with replacement, in chunks of ~4M values."""
    out = np.empty(n_boot)
    chunk = max(1, min(n_boot, 4_000_000 // max(1, x.size)))
    for i in range(0, n_boot, chunk):
        k = min(chunk, n_boot - i)
        idx = rng.integers(0, x.size, size=(k, x.size))
        out[i : i + k] = np.median(x[idx], axis=1)
    return out


def _boot_medians_runs(runs: list[np.ndarray], rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Two-level bootstrap: resample whole runs, then samples within each drawn run.

    Run-to-run variation (a busier machine, another frequency, a new process layout) is then part of the
    interval, which a bootstrap of the pooled samples would ignore.

    Vectorized over resamples: each row holds its k drawn runs' resampled values as their ranks in the
    sorted pool (int32s sort several times faster than floats; the same order statistics come out),
    padded past every rank to the longest possible row; each row's median is read at its own length.
    """
    k = len(runs)
    sizes = np.array([r.size for r in runs])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(runs)
    order = np.argsort(flat, kind="stable")
    rank = np.empty(flat.size, dtype=np.int32 if flat.size < 2**31 - 1 else np.int64)
    rank[order] = np.arange(flat.size)
    ranked = np.append(flat[order], np.nan)  # rank flat.size: the padding
    width = k * int(sizes.max())
    slot = np.arange(int(sizes.max()))  # position within a drawn run
    out = np.empty(n_boot)
    chunk = max(1, min(n_boot, 4_000_000 // max(1, width)))
    for i in range(0, n_boot, chunk):
        c = min(chunk, n_boot - i)
        pick = rng.integers(0, k, size=(c, k))  # (c, k) runs drawn
        n = sizes[pick][..., None]  # (c, k, 1) their lengths
        u = rng.random((c, k, slot.size))  # (c, k, S): uniform in [0, 1), scaled in place to [0, n)
        u *= n
        within = u.astype(np.int64)  # truncation is floor here (u >= 0)
        np.minimum(within, n - 1, out=within)
        within += starts[pick][..., None]
        ranks = rank[within]
        ranks[slot >= n] = flat.size
        rows = np.sort(ranks.reshape(c, width), axis=1)  # the padding sorts last
        total = n[..., 0].sum(axis=1)  # (c,) values per row
        lo = np.take_along_axis(rows, ((total - 1) // 2)[:, None], axis=1)[:, 0]
        hi = np.take_along_axis(rows, (total // 2)[:, None], axis=1)[:, 0]
        out[i : i + c] = (ranked[lo] + ranked[hi]) / 2
    return out


Samples = np.ndarray | list[float] | list[np.ndarray]


def _as_runs(x: Samples) -> list[np.ndarray]:
    if isinstance(x, list) and x and isinstance(x[0], np.ndarray):
        return [np.asarray(r, dtype=float) for r in x if len(r)]
    return [np.asarray(x, dtype=float)]


def _subset(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x if x.size <= MAX_BOOT_SAMPLES else rng.choice(x, MAX_BOOT_SAMPLES, replace=False)


def median_ci_runs(
    runs: list[np.ndarray], *, confidence: float = 0.95, n_boot: int = 1000, seed: int = SEED
) -> tuple[float, float]:
    """A 95% CI of the pooled median of several runs, run-to-run variation included (two-level bootstrap)."""
    rng = np.random.default_rng(seed)
    kept = [np.asarray(r, dtype=float) for r in runs if len(r)]  # an empty run has no median to draw
    m = _boot_medians_runs([_subset(r, rng) for r in kept], rng, n_boot)
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(m, [a, 1.0 - a])
    return float(lo), float(hi)


def ratio_ci(
    base: Samples, new: Samples, *, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = SEED
) -> tuple[float, float, float]:
    """(median(new)/median(base), low, high): a percentile bootstrap CI, each side resampled on its own.

    A side given as a list of runs (arrays) with two or more runs gets the two-level bootstrap.
    """
    rng = np.random.default_rng(seed)
    rb, rn = _as_runs(base), _as_runs(new)
    ratio = float(np.median(np.concatenate(rn)) / np.median(np.concatenate(rb)))
    rb, rn = [_subset(r, rng) for r in rb], [_subset(r, rng) for r in rn]
    b, n = np.concatenate(rb), np.concatenate(rn)
    hier = len(rb) > 1 or len(rn) > 1
    nb = min(n_boot, 2000) if hier else n_boot
    mb = _boot_medians_runs(rb, rng, nb) if len(rb) > 1 else _boot_medians(b, rng, nb)
    mn = _boot_medians_runs(rn, rng, nb) if len(rn) > 1 else _boot_medians(n, rng, nb)
    r = mn / mb
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(r, [a, 1.0 - a])
    return ratio, float(lo), float(hi)


@dataclass
class Comparison:
    benchmark: str
    group: str | None
    verdict: str
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    threshold: float = DEFAULT_THRESHOLD
    noise_floor_us: float = 0.0
    base_median_s: float | None = None
    new_median_s: float | None = None
    base_n: int = 0
    new_n: int = 0
    test: str = "mann-whitney"
    more_samples: int | None = None
    """Estimated extra samples (or runs, when runs are pooled) per side that would settle an inconclusive verdict."""
    note: str = ""
    base_files: tuple[str, ...] = ()
    """The files of the base runs it was compared with (a folder baseline: the runs chosen at one hash)."""
    probe: str = ""
    """The host probe's drift over the same files, `probe 1.083|1.012` (matmul|copy, new/base step time;
    gate.drift.judge), where both sides carry one; a case that moved as it did is `host drift`."""


def compare_samples(
    base: Samples,
    new: Samples,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    noise_floor_s: float = 0.0,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    confidence: float = 0.95,
    single_run: SingleRun | None = None,
) -> Comparison:
    """The gate's verdict for one benchmark from raw per-step times (seconds) of both sides.

    Each side is one array of samples, or a list of arrays (one per run) to be pooled. `confidence` is
    the interval's; the tests' level is 1 - confidence (a sequential `ab` lowers it per look). The
    verdict names no benchmark: the caller, who knows which it is, labels it.

    Where a side has a single run, the samples cannot show the run-to-run spread (they share their run's
    host state): `single_run` says what to do then (None: the samples alone decide, as for a side given
    as one array of samples).
    """
    from scipy.stats import mannwhitneyu

    b = np.concatenate(_as_runs(base))
    n = np.concatenate(_as_runs(new))
    c = Comparison(
        "", None, "inconclusive", threshold=threshold, noise_floor_us=noise_floor_s * 1e6,
        base_n=int(b.size), new_n=int(n.size),
    )  # fmt: skip
    if b.size == 0 or n.size == 0:
        c.note = "no samples"
        return c
    c.base_median_s, c.new_median_s = float(np.median(b)), float(np.median(n))
    if c.base_median_s <= 0:
        c.note = "base median is not positive"
        return c
    c.ratio, c.ci_low, c.ci_high = ratio_ci(base, new, n_boot=n_boot, seed=seed, confidence=confidence)
    if b.size >= 2 and n.size >= 2:
        c.p_value = float(mannwhitneyu(n, b, alternative="two-sided").pvalue)
    rb, rn = _as_runs(base), _as_runs(new)
    unknown_spread = _widen_for_runs(c, rb, rn, confidence, single_run)
    up, down = 1.0 + threshold, 1.0 - threshold
    if abs(c.new_median_s - c.base_median_s) < noise_floor_s:
        c.verdict = "unchanged"
        c.note = f"difference below the noise floor ({noise_floor_s * 1e6:g} us)"
        return c
    nmin = min(b.size, n.size)
    runs = min(len(_as_runs(base)), len(_as_runs(new)))
    unit, units = ("runs", runs) if max(len(_as_runs(base)), len(_as_runs(new))) > 1 else ("samples", nmin)
    if nmin < MIN_SAMPLES:
        c.verdict = "inconclusive"
        c.more_samples = MIN_SAMPLES - nmin
        c.note = f"too few samples ({nmin}); need at least {MIN_SAMPLES} per side"
        return c
    significant = c.p_value is not None and c.p_value < RANK_ALPHA * (1.0 - confidence) / 0.05
    if c.ci_low > up:
        c.verdict = "regression" if significant else "inconclusive"
    elif c.ci_high < down:
        c.verdict = "improvement" if significant else "inconclusive"
    elif c.ci_low >= down and c.ci_high <= up:
        c.verdict = "unchanged"
    else:
        c.verdict = "inconclusive"
    if c.verdict == "inconclusive":
        if not (c.ci_low <= up <= c.ci_high or c.ci_low <= down <= c.ci_high):
            c.note = f"{c.test} not significant (p={c.p_value:.2g})"
            c.more_samples = units  # doubling is a reasonable guess
        else:
            c.more_samples = _more_samples(c.ratio, c.ci_low, c.ci_high, up, down, units)
            c.note = (
                f"interval straddles {'1+' if c.ci_low <= up <= c.ci_high else '1-'}threshold"
                + (f"; ~{c.more_samples} more {unit} per side would settle it" if c.more_samples else "")
                + ("" if c.more_samples else "; the estimate sits on the threshold")
            )
    if unknown_spread and single_run is not None:
        _spread_unknown(c)
    return c


def _widen_for_runs(
    c: Comparison, rb: list[np.ndarray], rn: list[np.ndarray], confidence: float, single: SingleRun | None
) -> bool:
    """Widen c's interval (and take its p) from the run-to-run spread; True where it is unknown."""
    assert c.ratio is not None and c.ci_low is not None and c.ci_high is not None
    if len(rb) >= 2 and len(rn) >= 2:
        # Runs pooled on both sides: the runs, not the samples, are the independent units. Widen the
        # interval to a Welch t interval on the log of the run medians, and take the significance from
        # the same test (a rank test on pooled samples treats correlated samples as independent).
        run_ci = _run_level(rb, rn, confidence)
        if run_ci is not None:
            lo, hi, p = run_ci
            c.ci_low, c.ci_high = min(c.ci_low, lo), max(c.ci_high, hi)
            c.p_value, c.test = p, "welch-t on run medians"
        return False
    if single is None:
        return False
    known = single.drift or _own_spread(rb, rn)
    if single.floor is not None and (known is None or single.floor.sd > known.sd):
        known = single.floor
    if known is None:
        return True
    lo, hi, p = drift_level(c.ratio, known, len(rb), len(rn), confidence)
    c.ci_low, c.ci_high = min(c.ci_low, lo), max(c.ci_high, hi)
    c.p_value, c.test = p, f"t on run drift (sd {known.sd:.1%} from {known.source})"
    return False


def _own_spread(rb: list[np.ndarray], rn: list[np.ndarray]) -> RunSpread | None:
    """The spread between the runs of the side(s) with several, pooled (both sides at one hash)."""
    groups = [[float(np.median(r)) for r in side] for side in (rb, rn) if len(side) >= 2]
    return baseline.spread(groups, "compared")


def _spread_unknown(c: Comparison) -> None:
    """One run against one run, the run-to-run spread unknown: no verdict, whatever it moved."""
    if c.verdict not in ("regression", "improvement", "unchanged"):
        return
    c.verdict, c.more_samples = "inconclusive", None
    c.note = (
        f"one run against one run: the host's drift cannot be told from a change (back-to-back runs of "
        f"identical code have moved up to {LARGEST_SAME_CODE_MOVE:.2f}x here); pool runs on a side "
        f"(a folder of runs) or run `chipbench ab`"
    )


def _run_level(
    rb: list[np.ndarray], rn: list[np.ndarray], confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """(low, high, p) of the ratio of run medians from a Welch t-test on their logs; None if degenerate."""
    from scipy.stats import ttest_ind

    lb = np.log([np.median(r) for r in rb])
    ln = np.log([np.median(r) for r in rn])
    if np.ptp(lb) == 0 and np.ptp(ln) == 0:
        return None
    res = ttest_ind(ln, lb, equal_var=False)
    ci = res.confidence_interval(confidence)
    if not (math.isfinite(ci.low) and math.isfinite(ci.high)):
        return None
    return math.exp(ci.low), math.exp(ci.high), float(res.pvalue)


def _more_samples(ratio: float, lo: float, hi: float, up: float, down: float, n: int) -> int | None:
    """Extra samples per side for the CI (half-width ~ 1/sqrt(n), log scale) to clear the threshold it straddles."""
    r, ll, hh = math.log(ratio), math.log(lo), math.log(hi)
    need = 0.0
    for bound in (math.log(up), math.log(down)):
        if not (ll <= bound <= hh):
            continue
        d = abs(r - bound)
        w = (hh - r) if bound > r else (r - ll)
        if d < 1e-9 or w <= 0:
            return None
        need = max(need, n * (w / d) ** 2)
    extra = math.ceil(need * 1.1) - n  # 10% margin
    return max(1, extra)


def compare_sides(
    base: Side,
    new: Side,
    thresholds: Thresholds,
    *,
    n_boot: int = N_BOOT,
    ignore_version_hash: bool = False,
    confidence: float = 0.95,
    family_wise: bool = False,
) -> list[Comparison]:
    """One verdict per benchmark name. A benchmark whose version hash differs between the sides is "not
    comparable", unless `ignore_version_hash` (checking that a change of the timed code, such as a
    refactor, left the figures where they were): then it is compared and the note says so.

    `family_wise`: `confidence` holds for the verdicts together, not for each (Bonferroni: each case at
    1 - (1 - confidence) / m, m the cases both sides hold): at 95% a case, a suite of 22 identical cases
    would flag something in two comparisons of three."""
    out: list[Comparison] = []
    names = sorted(set(base.entries) | set(new.entries))
    machine_spread = baseline.pooled(e.drift for e in base.entries.values())
    if family_wise:
        m = max(1, len(set(base.entries) & set(new.entries)))
        confidence = 1.0 - (1.0 - confidence) / m
    for name in names:
        eb, en = base.entries.get(name), new.entries.get(name)
        group = (eb or en).group if (eb or en) else None  # type: ignore[union-attr]
        thr, floor = thresholds.for_benchmark(name, group)
        if eb is None or en is None:
            out.append(
                Comparison(
                    name,
                    group,
                    "only in new" if eb is None else "only in base",
                    threshold=thr,
                    noise_floor_us=floor * 1e6,
                )
            )
            continue
        hashes = (eb.hashes | en.hashes) - {None}
        hb = ",".join(sorted(str(h) for h in eb.hashes))
        hn = ",".join(sorted(str(h) for h in en.hashes))
        if len(hashes) > 1 and not ignore_version_hash:
            c = Comparison(name, group, "not comparable", threshold=thr, noise_floor_us=floor * 1e6)
            c.note = f"version hash changed ({hb} -> {hn}): the benchmark itself changed"
            c.base_n, c.new_n = int(eb.samples.size), int(en.samples.size)
            c.base_files = tuple(eb.files)
            out.append(c)
            continue
        if not eb.runs or not en.runs:
            # Every run of a side was disturbed: no verdict, rerun.
            c = Comparison(name, group, "disturbed", threshold=thr, noise_floor_us=floor * 1e6)
            side = "base" if not eb.runs else "new"
            evidence = (eb.disturbed if not eb.runs else en.disturbed)[-1]
            c.note = f"disturbed: rerun ({side}: {evidence})"
            out.append(c)
            continue
        c = compare_samples(
            eb.runs, en.runs, threshold=thr, noise_floor_s=floor, n_boot=n_boot, confidence=confidence,
            single_run=SingleRun(eb.drift, floor=machine_spread),
        )  # fmt: skip
        c.benchmark, c.group, c.base_files = name, group, tuple(eb.files)
        left = len(eb.disturbed) + len(en.disturbed)
        if left:
            c.note = (
                f"{left} disturbed run(s) left out; {c.note}"
                if c.note
                else f"{left} disturbed run(s) left out"
            )
        if len(eb.runs) > 1 or len(en.runs) > 1:
            pooled = f"pooled {len(eb.runs)} vs {len(en.runs)} runs"
            c.note = f"{pooled}; {c.note}" if c.note else pooled
        if len(hashes) > 1:
            changed = f"version hash changed ({hb} -> {hn}), compared anyway"
            c.note = f"{changed}; {c.note}" if c.note else changed
        out.append(c)
    return out


JUDGED = ("regression", "improvement", "host drift", "unchanged", "inconclusive")
"""The verdicts of a case that was compared (the others say why it was not)."""


def no_verdict(comps: list[Comparison]) -> str | None:
    """Why the comparisons hold no verdict at all (one line), or None where one case was compared."""
    if any(c.verdict in JUDGED for c in comps):
        return None
    n = {v: sum(c.verdict == v for c in comps) for v in VERDICTS}
    only = f"{n['only in base']} only in base, {n['only in new']} only in new"
    if not n["not comparable"] and not n["disturbed"]:
        return f"no verdict: no case in common ({only})"
    if not n["disturbed"]:
        return (
            f"no verdict: every common case is at another version hash ({n['not comparable']} not comparable)"
        )
    if not n["not comparable"]:
        return f"no verdict: every run of the common cases was disturbed ({n['disturbed']}): rerun"
    return f"no verdict: {n['not comparable']} case(s) at another version hash, {n['disturbed']} disturbed"


def exit_code(comps: list[Comparison], strict: bool, allow_empty: bool = False) -> int:
    """1 regression, 4 disturbed, 5 no verdict at all (unless allow_empty), 3 inconclusive or host drift
    with strict, 0."""
    verdicts = {c.verdict for c in comps}
    if "regression" in verdicts:
        return 1
    if "disturbed" in verdicts:
        return RERUN_EXIT
    if not allow_empty and no_verdict(comps):
        return EMPTY_EXIT
    if strict and verdicts & {"inconclusive", "host drift"}:
        return 3
    return 0


# ---------------------------------------------------------------- rendering

COLUMNS = ("benchmark", "base_ms", "new_ms", "ratio", "ci95", "p", "threshold", "verdict", "note")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.4g}"


def rows(comps: list[Comparison]) -> list[list[str]]:
    out = []
    for c in comps:
        out.append(
            [
                c.benchmark,
                _ms(c.base_median_s),
                _ms(c.new_median_s),
                "-" if c.ratio is None else f"{c.ratio:.3f}",
                "-" if c.ci_low is None or c.ci_high is None else f"[{c.ci_low:.3f}, {c.ci_high:.3f}]",
                "-" if c.p_value is None else f"{c.p_value:.2g}",
                f"{c.threshold * 100:g}%",
                c.verdict,
                c.note,
            ]
        )
    return out


def summary_line(comps: list[Comparison]) -> str:
    counts = {v: sum(c.verdict == v for c in comps) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n)


def to_markdown(title: str, comps: list[Comparison], label: str | None = None) -> str:
    icon = {"regression": "🔴 ", "improvement": "🟢 ", "inconclusive": "🟡 ", "disturbed": "🟠 ",
            "host drift": "🔵 "}  # fmt: skip
    lines = [f"### {text.markdown(title)}", ""]
    if label:
        lines += [f"**{text.markdown(label)}**", ""]
    table = rows(comps)
    for c, r in zip(comps, table, strict=True):
        r[7] = icon.get(c.verdict, "") + r[7]
    lines += [summary_line(comps), "", *text.markdown_table(COLUMNS, table)]
    return "\n".join(lines) + "\n"


def to_json(comps: list[Comparison], **extra: Any) -> JSONObject:
    return {
        **extra,
        "summary": {v: sum(c.verdict == v for c in comps) for v in VERDICTS},
        "results": [asdict(c) for c in comps],
    }
