"""`describe` of a case that does not fit: the sizes that would, as `--set` flags that do fit; and the
config row with the values a preset or flavor stands for, not its placeholders."""

from __future__ import annotations

import json

import pytest

from chipbench import workloads
from chipbench.cli.app import main
from chipbench.core.cases import largest_fitting, memory_estimate

GIB = 2**30


@pytest.mark.parametrize(
    ("bench", "overrides"),
    [
        ("llama.train_step", {"flavor": "llama3-8b"}),  # no size alone fits: layers and sequence together
        ("llama.train_step", {"flavor": "llama3-70b", "seq_len": 2048}),
        ("dlrm.train_step", {"preset": "dcnv2"}),  # the tables' rows alone
        ("hstu.train_step", {"items": 10**9}),
    ],
)
def test_each_suggestion_fits_and_a_tenth_more_would_not_all(
    bench: str, overrides: dict[str, object]
) -> None:
    b = workloads.get(bench)
    free = 20 * GIB
    assert memory_estimate(b, b.config(overrides)) > free
    found = largest_fitting(b, overrides, free)
    assert found
    for sizes in found:
        est = memory_estimate(b, b.config({**overrides, **sizes}))
        assert est is not None and est <= free, sizes
        if len(sizes) == 1:  # alone: the largest that fits (up to rounding to two significant digits)
            ((name, v),) = sizes.items()
            assert memory_estimate(b, b.config({**overrides, name: int(v * 1.2) + 1})) > free


def test_a_case_that_nothing_makes_fit_gets_no_suggestion() -> None:
    b = workloads.get("llama.train_step")
    assert largest_fitting(b, {"flavor": "llama3.1-405b"}, 1024) == []


def test_describe_prints_a_ready_set_and_the_presets_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "llama.train_step", "--set", "flavor=llama3-70b", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    if d["fits_here"].startswith("no"):  # this machine's free memory is far below 70B's
        assert d["fits_with"].startswith("--set n_layers=1 --set ")
    assert d["config"]["n_layers"] == 80 and d["config"]["dim"] == 8192  # the flavor's, not None
    assert main(["describe", "dlrm.train_step", "--set", "preset=tiny", "--json"]) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert (
        cfg["rows"] == [1000, 500, 2000, 100] and cfg["embedding_dim"] == 16 and cfg["interaction"] == "dot"
    )
    assert main(["describe", "hstu.train_step", "--set", "preset=tiny", "--json"]) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert all(cfg[k] > 0 for k in ("items", "n_layers", "avg_history", "max_history", "candidates"))
