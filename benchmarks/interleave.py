"""What the interleaved goal scripts share (`dlrm_goal.py`, `dlrm_peer.py`, `llama_peer.py`): the per-round
ratio of two variants' step times, its median and 95% CI. Rounds are independent pairs measured back to
back, so the host's drift between rounds cancels in each ratio."""

from __future__ import annotations

import statistics
from typing import Any

from chipbench.core.stats import median_ci


def ratio(a: list[float], b: list[float]) -> dict[str, Any]:
    """Per-round ratios a / b: their median, its 95% CI (exact binomial), and the rounds (for pooling)."""
    r = [x / y for x, y in zip(a, b, strict=True)]
    lo, hi = median_ci(r)
    return {"median": statistics.median(r), "ci95": [lo, hi], "rounds": r}
