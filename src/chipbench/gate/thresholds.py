"""Regression thresholds: the default, the absolute noise floor, and per-benchmark rules from a TOML file
(exact name first, then the most specific glob)."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.core.fileio import load_toml

DEFAULT_THRESHOLD = 0.05


def parse_threshold(text: str | float, what: str = "threshold") -> float:
    """'5%' -> 0.05, '2.5%' -> 0.025, '0.05' -> 0.05; one-line UsageError otherwise."""
    s = str(text).strip()
    try:
        v = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        raise UsageError(
            f"{what} {text!r} is not a number or percentage (examples: 5%, 2.5%, 0.05)"
        ) from None
    if not (0.0 < v < 1.0) or not math.isfinite(v):
        raise UsageError(f"{what} {text!r} must be between 0% and 100% (exclusive)")
    return v


@dataclass
class Thresholds:
    """The default threshold and noise floor, plus per-benchmark overrides (exact name, then globs)."""

    default: float = DEFAULT_THRESHOLD
    noise_floor_s: float = 0.0
    rules: list[tuple[str, float | None, float | None]] = field(default_factory=list)

    def for_benchmark(self, name: str, group: str | None) -> tuple[float, float]:
        thr, floor = self.default, self.noise_floor_s
        exact = [r for r in self.rules if r[0] == name]
        globbed = [
            r
            for r in self.rules
            if fnmatch.fnmatchcase(name, r[0]) or (group and fnmatch.fnmatchcase(group, r[0]))
        ]
        # An exact name wins; among globs the longest (most specific) pattern wins.
        for _, t, f in sorted(globbed, key=lambda r: len(r[0])) + exact:
            thr = t if t is not None else thr
            floor = f if f is not None else floor
        return thr, floor


def load_thresholds(path: Path | None, default: float, noise_floor_s: float) -> Thresholds:
    """Read a thresholds TOML file (see ci/thresholds.example.toml)."""
    th = Thresholds(default=default, noise_floor_s=noise_floor_s)
    if path is None:
        return th
    data = load_toml(path, "thresholds file")
    unknown = set(data) - {"threshold", "noise_floor_us", "benchmarks"}
    if unknown:
        raise UsageError(
            f"thresholds file {path}: unknown key {sorted(unknown)[0]!r}; keys: threshold, noise_floor_us, "
            "[benchmarks]"
        )
    if "threshold" in data:
        th.default = parse_threshold(data["threshold"], f"{path}: threshold")
    if "noise_floor_us" in data:
        th.noise_floor_s = _floor(data["noise_floor_us"], path)
    rules = data.get("benchmarks", {})
    if not isinstance(rules, dict):
        raise UsageError(f"thresholds file {path}: [benchmarks] must be a table of name = threshold")
    for pattern, v in rules.items():
        if isinstance(v, dict):
            unknown = set(v) - {"threshold", "noise_floor_us"}
            if unknown:
                raise UsageError(f"thresholds file {path}: unknown key(s) {sorted(unknown)} for {pattern!r}")
            t = parse_threshold(v["threshold"], f"{path}: {pattern}") if "threshold" in v else None
            f = _floor(v["noise_floor_us"], path) if "noise_floor_us" in v else None
        else:
            t, f = parse_threshold(v, f"{path}: {pattern}"), None
        th.rules.append((pattern, t, f))
    return th


def _floor(v: Any, path: Path) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise UsageError(f"thresholds file {path}: noise_floor_us {v!r} is not a number") from None
    if f < 0 or not math.isfinite(f):
        raise UsageError(f"thresholds file {path}: noise_floor_us must be >= 0")
    return f * 1e-6
