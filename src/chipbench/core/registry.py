"""Benchmark definitions and the registry they enter; the version hash over the code that is timed.

Each workload family registers its benchmarks when `chipbench.workloads` is imported; this module only
holds them (it never imports a workload), so the registry is read through `chipbench.workloads`.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from chipbench.core.config import apply_overrides, config_dict
from chipbench.core.contract import Description, Layout, Prepared, RunContext
from chipbench.core.errors import UsageError
from chipbench.core.wire import Overrides

C = TypeVar("C")

SUITES = ("smoke", "default", "full")

ENGINE_MODULES = ("chipbench.measure.engine", "chipbench.platform.device")
"""The measurement code every benchmark is timed through: part of every version hash."""

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def module_source(module: str) -> str:
    """The source text of a chipbench module, read from its file (nothing is imported)."""
    parts = module.split(".")
    if parts[0] != "chipbench":
        raise ValueError(f"{module} is not a chipbench module")
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.read_text()
    raise ValueError(f"no source file for module {module}")


@dataclass(frozen=True)
class Benchmark(Generic[C]):
    """A named benchmark: its config type, how to set it up, how to describe it, and its suite cases."""

    name: str
    doc: str
    config_cls: type[C]
    setup: Callable[[C, RunContext], Prepared]
    """Builds the model and inputs on the device and returns the step to time."""
    describe: Callable[[C], Description]
    suites: dict[str, list[Overrides]]
    """Suite name -> list of config overrides, one case each."""
    timed: tuple[str, ...] = ()
    """Modules whose code the step runs besides the one that defines `setup` (the models it builds,
    the data and backend code of its family): with the engine, what the version hash covers."""
    fit: Callable[[C, int, str], Overrides] | None = None
    """(config, free memory bytes, device kind) -> overrides that fit the case to the device (e.g. a
    table-row cap)."""
    auto_dtype: dict[str, str] = field(default_factory=dict)
    """Device kind -> dtype that `dtype=auto` means for this benchmark, where the device-wide choice
    does not suit it (e.g. DLRM's small matmuls under bf16 autocast on CPUs); recorded with its reason."""
    plan: Callable[[C, int, str], Layout] | None = None
    """(config, world size, device kind) -> how the benchmark is laid out over that many processes
    (e.g. TorchRec's sharding plan), without allocating; shown by `describe --nproc-per-node`."""
    needs_world: int = 1
    """Fewest processes the benchmark runs on (collectives need 2); below it, suites skip it."""
    resolved: Callable[[C], Overrides] | None = None
    """config -> the values its preset-filled fields stand for (`rows: ()` -> the preset's rows), as
    `describe` shows them; None: every field is what it says."""

    def config(self, overrides: Overrides | None = None) -> C:
        return apply_overrides(self.config_cls(), overrides or {})

    def resolve_auto_dtype(self, kind: str, device_choice: tuple[str, str]) -> tuple[str, str]:
        """(dtype, reason) that `dtype=auto` stands for on a device of `kind`, whose device-wide choice
        (from its bf16 support or measured ceilings) is `device_choice`."""
        if kind in self.auto_dtype:
            return self.auto_dtype[kind], f"{self.name} runs {self.auto_dtype[kind]} on {kind} by default"
        return device_choice

    def timed_modules(self) -> tuple[str, ...]:
        """Every module whose code is timed: the set-up's, `timed`, and the engine's."""
        return tuple(dict.fromkeys((self.setup.__module__, *self.timed, *ENGINE_MODULES)))

    def version_hash(self, cfg: C, read: Callable[[str], str] = module_source) -> str:
        """Hash of the timed code and the config: a change to what is timed never matches a stale
        baseline, and a change to describe, plan, suites or docs keeps every baseline."""
        src = {m: read(m) for m in self.timed_modules()}
        blob = json.dumps({"src": src, "cfg": config_dict(cfg)}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def suites(
    smoke: list[Overrides], default: list[Overrides], full: list[Overrides]
) -> dict[str, list[Overrides]]:
    """A benchmark's cases in each suite (each a list of config overrides)."""
    return {"smoke": smoke, "default": default, "full": full}


def grid(base: Overrides | list[Overrides] | None = None, /, **axes: Sequence[Any]) -> list[Overrides]:
    """Every case of `base` (one set of overrides, or a list of them) crossed with every combination of
    the axes' values: the cases nested loops would list, base outermost, then each axis in the order
    given (its key after base's keys, unless base has it). `grid(_8B, mode=("fwd", "fwd_bwd"))`."""
    bases = base if isinstance(base, list) else [base or {}]
    combos = list(itertools.product(*axes.values()))
    return [{**b, **dict(zip(axes, values, strict=True))} for b in bases for values in combos]


@dataclass(frozen=True)
class Family:
    """What the benchmarks of one workload family share; `add` registers one of them, which declares only
    its name, config, set-up, doc and suites, and any field where it differs from the family."""

    prefix: str
    """The family's name: a benchmark `x` is registered as `<prefix>.x`."""
    describe: Callable[[Any], Description] | None = None
    timed: tuple[str, ...] = ()
    fit: Callable[[Any, int, str], Overrides] | None = None
    plan: Callable[[Any, int, str], Layout] | None = None
    auto_dtype: dict[str, str] = field(default_factory=dict)
    resolved: Callable[[Any], Overrides] | None = None

    def add(
        self,
        name: str,
        config_cls: type[C],
        setup: Callable[[C, RunContext], Prepared],
        doc: str,
        suites: dict[str, list[Overrides]],
        **differs: Any,
    ) -> Benchmark[C]:
        """Register `<prefix>.<name>`; `differs`: Benchmark fields that are not the family's."""
        fields: dict[str, Any] = {
            "describe": self.describe, "timed": self.timed, "fit": self.fit, "plan": self.plan,
            "auto_dtype": self.auto_dtype, "resolved": self.resolved, **differs,
        }  # fmt: skip
        return register(Benchmark(f"{self.prefix}.{name}", doc, config_cls, setup, suites=suites, **fields))


_REGISTRY: dict[str, Benchmark[Any]] = {}


def register(bench: Benchmark[C]) -> Benchmark[C]:
    if bench.name in _REGISTRY:
        raise ValueError(f"benchmark {bench.name} registered twice")
    for m in bench.timed_modules():
        module_source(m)  # a misspelt module would silently drop out of the hash
    _REGISTRY[bench.name] = bench
    return bench


def registered() -> dict[str, Benchmark[Any]]:
    """Every benchmark registered so far, by name (`chipbench.workloads.registry()` registers all)."""
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Benchmark[Any]:
    reg = registered()
    if name not in reg:
        near = difflib.get_close_matches(name, list(reg), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        raise UsageError(f"unknown benchmark {name!r}; {hint}run `chipbench list` (known: {', '.join(reg)})")
    return reg[name]
