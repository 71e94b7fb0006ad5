"""Huge-page placement of CPU tables: THP mode parsing, advise/collapse keeping values, DLRM wiring."""

from __future__ import annotations

import pytest

from chipbench import bench, hugepages
from chipbench.errors import UsageError
from chipbench.workloads import dlrm as wl

torch = pytest.importorskip("torch")
mdl = pytest.importorskip("chipbench.models.dlrm")

THP_OK = hugepages.available()[0]


@pytest.mark.parametrize(
    ("text", "mode", "ok"),
    [("always [madvise] never\n", "madvise", True), ("[always] madvise never\n", "always", True),
     ("always madvise [never]\n", "never", False)],
)  # fmt: skip
def test_thp_mode_parsing(tmp_path, text, mode, ok):
    p = tmp_path / "enabled"
    p.write_text(text)
    assert hugepages.thp_mode(str(p)) == mode
    usable, why = hugepages.available(str(p))
    assert usable is ok
    assert mode in why


def test_no_thp_file_means_unavailable(tmp_path):
    missing = str(tmp_path / "absent")
    assert hugepages.thp_mode(missing) is None
    assert hugepages.available(missing) == (False, "no transparent huge pages on this system (Linux only)")


def test_advise_keeps_values_and_skips_what_it_cannot_place():
    big = torch.randn(24 << 20 >> 2)  # 24 MiB: at least 10 whole 2 MiB pages inside
    before = big.clone()
    small = torch.randn(100)  # no whole huge page inside
    view = big[1000:]  # same storage as `big`: advised once
    out = hugepages.advise([big, view, small, torch.empty(10, device="meta")])
    assert torch.equal(big, before)
    if THP_OK:
        assert 20 / 1024 <= out["advised_gib"] <= 24 / 1024
        # Collapse can fail for want of free huge pages or on kernels before 6.1: then it says why.
        assert out["collapsed_gib"] == out["advised_gib"] or out.get("errors")
    else:
        assert out["advised_gib"] == 0 or out.get("errors")


def test_collapse_budget_limits_the_synchronous_part():
    if not THP_OK:
        pytest.skip("no transparent huge pages here")
    t = torch.randn(8 << 20 >> 2)
    out = hugepages.advise([t], collapse_budget=0)
    assert out["advised_gib"] > 0
    assert out["collapsed_gib"] == 0


def test_table_tensors_finds_every_backends_tables():
    torch_tables = mdl.table_tensors(mdl.TorchEmbeddings((10, 20), 4))
    assert [tuple(t.shape) for t in torch_tables] == [(10, 4), (20, 4)]
    if not mdl.torchrec_available()[0]:
        pytest.skip("torchrec/fbgemm_gpu not importable")
    fused = mdl.table_tensors(mdl.TorchRecEmbeddings((10, 20), 4, "adagrad", 0.1, "cpu"))
    assert [t.numel() for t in fused] == [120, 120]  # TBE weights and the Adagrad state, both per element
    hybrid = mdl.table_tensors(mdl.HybridEmbeddings((10, 20), 4, "sgd", 0.1, "cpu"))
    assert [t.numel() for t in hybrid] == [120]


CPU = bench.RunContext(device="cpu", torch_device="cpu", seed=0)


def test_hugepages_config_is_validated():
    with pytest.raises(ValueError, match="hugepages must be auto, on or off"):
        wl.DLRMConfig(hugepages="sometimes")  # type: ignore[arg-type]


def test_hugepages_on_where_it_cannot_apply_is_a_usage_error(monkeypatch):
    cfg = wl.DLRMConfig(preset="tiny", hugepages="on")
    with pytest.raises(UsageError, match="hugepages=on places CPU tables; on cuda"):
        wl._check_hugepages(cfg, bench.RunContext(device="cuda", torch_device="cuda", seed=0))
    monkeypatch.setattr(hugepages, "available", lambda: (False, "transparent huge pages are disabled"))
    with pytest.raises(UsageError, match="hugepages=on: transparent huge pages are disabled; use"):
        wl._check_hugepages(cfg, CPU)


@pytest.mark.parametrize("setting", ["off", "auto"])
def test_dlrm_records_the_placement(setting):
    cfg = wl.DLRMConfig(preset="tiny", rows=(300_000,), backend="torch", hugepages=setting, num_batches=1)
    placement = bench.get("dlrm.train_step").setup(cfg, CPU).info["hugepages"]
    if setting == "off":
        assert placement == "off: the allocator's pages (hugepages=off)"
    elif THP_OK:
        # tiny has 4 tables: 300k rows x 16 x 4 bytes = 18.3 MiB each, at least 16 MiB of it in whole huge pages
        assert placement["advised_gib"] >= 4 * 16 / 1024
    else:
        assert placement.startswith("off: ")
