"""Huge-page placement end to end: DLRM records where its tables landed, in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chipbench.platform import hugepages

torch = pytest.importorskip("torch")
emb = pytest.importorskip("chipbench.models.dlrm_embeddings")

THP_OK = hugepages.available()[0]


_PLACEMENT = """
import json, sys
from chipbench import workloads
from chipbench.core.contract import RunContext
from chipbench.workloads import dlrm as wl
cfg = wl.DLRMConfig(
    preset="tiny", rows=(300_000,), backend="torch", embedding_optimizer="adagrad", hugepages=sys.argv[1],
    num_batches=1,
)
ctx = RunContext(device="cpu", torch_device="cpu", seed=0)
print(json.dumps(workloads.get("dlrm.train_step").setup(cfg, ctx).info["hugepages"]))
"""


@pytest.mark.parametrize("setting", ["off", "auto"])
def test_dlrm_records_the_placement(setting):
    # A fresh process: memory advised by earlier tests (glibc reuses freed heap ranges, which keep their
    # MADV_HUGEPAGE) would give setting=off's tables huge pages here.
    out = subprocess.run(
        [sys.executable, "-c", _PLACEMENT, setting], capture_output=True, text=True, timeout=300, check=True
    )
    placement = json.loads(out.stdout.strip().splitlines()[-1])
    assert placement["setting"] == setting
    # tiny has 4 tables: 300k rows x 16 x 4 bytes = 18.3 MiB each, and Adagrad's state as much again
    assert placement["table_bytes"] == 2 * 4 * 300_000 * 16 * 4
    got = placement["table_mappings_on_huge_pages_bytes"]
    if setting == "auto" and THP_OK:
        page = hugepages.huge_page_bytes()
        assert placement["advised_bytes"] >= 8 * (300_000 * 16 * 4 // page - 1) * page
        if not placement.get("errors"):
            assert got >= placement["placed_bytes"] > 0
    if setting == "off":
        assert "advised_bytes" not in placement
        if hugepages.thp_mode() == "madvise":  # nothing else gives these mappings huge pages
            assert got == 0
