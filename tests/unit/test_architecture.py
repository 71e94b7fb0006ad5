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


MAX_FUNCTION_LINES = 80
"""A function's body and signature, from `def` to its last line (its decorators not counted)."""
MAX_PARAMETERS = 8
"""Positional and keyword-only parameters, not `self`/`cls`, not `*args`/`**kwargs`: past this, the
arguments that travel together belong in one frozen options object."""
MAX_MODULE_LINES = 520
"""A file's lines; the house rule is 600, the tree holds to this."""


def shape_offenders(root: Path = SRC) -> list[str]:
    """`file:line what` for every function too long or with too many parameters, and every module too
    long, below `root`."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        source = path.read_text()
        if (n := len(source.splitlines())) > MAX_MODULE_LINES:
            offenders.append(f"{rel}:1 module of {n} lines (> {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                offenders.append(
                    f"{rel}:{node.lineno} {node.name}() is {length} lines (> {MAX_FUNCTION_LINES})"
                )
            a = node.args
            params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
            if params[:1] in (["self"], ["cls"]):
                params = params[1:]
            if len(params) > MAX_PARAMETERS:
                offenders.append(
                    f"{rel}:{node.lineno} {node.name}() takes {len(params)} parameters (> {MAX_PARAMETERS})"
                )
    return offenders


def test_functions_and_modules_keep_their_shape() -> None:
    """No function over 80 lines, no signature over 8 parameters, no module over its limit."""
    offenders = shape_offenders()
    assert not offenders, "\n".join(offenders)


def test_the_shape_check_names_each_offender(tmp_path: Path) -> None:
    params = ", ".join(f"a{i}" for i in range(MAX_PARAMETERS + 1))
    body = "".join(f"    x = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(
        f"class C:\n    def ok(self, {params[4:]}, *args, **kw):\n        pass\n\n"
        f"@staticmethod\ndef wide({params}):\n    pass\n\n\ndef long():\n{body}"
    )
    assert shape_offenders(tmp_path) == [
        f"m.py:6 wide() takes {MAX_PARAMETERS + 1} parameters (> {MAX_PARAMETERS})",
        f"m.py:10 long() is {MAX_FUNCTION_LINES + 1} lines (> {MAX_FUNCTION_LINES})",
    ]


def test_the_cli_starts_without_torch() -> None:
    """The parent process parses, validates and prints without torch (its worker imports it): a second
    instead of three for every command, and a Ctrl-C at start-up lands in chipbench, not in torch's import."""
    code = (
        "import sys; import chipbench.cli.app; "
        "print(sorted(m for m in ('torch', 'torchrec', 'fbgemm_gpu') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_workers_hello_reads_without_torch() -> None:
    """What the worker sends the parent holds plain values: a torch object in it (as `torch.__version__`, a
    TorchVersion) makes the parent import torch to read it, two seconds more for every `run`."""
    import pickle

    from chipbench.execution.worker import hello

    data = pickle.dumps(hello("cpu"))
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read()); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], input=data, capture_output=True, check=True, timeout=60
    )
    assert out.stdout.strip() == b"False"
