from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from chipbench import workloads
from chipbench.core.config import apply_overrides, check, parse_sets
from chipbench.core.errors import UsageError
from chipbench.core.registry import grid


@dataclass(frozen=True)
class Cfg:
    n: int = 1
    x: float = 0.5
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    cap: int | None = None

    def __post_init__(self) -> None:
        check(self.n > 0, "n must be > 0")


def test_coercion() -> None:
    c = apply_overrides(
        Cfg(), parse_sets(["n=4", "x=1e-3", "flag=true", "mode=b", "sizes=13-512-64", "cap=none"])
    )
    assert c == Cfg(n=4, x=1e-3, flag=True, mode="b", sizes=(13, 512, 64), cap=None)
    assert apply_overrides(Cfg(), {"sizes": "3,4", "cap": "7"}).sizes == (3, 4)


@pytest.mark.parametrize(
    ("sets", "msg"),
    [
        (["nope=1"], "unknown config key 'nope'"),
        (["n=abc"], "not a valid int"),
        (["flag=maybe"], "not a valid bool"),
        (["mode=c"], "not one of a, b"),
        (["n=0"], "n must be > 0"),
    ],
)
def test_bad_values(sets: list[str], msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        apply_overrides(Cfg(), parse_sets(sets))


def test_parse_sets_needs_equals() -> None:
    with pytest.raises(UsageError, match="not key=value"):
        parse_sets(["batch_size"])


def test_build_cases_validates_before_running() -> None:
    with pytest.raises(UsageError, match="unknown benchmark"):
        workloads.build_cases(["calib.nope"], None, {}, None)
    with pytest.raises(UsageError, match="unknown suite"):
        workloads.build_cases([], "huge", {}, None)
    cases = workloads.build_cases(["calib.matmul"], None, {"m": "64"}, "fp32")
    assert cases[0].overrides == {"m": "64", "dtype": "fp32"}
    assert cases[0].name == "calib.matmul[dtype=fp32,m=64]"


def test_version_hash_tracks_config() -> None:
    b = workloads.get("calib.matmul")
    assert b.version_hash(b.config({"m": 64})) != b.version_hash(b.config({"m": 128}))
    assert b.version_hash(b.config({"m": 64})) == b.version_hash(b.config({"m": "64"}))


def test_every_benchmark_has_smoke_case_or_is_selftest() -> None:
    for name, b in workloads.registry().items():
        assert name.startswith("selftest.") or b.suites.get("smoke"), name
        for suite_cases in b.suites.values():
            for ov in suite_cases:
                b.config(ov)  # every suite case is a valid config


def test_grid_lists_cases_as_nested_loops_would() -> None:
    # base outermost, then each axis in the order given; an axis base holds keeps base's key position
    bases = [{"preset": "a", "batch_size": 1}, {"preset": "b", "batch_size": 2}]
    got = grid(bases, mode=("fwd", "fwd_bwd"), batch_size=(8,))
    assert got == [{**b, "mode": m, "batch_size": 8} for b in bases for m in ("fwd", "fwd_bwd")]
    assert [list(c) for c in got] == [["preset", "batch_size", "mode"]] * 4
    assert grid(flavor=("x", "y"), seq_len=(64,)) == [
        {"flavor": "x", "seq_len": 64},
        {"flavor": "y", "seq_len": 64},
    ]
    assert grid({"flavor": "x"}) == [{"flavor": "x"}]
