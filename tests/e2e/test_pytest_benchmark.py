"""pytest-benchmark's own `compare` reads the results files chipbench writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chipbench.results import files
from tests.helpers import result_doc


def test_pytest_benchmark_compare_reads_our_files(tmp_path: Path) -> None:
    a = files.write(result_doc(), tmp_path / "0001_a.json")
    b = files.write(result_doc(), tmp_path / "0002_b.json")
    exe = Path(sys.executable).with_name("pytest-benchmark")
    out = subprocess.run([str(exe), "compare", str(a), str(b)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "calib.matmul[dtype=fp32,m=1024]" in out.stdout and "Failed to load" not in out.stdout + out.stderr
