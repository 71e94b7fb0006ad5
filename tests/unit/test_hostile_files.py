"""Results files from anyone: a corpus of hostile files and generated documents never crash `compare` or
`history`; each bad file is one line naming the file, exit 2; verdicts keep their invariants."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chipbench.cli import main
from chipbench.core.errors import UsageError
from chipbench.gate import compare, history
from chipbench.gate.thresholds import Thresholds
from chipbench.results import validate
from tests.helpers import MACHINE, write_results

GOOD: dict[str, Any] = {
    "machine_info": MACHINE,
    "commit_info": {"id": "c0", "time": "2026-01-01T00:00:00+00:00"},
    "datetime": "2026-01-01T00:00:00+00:00",
    "benchmarks": [
        {"name": "b.x", "group": "b", "stats": {"data": [1e-3, 1.1e-3, 0.9e-3], "median": 1e-3},
         "extra_info": {"version_hash": "h", "metrics": {"tflops": 1.0}}},
    ],
    "chipbench": {"schema_version": 1, "machine_id": "cpu-test-2c", "errors": []},
}  # fmt: skip


def _with(path: str, value: Any) -> bytes:
    """GOOD with the field at `path` (dot-separated, [i] for list items) replaced by `value`."""
    doc = copy.deepcopy(GOOD)
    *head, last = path.replace("[", ".").replace("]", "").split(".")
    target: Any = doc
    for key in head:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return json.dumps(doc).encode()


def _deep(n: int) -> bytes:
    return b'{"benchmarks": [], "x": ' + b"[" * n + b"]" * n + b"}"


HOSTILE: dict[str, bytes] = {
    "random bytes": bytes(range(256)) * 4,
    "empty": b"",
    "utf-16": json.dumps(GOOD).encode("utf-16"),
    "latin-1 name": json.dumps(GOOD).replace("b.x", "b.\u00e9").encode("latin-1"),
    "100000-deep": _deep(100_000),
    "200-deep": _deep(200),
    "top-level list": b"[]",
    "benchmarks not a list": _with("benchmarks", {"a": 1}),
    "benchmark a string": _with("benchmarks[0]", "b.x"),
    "name a number": _with("benchmarks[0].name", 3),
    "name empty": _with("benchmarks[0].name", ""),
    "name null": _with("benchmarks[0].name", None),
    "name huge": _with("benchmarks[0].name", "x" * 5000),
    "stats a list": _with("benchmarks[0].stats", [1, 2]),
    "stats missing data": _with("benchmarks[0].stats", {"median": 1.0}),
    "data a string": _with("benchmarks[0].stats.data", "1,2,3"),
    "data empty": _with("benchmarks[0].stats.data", []),
    "data a dict": _with("benchmarks[0].stats.data", {"0": 1.0}),
    "sample NaN": json.dumps(GOOD).replace("0.0009", "NaN").encode(),
    "sample Infinity": json.dumps(GOOD).replace("0.0009", "Infinity").encode(),
    "sample -Infinity": json.dumps(GOOD).replace("0.0009", "-Infinity").encode(),
    "sample negative": _with("benchmarks[0].stats.data[0]", -1e-3),
    "sample zero": _with("benchmarks[0].stats.data[0]", 0),
    "sample bool": _with("benchmarks[0].stats.data[0]", True),
    "sample string": _with("benchmarks[0].stats.data[0]", "0.001"),
    "sample null": _with("benchmarks[0].stats.data[0]", None),
    "sample list": _with("benchmarks[0].stats.data[0]", [1e-3]),
    "sample 1e400": json.dumps(GOOD).replace("0.0009", "1e400").encode(),
    "median negative": _with("benchmarks[0].stats.median", -1.0),
    "median string": _with("benchmarks[0].stats.median", "fast"),
    "extra_info a list": _with("benchmarks[0].extra_info", []),
    "version_hash a number": _with("benchmarks[0].extra_info.version_hash", 7),
    "version_hash a list": _with("benchmarks[0].extra_info.version_hash", ["h"]),
    "metric a string": _with("benchmarks[0].extra_info.metrics.tflops", "1"),
    "group a number": _with("benchmarks[0].group", 5),
    "machine_info a string": _with("machine_info", "cpu"),
    "machine id a number": _with("machine_info.chipbench_machine_id", 1),
    "device a list": _with("machine_info.device", ["cpu"]),
    "device count zero": _with("machine_info.device", {"name": "x", "count": 0}),
    "packages a list": _with("machine_info.packages", ["torch"]),
    "package version a number": _with("machine_info.packages", {"torch": 2.13}),
    "commit_info a string": _with("commit_info", "abc"),
    "commit id a number": _with("commit_info.id", 5),
    "commit time a number": _with("commit_info.time", 1700000000),
    "datetime a number": _with("datetime", 3),
    "schema a string": _with("chipbench.schema_version", "1"),
    "schema a float": _with("chipbench.schema_version", 1.5),
    "schema a bool": _with("chipbench.schema_version", True),
    "schema from the future": _with("chipbench.schema_version", 99),
    "schema zero": _with("chipbench.schema_version", 0),
    "chipbench a list": _with("chipbench", [1]),
    "errors a dict": _with("chipbench.errors", {"a": 1}),
    "duplicate names": json.dumps({**GOOD, "benchmarks": GOOD["benchmarks"] * 2}).encode(),
}


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_hostile_file_is_one_line_exit_2(
    label: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(HOSTILE[label])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    for argv in (
        ["compare", str(good), str(bad)],
        ["compare", str(bad), str(good)],
        ["history", str(tmp_path)],
    ):
        assert main(argv) == 2, (label, argv)
        err = capsys.readouterr().err.strip()
        assert err.startswith("chipbench: error:") and "\n" not in err and "bad.json" in err, (label, err)


def test_bom_and_good_file_load(tmp_path: Path) -> None:
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert validate.parse(p.read_bytes(), p)["benchmarks"][0]["name"] == "b.x"


def test_huge_file_does_not_stall_the_gate() -> None:
    """A million samples a side: the bootstrap runs on a seeded subset, every sample still counts in the
    ratio of medians."""
    rng = np.random.default_rng(0)
    base = rng.lognormal(np.log(1e-3), 0.02, 1_000_000)
    c = compare.compare_samples(base, base * 1.25, n_boot=500)
    assert c.verdict == "regression" and c.ratio == pytest.approx(1.25, rel=1e-3)


# ---------------------------------------------------------------- generated documents

JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)  # fmt: skip
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
SAMPLES = st.lists(st.floats(min_value=1e-7, max_value=10.0), min_size=1, max_size=30)
FIELDS = [
    "benchmarks", "benchmarks[0]", "benchmarks[0].name", "benchmarks[0].group", "benchmarks[0].stats",
    "benchmarks[0].stats.data", "benchmarks[0].stats.data[0]", "benchmarks[0].stats.median",
    "benchmarks[0].extra_info", "benchmarks[0].extra_info.version_hash", "benchmarks[0].extra_info.metrics",
    "machine_info", "machine_info.device", "machine_info.packages", "machine_info.chipbench_machine_id",
    "commit_info", "commit_info.id", "commit_info.time", "datetime", "chipbench", "chipbench.schema_version",
    "chipbench.errors", "chipbench.machine_id",
]  # fmt: skip


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_mutated_documents_load_or_fail_in_one_line(field: str, value: Any) -> None:
    raw = _with(field, value)
    try:
        doc = validate.parse(raw, Path("gen.json"))
    except UsageError as exc:
        assert "\n" not in str(exc) and "gen.json" in str(exc)
        return
    # What loads is what the gate reads: names, raw samples, hashes of the types it expects.
    for b in doc["benchmarks"]:
        assert isinstance(b["name"], str)
        assert all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in b["stats"]["data"]
        )
        assert all(math.isfinite(v) for v in b["stats"]["data"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.lists(SAMPLES, min_size=1, max_size=3), new=st.lists(SAMPLES, min_size=1, max_size=3))
def test_compare_never_crashes_and_self_is_never_a_regression(
    base: list[list[float]], new: list[list[float]]
) -> None:
    runs_b = [np.asarray(r) for r in base]
    runs_n = [np.asarray(r) for r in new]
    c = compare.compare_samples(runs_b, runs_n, n_boot=100)
    assert c.verdict in compare.VERDICTS
    assert compare.compare_samples(runs_b, runs_b, n_boot=100).verdict != "regression"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    median=st.floats(min_value=1e-5, max_value=1.0), sigma=st.floats(min_value=0.0, max_value=0.03),
    n=st.integers(20, 60), seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_a_25_percent_slowdown_is_a_regression(median: float, sigma: float, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = median * rng.lognormal(0.0, sigma, n) if sigma else np.full(n, median)
    c = compare.compare_samples(base, base * 1.25, n_boot=200)
    assert c.verdict == "regression", (c.ratio, c.ci_low, c.ci_high, c.p_value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.lists(st.floats(min_value=1e-6, max_value=10.0), min_size=1, max_size=40))
def test_history_never_crashes(points: list[float]) -> None:
    pts = [history.Point(f"c{i}", "", v, "f") for i, v in enumerate(points)]
    for cp in history.detect("b", pts):
        assert cp.direction in ("regression", "improvement") and cp.ratio > 0


def test_compare_of_generated_files_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files as chipbench writes them, compared through the CLI with hashes and names of every kind."""
    rng = np.random.default_rng(1)
    names = {f"b.{i}[x={'|' if i % 2 else '<b>'}]": rng.lognormal(np.log(1e-3), 0.02, 20) for i in range(6)}
    base = write_results(tmp_path / "base.json", names)
    # One run against one run is never a verdict; against the base's runs (two, at one hash), it is.
    new = write_results(tmp_path / "new.json", {k: v * 2.5 for k, v in names.items()})
    assert main(["compare", str(base), str(new), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["inconclusive"] == 6
    again = write_results(tmp_path / "base" / "b2.json", {k: v * 1.01 for k, v in names.items()})
    base.rename(tmp_path / "base" / "b1.json")
    assert main(["compare", str(again.parent), str(new), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["regression"] == 6
    base = tmp_path / "base" / "b1.json"
    side = compare.load_side([base])
    assert compare.compare_sides(side, side, Thresholds(), n_boot=200)[0].verdict != "regression"


@pytest.mark.parametrize(
    "data",
    [
        {"machine_id": "m", "matmul_tflops": "fast"},
        {"machine_id": "m", "matmul_tflops": {"fp32": "1"}},
        {"machine_id": "m", "matmul_tflops": {"fp32": float("nan")}},
        {"machine_id": "m", "matmul_tflops": {"fp32": True}},
        {"machine_id": "m", "copy_gbps": -3},
        {"machine_id": "m", "matmul_sizes": [1]},
        {"machine_id": "m", "device": 7},
        {"machine_id": 5},
        [],
    ],
)
def test_a_damaged_ceilings_cache_is_no_calibration(data: Any, tmp_path: Path) -> None:
    from chipbench.platform import ceilings

    assert ceilings.Ceilings.from_json(data) is None
    p = ceilings.path_for("m", tmp_path)
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps(data))
    assert ceilings.load("m", tmp_path) is None
    p.write_text("[" * 100_000)
    assert ceilings.load("m", tmp_path) is None


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (
            b'{"benchmarks": [{"name": "x", "stats": {"data": [1' + b"0" * 400 + b"]}}]}",
            "must be a number of seconds between",
        ),
        (b'{"benchmarks": [], "params": {"x": 1e999}}', "not a finite number"),
    ],
)
def test_huge_numbers_are_one_line(raw: bytes, msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        validate.parse(raw, Path("f.json"))


def test_invisible_and_unprintable_characters_are_shown_escaped() -> None:
    from chipbench.core import text

    shown = text.terminal("a\ud800b\u202ec\u2028d\x1b")
    assert shown == "a\\ud800b\\u202ec\\u2028d\\x1b"
    shown.encode("utf-8")  # printable anywhere: no lone surrogate left


def test_a_ceilings_cache_with_a_huge_load_is_no_calibration() -> None:
    from chipbench.platform import ceilings

    assert ceilings.Ceilings.from_json({"machine_id": "m", "load_avg_1m": 10**400}) is None
