"""`TORCH=system` the way a GPU image has it: torch in a virtual environment of its own, no index. The set-up
must see that environment's torch, link chipbench in without a build or a download, keep that torch on
later `make` calls (auto), and name what is missing instead of marking itself set up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ["numpy", "scipy", "rich", "psutil", "jinja2", "pytest", "pytest-benchmark"]
"""What the lent GPU image holds beside torch, of what chipbench could use (the device tool's package list):
no platformdirs, ruptures, plotly, torchrec or fbgemm-gpu, and no package index."""

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _checkout(dest: Path) -> Path:
    skip = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*_cache", ".benchmarks", "*.egg-info")

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = {"results"} if Path(folder) == ROOT else set()  # the baselines, not src/chipbench/results
        return set(skip(folder, names)) | (top & set(names))

    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _make(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        ["make", "-C", str(repo), *args], capture_output=True, text=True, timeout=900,
        env={**clean, "CI": "true", "PIP_NO_INDEX": "1", **env},
    )  # fmt: skip


def _closure(names: list[str]) -> set[str]:
    """The distributions `names` need, themselves included (this interpreter's, markers evaluated)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.requires(name) or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return seen


def _image(root: Path, dists: list[str]) -> Path:
    """A virtual environment that sees `dists` (and what they need) and nothing else: their installed files,
    linked from this environment into one folder on its path, as a GPU image's venv holds its own."""
    from importlib import metadata

    env, shelf = root / "venv", root / "site"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    shelf.mkdir()
    for name in _closure(dists):
        for f in metadata.distribution(name).files or []:
            top = f.parts[0]
            if top != ".." and not (shelf / top).exists():  # ".." : scripts in bin/
                (shelf / top).symlink_to(Path(str(f.locate())).parents[len(f.parts) - 1] / top)
    site = subprocess.run(
        [str(env / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "image.pth").write_text(f"{shelf}\n")
    return env / "bin/python"


@pytest.fixture
def system_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch (this project's pinned CPU build) and the GPU image's other packages only, in a virtual
    environment of its own, as the image's /opt/torch/.venv holds its CUDA torch (one a test: seconds to
    make, and the tests that use it can run side by side)."""
    return _image(tmp_path_factory.mktemp("image"), ["torch", *IMAGE])


def test_the_gpu_check_starts_on_the_image(system_python: Path, tmp_path: Path) -> None:
    """scripts/gpu-check.sh as a lent GPU would run it, in its CPU dry run: a fresh checkout set up offline
    over the image's environment, then every step and check of the script (this is its one end-to-end test)."""
    repo = _checkout(tmp_path / "repo")
    out = tmp_path / "out"
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    p = subprocess.run(
        ["bash", str(repo / "scripts/gpu-check.sh"), str(out), "--device", "cpu", "--tiny"],
        cwd=repo, capture_output=True, text=True, timeout=900,
        env={**clean, "CI": "true", "PIP_NO_INDEX": "1", "TORCH": "system", "PYTHON": str(system_python)},
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "done (system)" in p.stdout and str(system_python) in p.stdout
    assert not list((repo / ".venv").glob("lib/python*/site-packages/torch"))  # the image's torch, not a copy
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"problems": 0, "files": 4}
    for name in ("env.json", "calibrate.json", "smoke.json", "llama.json", "dlrm.json", "gpu-check.log"):
        assert (out / name).exists(), name
    assert "gpu-check: headline" in (out / "gpu-check.log").read_text()
    # TORCH=auto keeps the system set-up: nothing downloaded over it.
    p = _make(repo, "setup")
    assert p.returncode == 0 and "up to date (system)" in p.stdout, p.stdout + p.stderr
    # What only the views need says so in one line where the image lacks it.
    hist = subprocess.run(
        [str(repo / ".venv/bin/chipbench"), "history", str(out)], capture_output=True, text=True, timeout=120,
        env=clean,
    )  # fmt: skip
    assert hist.returncode == 2 and "needs ruptures" in hist.stderr, hist.stdout + hist.stderr


def test_system_setup_names_what_is_missing(tmp_path: Path) -> None:
    bare = _image(tmp_path / "only-torch", ["torch"])  # torch without chipbench's other needs
    repo = _checkout(tmp_path / "repo")
    p = _make(repo, "setup", TORCH="system", PYTHON=str(bare))
    assert p.returncode == 2, p.stdout + p.stderr
    err = next((line for line in p.stderr.splitlines() if line.startswith("setup:")), p.stdout + p.stderr)
    assert "lacks" in err and "numpy" in err and "scipy" in err and "rich" in err
    assert not (repo / ".venv/.chipbench-setup").exists()


def test_the_framework_recipe_two_environments_one_chipbench(system_python: Path, tmp_path: Path) -> None:
    """docs/ci-gating.md "Gating a framework": one fixed chipbench checkout set up over two environments (here both
    the same torch), then `chipbench ab` between them; the hashes match, so the verdicts are real."""
    repo = _checkout(tmp_path / "repo")
    for side in ("base", "head"):
        p = _make(repo, "setup", f"VENV={tmp_path / f'cb-{side}'}", TORCH="system", PYTHON=str(system_python))
        assert p.returncode == 0, p.stdout + p.stderr
    ab = subprocess.run(
        [str(tmp_path / "cb-head/bin/chipbench"), "ab", "--a", str(tmp_path / "cb-base"), "--b",
         str(tmp_path / "cb-head"), "selftest.busy", "--rounds", "2", "--time-budget", "0.05",
         "--output-dir", str(tmp_path / "ab"), "--json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "CI": "true"},
    )  # fmt: skip
    # 4 is "disturbed: rerun": another job held the cores (a shared CI machine); the hashes matched all the same.
    assert ab.returncode in (0, 4), ab.stdout[-3000:] + ab.stderr[-3000:]
    (row,) = json.loads(ab.stdout)["results"]
    assert row["verdict"] not in ("not comparable", "regression")
    assert (row["verdict"] == "disturbed") == (ab.returncode == 4)
