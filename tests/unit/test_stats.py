from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from chipbench.core import stats


def test_summarize_matches_numpy() -> None:
    x = np.random.default_rng(1).lognormal(0, 0.2, 501)
    s = stats.summarize(list(x))
    assert s["median"] == pytest.approx(np.median(x))
    assert s["mean"] == pytest.approx(x.mean())
    assert s["stddev"] == pytest.approx(x.std(ddof=1))
    assert s["q1"] == pytest.approx(np.percentile(x, 25))
    assert s["p99"] == pytest.approx(np.percentile(x, 99))
    assert s["rounds"] == 501 and len(s["data"]) == 501
    assert s["ops"] == pytest.approx(1 / x.mean())


def test_median_ci_agrees_with_scipy_and_covers() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(10, 1, 200)
    low, high = stats.median_ci(x)
    ref = sps.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ref.low, ref.high))
    # Coverage of the true median over many draws is close to 95%.
    hits = 0
    for _ in range(300):
        lo, hi = stats.median_ci(rng.normal(10, 1, 60))
        hits += lo <= 10 <= hi
    assert 0.90 <= hits / 300 <= 0.995


def test_median_ci_indices_match_scipy_for_every_n() -> None:
    for n in range(2, 3001, 7):
        x = np.arange(n, dtype=float)
        ref = sps.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
        low, high = stats.median_ci(x)
        assert (np.isnan(low) and np.isnan(ref.low)) or low == ref.low, n
        assert (np.isnan(high) and np.isnan(ref.high)) or high == ref.high, n


def test_rel_ci_unknown_for_tiny_samples() -> None:
    assert stats.rel_ci_halfwidth([1.0, 2.0]) == float("inf")
    assert stats.rel_ci_halfwidth([1.0] * 50) == 0.0


def test_summarize_rejects_empty() -> None:
    with pytest.raises(ValueError):
        stats.summarize([])
