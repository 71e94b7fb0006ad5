"""scripts/gpu-check.sh, the first GPU run, in its CPU dry run: tiny sizes, the same steps and checks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    p = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), str(out), "--device", "cpu", "--tiny"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"problems": 0, "files": 4}
    for name in ("env.json", "calibrate.json", "smoke.json", "llama.json", "dlrm.json", "gpu-check.log"):
        assert (out / name).exists(), name
    assert "gpu-check: headline" in (out / "gpu-check.log").read_text()


def test_the_checks_catch_an_impossible_figure(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from gpu_check_verify import check  # type: ignore[import-not-found]

    from tests.test_results import _doc

    for name in ("calibrate.json", "smoke.json", "llama.json", "dlrm.json"):
        doc = _doc()
        doc["chipbench"]["errors"] = []
        doc["benchmarks"][0]["group"] = "llama.train_step"
        doc["benchmarks"][0]["extra_info"]["metrics"]["mfu"] = 1.7
        (tmp_path / name).write_text(json.dumps(doc))
    problems, docs = check(tmp_path, "cuda", tiny=True)
    assert len(docs) == 4
    assert any("MFU 1.700 outside" in p for p in problems) and any("not device events" in p for p in problems)
