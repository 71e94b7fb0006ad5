"""scripts/gpu_check_verify.py, the checks of the first GPU run (the whole script runs end to end on a simulated
GPU image in tests/e2e/test_setup_system.py)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_checks_catch_an_impossible_figure(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from gpu_check_verify import check  # type: ignore[import-not-found]

    from tests.helpers import result_doc as _doc

    for name in ("calibrate.json", "smoke.json", "llama.json", "dlrm.json"):
        doc = _doc()
        doc["chipbench"]["errors"] = []
        doc["benchmarks"][0]["group"] = "llama.train_step"
        doc["benchmarks"][0]["extra_info"]["metrics"]["mfu"] = 1.7
        (tmp_path / name).write_text(json.dumps(doc))
    problems, docs = check(tmp_path, "cuda", tiny=True)
    assert len(docs) == 4
    assert any("MFU 1.700 outside" in p for p in problems) and any("not device events" in p for p in problems)
