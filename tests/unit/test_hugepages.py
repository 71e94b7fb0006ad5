"""Huge-page placement of CPU tables: THP mode parsing, advise and move keeping values, DLRM wiring."""

from __future__ import annotations

import pytest

from chipbench.core.contract import RunContext
from chipbench.core.errors import UsageError
from chipbench.platform import hugepages
from chipbench.workloads import dlrm as wl

torch = pytest.importorskip("torch")
emb = pytest.importorskip("chipbench.models.dlrm_embeddings")

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
    if not THP_OK:
        pytest.skip("no transparent huge pages here")
    page = hugepages.huge_page_bytes()
    big = torch.randn(12 * page // 4)  # whole huge pages inside: at least 11
    before = big.clone()
    small = torch.randn(100)  # no whole huge page inside
    view = big[1000:]  # same storage as `big`: advised once
    sparse = torch.eye(3).to_sparse()
    out = hugepages.advise([big, view, small, sparse, torch.empty(10, device="meta")])
    assert torch.equal(big, before)
    assert 11 * page <= out["advised_bytes"] <= 12 * page
    assert out["placed_bytes"] == out["advised_bytes"] or out.get("errors")
    if not out.get("errors") and hugepages.thp_mode() in ("madvise", "always"):
        # The kernel hands out small pages where no huge page is free at that moment (a test beside this one,
        # another job on the machine): most of what was placed, not all of it, is the claim.
        assert hugepages.huge_bytes_backing([big]) >= out["placed_bytes"] // 2


def test_move_budget_limits_the_synchronous_part():
    if not THP_OK:
        pytest.skip("no transparent huge pages here")
    t = torch.randn(4 * hugepages.huge_page_bytes() // 4)
    before = t.clone()
    out = hugepages.advise([t], move_budget=0)
    assert out["advised_bytes"] > 0
    assert out["placed_bytes"] == 0 and torch.equal(t, before)


def test_a_move_spanning_many_chunks_keeps_every_value(monkeypatch):
    if not THP_OK:
        pytest.skip("no transparent huge pages here")
    page = hugepages.huge_page_bytes()
    monkeypatch.setattr(hugepages, "MOVE_CHUNK_BYTES", 3 * page)  # 7+ chunks, the last one short
    t = torch.randn(23 * page // 4 + 77)  # an odd size: an unaligned head and tail stay as they are
    before = t.clone()
    out = hugepages.advise([t])
    assert torch.equal(t, before)
    assert out["placed_bytes"] >= 21 * page and not out.get("errors")
    if out["method"] == "move":  # this kernel gives moved pages back huge (6.14+): they are
        assert hugepages.huge_bytes_backing([t]) >= out["placed_bytes"]


def test_where_moved_pages_come_back_small_the_rest_is_collapsed(monkeypatch):
    if not THP_OK:
        pytest.skip("no transparent huge pages here")
    page = hugepages.huge_page_bytes()
    monkeypatch.setattr(hugepages, "MOVE_CHUNK_BYTES", 2 * page)
    monkeypatch.setattr(hugepages, "huge_bytes_backing", lambda tensors: 0)  # as on a kernel before 6.14
    calls = []
    real = hugepages._collapse
    monkeypatch.setattr(hugepages, "_collapse", lambda libc, a, b: calls.append((a, b)) or real(libc, a, b))
    ts = [torch.randn(6 * page // 4 + 5) for _ in range(2)]
    before = [t.clone() for t in ts]
    out = hugepages.advise(ts)
    assert all(torch.equal(t, b) for t, b in zip(ts, before, strict=True))
    assert out["method"] == "collapse" and len(calls) == 2  # the first tensor whole again, then the second
    assert out["placed_bytes"] == out["advised_bytes"] or out.get("errors")


def test_values_go_back_when_dropping_pages_fails(monkeypatch):
    if not THP_OK:
        pytest.skip("no transparent huge pages here")
    real = hugepages._libc()

    class Refusing:
        def madvise(self, addr, length, advice):
            return -1 if advice == hugepages.MADV_DONTNEED else real.madvise(addr, length, advice)

    monkeypatch.setattr(hugepages, "_libc", Refusing)
    t = torch.randn(4 * hugepages.huge_page_bytes() // 4)
    before = t.clone()
    out = hugepages.advise([t])
    assert torch.equal(t, before)
    assert out["placed_bytes"] == 0 and out["errors"][0].startswith("MADV_DONTNEED")


def test_huge_bytes_backing_without_tensors_is_zero():
    assert hugepages.huge_bytes_backing([]) == 0
    assert hugepages.huge_bytes_backing([torch.empty(3, device="meta")]) == 0


def test_table_tensors_finds_every_backends_tables():
    torch_tables = emb.TorchEmbeddings((10, 20), 4)
    assert [tuple(t.shape) for t in emb.table_tensors(torch_tables)] == [(10, 4), (20, 4)]
    # ... and the state the sparse optimizers keep for them (created at construction)
    for name, state_shapes in (("adagrad", [(10, 4), (20, 4)]), ("rowwise_adagrad", [(10,), (20,)])):
        opt = emb.sparse_optimizer(name, torch_tables.weights(), 0.1)
        found = [tuple(t.shape) for t in emb.table_tensors(torch_tables, (opt,))]
        assert found == [(10, 4), (20, 4), *state_shapes], name
    if not emb.torchrec_available()[0]:
        pytest.skip("torchrec/fbgemm_gpu not importable")
    fused = emb.table_tensors(emb.TorchRecEmbeddings((10, 20), 4, "adagrad", 0.1, "cpu"))
    assert [t.numel() for t in fused] == [120, 120]  # TBE weights and the Adagrad state, both per element
    hybrid = emb.table_tensors(emb.HybridEmbeddings((10, 20), 4, "sgd", 0.1, "cpu"))
    assert [t.numel() for t in hybrid] == [120]


CPU = RunContext(device="cpu", torch_device="cpu", seed=0)


def test_hugepages_config_is_validated():
    with pytest.raises(ValueError, match="hugepages must be auto, on or off"):
        wl.DLRMConfig(hugepages="sometimes")  # type: ignore[arg-type]


def test_hugepages_on_where_it_cannot_apply_is_a_usage_error(monkeypatch):
    cfg = wl.DLRMConfig(preset="tiny", hugepages="on")
    with pytest.raises(UsageError, match="hugepages=on places CPU tables; on cuda"):
        wl.check_hugepages(cfg, RunContext(device="cuda", torch_device="cuda", seed=0))
    monkeypatch.setattr(hugepages, "available", lambda: (False, "transparent huge pages are disabled"))
    with pytest.raises(UsageError, match="hugepages=on: transparent huge pages are disabled; use"):
        wl.check_hugepages(cfg, CPU)


def test_dlrm_placement_not_applicable_off_cpu():
    cfg = wl.DLRMConfig(preset="tiny")
    out = wl.place_tables(cfg, RunContext(device="cuda", torch_device="cuda", seed=0), torch.nn.Module())
    assert out == {"setting": "auto", "not_applicable": "tables in cuda memory"}
