"""`chipbench ab --a-set/--b-set`: an A/B of a config change. The flags parsed into each side's cases, the
cases matched as one under a `key=A|B` name, and the verdict's entries keyed by it with no hash to compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

from chipbench.cli import main
from chipbench.cli.gate import _ab_sides
from chipbench.core.cases import Case
from chipbench.core.errors import UsageError
from chipbench.gate import ab
from chipbench.results.outcomes import CaseOutcome
from tests.helpers import lognormal


def _args(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {"a": None, "b": None, "a_set": None, "b_set": None, "set": None,
                            "benchmarks": ["llama.train_step"], "suite": "smoke"}  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_a_config_ab_builds_each_sides_cases_on_this_python_and_matches_them() -> None:
    pys, a, b = _ab_sides(_args(a_set=["n_layers=4"], b_set=["n_layers=8"], set=["seq_len=32"]))
    assert pys == {"a": sys.executable, "b": sys.executable} and b is not None
    assert a[0].overrides["n_layers"] == "4" and b[0].overrides["n_layers"] == "8"
    assert a[0].overrides["seq_len"] == b[0].overrides["seq_len"] == "32"  # --set: both sides
    pair = ab.pair_cases(a, b)[0]
    assert pair.name.startswith("llama.train_step[") and "n_layers=4|8" in pair.name
    assert pair.name.endswith(",seq_len=32]") and pair.side("b") is b[0]
    assert ab.config_note([pair]) is not None and "key=A|B" in str(ab.config_note([pair]))
    # Two environments and no config: one list of cases, no note.
    pys, a, b = _ab_sides(_args(a=sys.executable, b=sys.executable))
    assert b is None and ab.config_note(ab.pair_cases(a, a)) is None


def test_a_key_one_side_leaves_at_its_default_is_named_with_a_dash() -> None:
    pair = ab.CasePair(
        Case("calib.copy", {"size_mib": 16}), Case("calib.copy", {"size_mib": 16, "kernel": "add"})
    )
    assert pair.name == "calib.copy[kernel=-|add,size_mib=16]"
    same = ab.CasePair(Case("calib.copy", {"size_mib": 16}), Case("calib.copy", {"size_mib": 16}))
    assert same.name == "calib.copy[size_mib=16]"


def test_sides_that_do_not_pair_are_refused() -> None:
    with pytest.raises(UsageError, match="different cases"):
        ab.pair_cases([Case("calib.copy", {})], [Case("calib.matmul", {})])
    with pytest.raises(UsageError, match=r"calib.copy\[a=1\|3\] is asked for twice"):
        ab.pair_cases([Case("calib.copy", {"a": 1})] * 2, [Case("calib.copy", {"a": 3})] * 2)


def test_a_config_pairs_entries_carry_no_hash_and_the_files_keep_each_sides_names() -> None:
    pair = ab.CasePair(Case("x", {"n": 1}), Case("x", {"n": 2}))

    def outcome(case: Case, seed: int) -> CaseOutcome:
        payload = {"type": "result", "version_hash": f"h{case.overrides['n']}", "info": {},
                   "measurement": {"samples": [float(v) for v in lognormal(10, seed=seed)], "extra": {}}}  # fmt: skip
        return CaseOutcome(case, True, payload, 0.0)

    for side in ("a", "b"):
        outcomes, entries = ab._pool_rounds([pair], {pair.name: [outcome(pair.side(side), 0)]}, side)
        assert list(entries) == ["x[n=1|2]"] and entries["x[n=1|2]"].hashes == {None}
        assert outcomes[0].case.name == pair.side(side).name


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["ab", "calib.copy"], "ab needs two sides: --a and --b"),
        (["ab", "calib.copy", "--a", sys.executable], "ab needs two sides"),
        (["ab", "calib.copy", "--a-set", "size_mib"], "--a-set 'size_mib' is not key=value"),
        (["ab", "calib.copy", "--a-set", "size_mib=1", "--b-set", "nope=1"], "unknown config key 'nope'"),
    ],
)
def test_bad_config_ab_input_is_one_line(args: list[str], msg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err and not (tmp_path / "results").exists()
