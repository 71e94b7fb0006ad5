"""The package's shape: what the version hash covers, the layers' import rules, who prints, file sizes."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from chipbench import workloads
from chipbench.core.registry import ENGINE_MODULES, module_source

SRC = Path(__file__).resolve().parents[2] / "src" / "chipbench"
ROOT = SRC.parents[1]


def _hashes(read: Callable[[str], str] = module_source) -> dict[str, str]:
    return {n: b.version_hash(b.config(), read) for n, b in workloads.registry().items()}


def _edited(module: str) -> Callable[[str], str]:
    """Sources as if `module`'s file had one more line: what any edit of it does to a hash."""

    def read(m: str) -> str:
        return module_source(m) + ("\n# edited\n" if m == module else "")

    return read


BUILDERS = {
    "chipbench.models.dlrm": {
        f"dlrm.{n}" for n in ("train_step", "inference", "embedding", "mlp", "interaction")
    },
    # HSTU's plain-torch item table takes its row-wise Adagrad from here
    "chipbench.models.dlrm_embeddings": {"dlrm.train_step", "dlrm.inference", "dlrm.embedding"}
    | {f"hstu.{n}" for n in ("train_step", "inference", "attention", "embedding")},
    "chipbench.models.dlrm_sharding": {"dlrm.train_step", "dlrm.inference", "dlrm.embedding"},
    "chipbench.models.llama": {"llama.train_step", "llama.forward"},
    "chipbench.models.hstu": {f"hstu.{n}" for n in ("train_step", "inference", "attention", "embedding")},
}


@pytest.mark.parametrize("model", sorted(BUILDERS))
def test_model_edit_changes_every_benchmark_that_builds_it(model: str) -> None:
    base, got = _hashes(), _hashes(_edited(model))
    changed = {n for n in base if got[n] != base[n]}
    assert changed >= BUILDERS[model]
    families = {n.split(".")[0] for n in BUILDERS[model]}
    assert all(n.split(".")[0] in families for n in changed), changed  # other families keep their baselines


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_edit_changes_every_hash(module: str) -> None:
    base, got = _hashes(), _hashes(_edited(module))
    assert all(got[n] != base[n] for n in base)


def test_describe_plan_and_suites_edits_change_no_hash() -> None:
    base = _hashes()
    modules = set()
    for b in workloads.registry().values():
        modules.add(b.describe.__module__)
        if b.plan is not None:
            modules.add(b.plan.__module__)
        if b.fit is not None:
            modules.add(b.fit.__module__)
        modules.add(type(b.config()).__module__)
    modules |= {f"chipbench.workloads.{f}" for f in ("dlrm", "hstu", "llama")}  # the registrations and suites
    for module in sorted(modules):
        assert _hashes(_edited(module)) == base, module


def test_a_docstring_edit_of_describe_changes_no_hash() -> None:
    b = workloads.get("dlrm.train_step")
    module = b.describe.__module__
    doc = b.describe.__doc__ or ""
    assert doc, "dlrm's describe has a docstring to edit"

    def read(m: str) -> str:
        src = module_source(m)
        return src.replace(doc, doc + " (edited)") if m == module else src

    assert _hashes(read) == _hashes()


def test_import_contracts_hold() -> None:
    """The layer rules of pyproject.toml (import-linter), no import cycles among them."""
    exe = Path(sys.executable).with_name("lint-imports")
    p = subprocess.run(
        [str(exe), "--no-logo", "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "0 broken" in p.stdout


# Programs of their own besides the CLI: the worker entry point, a torchrun rank (whose stderr torchrun
# relays: a rank's error line) and the lifeline wrapper read their arguments and may write to stderr.
PROCESS_ENTRIES = {"worker.py", "__main__.py", "execution/dist_worker.py", "execution/lifeline.py"}


def test_only_the_cli_prints_or_reads_the_command_line() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("cli/") or rel in PROCESS_ENTRIES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("print", "input"):
                offenders.append(f"{rel}:{node.lineno} {node.func.id}()")  # type: ignore[attr-defined]
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "argv"
                and getattr(node.value, "id", "") == "sys"
            ):
                offenders.append(f"{rel}:{node.lineno} sys.argv")
    assert not offenders


def test_no_source_file_is_too_long() -> None:
    long = {
        p.relative_to(SRC).as_posix(): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 520
    }
    assert not long
