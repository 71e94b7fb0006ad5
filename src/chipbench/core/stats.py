"""Summary statistics of raw timing samples (seconds per step), in pytest-benchmark's stats shape."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def median_ci_indices(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """Order-statistic indices (0-based, into the sorted sample) bounding the median's CI.

    The same exact binomial construction as scipy.stats.quantile_test(...).confidence_interval(), without
    importing scipy.stats (0.35 s) into the worker; tests check the two agree for every n up to 3000.
    An index of -1 or n means the bound does not exist at this n.
    """
    a = (1.0 - confidence) / 2.0
    lg = math.lgamma(n + 1) - n * math.log(2.0)
    logpmf = np.array([lg - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in range(n + 1)])
    cdf = np.cumsum(np.exp(logpmf))
    ppf = int(np.searchsorted(cdf, a * (1 - 1e-9)))  # smallest k with P(K <= k) >= a
    isf = int(np.argmax(1.0 - cdf <= a * (1 + 1e-9)))  # smallest k with P(K > k) <= a
    return ppf - 1, isf


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median (binomial order statistics).

    Returns (nan, nan) when there are too few samples for the requested confidence.
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    if n < 2:
        return math.nan, math.nan
    lo, hi = median_ci_indices(n, confidence)
    if lo < 0 or hi >= n:
        return math.nan, math.nan
    return float(x[lo]), float(x[hi])


def rel_ci_halfwidth(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the median's confidence interval relative to the median (inf when unknown)."""
    low, high = median_ci(samples, confidence)
    med = float(np.median(samples)) if len(samples) else math.nan
    if math.isnan(low) or math.isnan(high) or not med > 0:
        return math.inf
    return (high - low) / 2.0 / med


def summarize(samples: Sequence[float], iterations: int = 1) -> dict[str, Any]:
    """pytest-benchmark's `stats` dict for per-step times in seconds, plus chipbench's percentiles and CI."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    q1, median, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
    iqr = q3 - q1
    mean = float(x.mean())
    stddev = float(x.std(ddof=1)) if x.size > 1 else 0.0
    lo15, hi15 = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = x[(x >= lo15) & (x <= hi15)]
    iqr_outliers = int(x.size - inside.size)
    stddev_outliers = int(np.sum(np.abs(x - mean) > stddev)) if stddev > 0 else 0
    ci_low, ci_high = median_ci(x)
    p90, p99 = (float(v) for v in np.percentile(x, [90, 99]))
    return {
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": mean,
        "stddev": stddev,
        "rounds": int(x.size),
        "median": median,
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": float(inside.min()) if inside.size else float(x.min()),
        "hd15iqr": float(inside.max()) if inside.size else float(x.max()),
        "ops": 1.0 / mean if mean > 0 else 0.0,
        "total": float(x.sum()) * iterations,
        "iterations": iterations,
        "data": [float(v) for v in x],
        # chipbench additions (pytest-benchmark ignores unknown keys)
        "p50": median,
        "p90": p90,
        "p99": p99,
        "median_ci95": [ci_low, ci_high],
    }
