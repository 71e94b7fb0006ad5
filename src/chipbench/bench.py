"""Benchmark definitions, the registry, suites, and the metrics derived from a measurement."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chipbench.config import apply_overrides, config_dict
from chipbench.errors import UsageError

SUITES = ("smoke", "default", "full")


@dataclass(frozen=True)
class Work:
    """What one step does, for derived metrics. None means 'not meaningful for this benchmark'."""

    flops: float | None = None
    """Floating-point operations per step (convention in `flop_convention`)."""
    bytes: float | None = None
    """Bytes moved through device memory per step (convention in `bytes_convention`)."""
    samples: int | None = None
    """Samples (e.g. batch rows) per step, for samples_per_s."""
    tokens: int | None = None
    """Tokens per step, for tokens_per_s."""
    model_flops: bool = False
    """True when `flops` counts a whole model's FLOPs, so the share of peak is reported as MFU too."""
    flop_convention: str | None = None
    bytes_convention: str | None = None
    extra_bytes: dict[str, float] = field(default_factory=dict)
    """Other byte counts per step under other named conventions; each yields `gbps_<name>`."""


@dataclass
class Prepared:
    """A benchmark ready to time: inputs already generated on the device."""

    step: Callable[[], Any]
    work: Work
    info: dict[str, Any] = field(default_factory=dict)
    """Facts about how it ran (backend chosen, shapes, caps applied); stored in extra_info."""
    after: Callable[[], dict[str, Any]] | None = None
    """Optional extra measurements taken after the timed rounds (e.g. a time breakdown)."""


@dataclass(frozen=True)
class RunContext:
    """Where and how a benchmark runs."""

    device: str
    """Device kind: cpu, cuda, rocm, mps, xpu."""
    torch_device: str
    seed: int = 0
    free_memory_bytes: int | None = None
    rank: int = 0
    """This process's global rank; 0 when not distributed."""
    world_size: int = 1
    """Processes in the default process group (initialized by the caller when > 1)."""
    local_rank: int = 0
    """Rank on this node: picks the accelerator (cuda:<local_rank>)."""
    dist_backend: str | None = None
    """nccl, gloo or xccl when distributed; None otherwise."""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: its config type, how to set it up, how to describe it, and its suite cases."""

    name: str
    doc: str
    config_cls: type
    setup: Callable[[Any, RunContext], Prepared]
    describe: Callable[[Any], dict[str, Any]]
    suites: dict[str, list[dict[str, Any]]]
    """Suite name -> list of config overrides, one case each."""
    fit: Callable[[Any, int], dict[str, Any]] | None = None
    """(config, free memory bytes) -> overrides that fit the case to the device (e.g. a table-row cap)."""
    auto_dtype: dict[str, str] = field(default_factory=dict)
    """Device kind -> dtype that `dtype=auto` means for this benchmark, where the device-wide choice
    does not suit it (e.g. DLRM's small matmuls under bf16 autocast on CPUs); recorded with its reason."""
    plan: Callable[[Any, int, str], dict[str, Any]] | None = None
    """(config, world size, device kind) -> how the benchmark is laid out over that many processes
    (e.g. TorchRec's sharding plan), without allocating; shown by `describe --nproc-per-node`."""
    needs_world: int = 1
    """Fewest processes the benchmark runs on (collectives need 2); below it, suites skip it."""

    def resolve_auto_dtype(self, env: dict[str, Any], ceilings: dict[str, Any] | None) -> tuple[str, str]:
        """(dtype, reason) that `dtype=auto` stands for on the device described by `env`."""
        from chipbench import hardware

        kind = env["device"]["kind"]
        if kind in self.auto_dtype:
            return self.auto_dtype[kind], f"{self.name} runs {self.auto_dtype[kind]} on {kind} by default"
        return hardware.auto_dtype(env, ceilings)

    def config(self, overrides: dict[str, Any] | None = None) -> Any:
        return apply_overrides(self.config_cls(), overrides or {})

    def version_hash(self, cfg: Any) -> str:
        """Hash of the benchmark's source module and its config: a changed benchmark never matches a stale baseline."""
        module = inspect.getmodule(self.setup)
        src = inspect.getsource(module) if module else ""
        blob = json.dumps({"src": src, "cfg": config_dict(cfg)}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def memory_estimate(b: Benchmark, cfg: Any, world: int = 1, kind: str = "cpu") -> int | None:
    """Bytes one process needs for this case: the benchmark's own estimate, or its per-rank layout's
    over `world` processes (FSDP2 and TorchRec shard what one process would hold whole)."""
    est: int | None = b.describe(cfg).get("memory_bytes_estimate")
    if world > 1 and b.plan is not None:
        est = b.plan(cfg, world, kind).get("memory_bytes_per_rank_estimate", est)
    return est


_REGISTRY: dict[str, Benchmark] = {}


def register(bench: Benchmark) -> Benchmark:
    if bench.name in _REGISTRY:
        raise ValueError(f"benchmark {bench.name} registered twice")
    _REGISTRY[bench.name] = bench
    return bench


def registry() -> dict[str, Benchmark]:
    """Every benchmark. Each module of chipbench.workloads registers its own on import; none imports
    torch at module level, so listing and validating stay fast."""
    import chipbench.workloads as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Benchmark:
    reg = registry()
    if name not in reg:
        raise UsageError(f"unknown benchmark {name!r}; run `chipbench list` (known: {', '.join(reg)})")
    return reg[name]


@dataclass(frozen=True)
class Case:
    """One benchmark at one config: the unit the runner schedules."""

    bench: str
    overrides: dict[str, Any]

    @property
    def label(self) -> str:
        return ",".join(f"{k}={_fmt(v)}" for k, v in sorted(self.overrides.items()))

    @property
    def name(self) -> str:
        return f"{self.bench}[{self.label}]" if self.overrides else self.bench


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "-".join(map(str, v))
    return str(v)


def resolve_case(case: Case, env: dict[str, Any], ceilings: dict[str, Any] | None, free_bytes: int) -> Case:
    """Make a case concrete for this device: dtype=auto replaced, sizes fitted to free memory."""
    b = get(case.bench)
    ov = dict(case.overrides)
    if getattr(b.config(ov), "dtype", None) == "auto":
        ov["dtype"] = b.resolve_auto_dtype(env, ceilings)[0]
    if b.fit is not None:
        ov.update(b.fit(b.config(ov), free_bytes))
    return Case(case.bench, ov)


def suite_cases(suite: str, only: list[str] | None = None, world: int = 1) -> list[Case]:
    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    cases: list[Case] = []
    for name, bench in registry().items():
        if only and name not in only:
            continue
        if bench.needs_world > world:
            continue
        for ov in bench.suites.get(suite, []):
            cases.append(Case(name, dict(ov)))
    return cases


def build_cases(
    benches: list[str], suite: str | None, sets: dict[str, str], dtype: str | None, world: int = 1
) -> list[Case]:
    """Expand the user's benchmark names and suite into cases, validating every override up front."""
    for b in benches:
        if get(b).needs_world > world:
            raise UsageError(
                f"{b} needs at least {get(b).needs_world} processes; "
                f"run it with --nproc-per-node {get(b).needs_world} (or more)"
            )
    if suite is None and not benches:
        suite = "smoke"
    if suite is not None:
        cases = suite_cases(suite, benches or None, world)
        if benches and not cases:
            # A named benchmark outside the suite runs once at its defaults.
            cases = [Case(b, {}) for b in benches]
    else:
        cases = [Case(b, {}) for b in benches]
    out = []
    for c in cases:
        ov = dict(c.overrides)
        bench = get(c.bench)
        fields = {f.name for f in dataclasses.fields(bench.config_cls)}
        if dtype is not None and "dtype" in fields:
            ov["dtype"] = dtype
        ov.update(sets)
        bench.config(ov)  # raises UsageError on unknown keys or bad values
        out.append(Case(c.bench, ov))
    return out


def derive_metrics(
    work: Work,
    median_s: float,
    stats: dict[str, Any],
    *,
    device_name: str,
    dtype: str | None,
    ceilings: dict[str, Any] | None,
    peak_mem_bytes: int | None,
    world_size: int = 1,
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, unavailable): derived metrics with units in their names, and why any is absent.

    `work` counts one rank's step; with `world_size` ranks, throughputs are global (every rank's work
    over the slowest rank's time) with a `_per_rank` twin, and shares of peak or ceiling are per device.
    """
    from chipbench import peaks

    m: dict[str, float] = {
        "step_ms_p50": stats["p50"] * 1e3,
        "step_ms_p90": stats["p90"] * 1e3,
        "step_ms_p99": stats["p99"] * 1e3,
    }
    missing: dict[str, str] = {}
    w = max(1, world_size)
    if work.samples:
        m["samples_per_s"] = w * work.samples / median_s
        if w > 1:
            m["samples_per_s_per_rank"] = work.samples / median_s
    if work.tokens:
        m["tokens_per_s"] = w * work.tokens / median_s
        if w > 1:
            m["tokens_per_s_per_rank"] = work.tokens / median_s
    if work.flops:
        tflops = work.flops / median_s / 1e12  # per device
        m["tflops"] = w * tflops
        if w > 1:
            m["tflops_per_device"] = tflops
        if dtype:
            peak, why = peaks.peak_tflops(device_name, dtype)
            if peak:
                m["share_of_peak_flops"] = tflops / peak
                if work.model_flops:
                    m["mfu"] = tflops / peak
            else:
                missing["share_of_peak_flops"] = why
                if work.model_flops:
                    missing["mfu"] = why
            ceil = ((ceilings or {}).get("matmul_tflops") or {}).get(dtype)
            if ceil:
                m["share_of_ceiling_flops"] = tflops / ceil
            else:
                missing["share_of_ceiling_flops"] = (
                    f"no measured {dtype} matmul ceiling: run `chipbench calibrate`"
                )
    if work.bytes:
        gbps = work.bytes / median_s / 1e9  # per device
        if work.bytes_convention and work.bytes_convention.startswith("collective"):
            # A collective's bandwidth is the job's, per nccl-tests (not summed over ranks), and is link
            # bandwidth, not device memory: no memory peak or copy ceiling applies.
            m["gbps"] = gbps
            for name, b in work.extra_bytes.items():
                m[f"gbps_{name}"] = b / median_s / 1e9
            if peak_mem_bytes is not None:
                m["peak_mem_gib"] = peak_mem_bytes / 2**30
            return m, missing
        m["gbps"] = w * gbps
        if w > 1:
            m["gbps_per_device"] = gbps
        for name, b in work.extra_bytes.items():
            m[f"gbps_{name}"] = w * b / median_s / 1e9
        peak_bw, why = peaks.peak_mem_gbps(device_name)
        if peak_bw:
            m["share_of_peak_bw"] = gbps / peak_bw
        else:
            missing["share_of_peak_bw"] = why
        ceil_bw = (ceilings or {}).get("copy_gbps")
        if ceil_bw:
            m["share_of_ceiling_bw"] = gbps / ceil_bw
        else:
            missing["share_of_ceiling_bw"] = "no measured copy bandwidth: run `chipbench calibrate`"
    if peak_mem_bytes is not None:
        m["peak_mem_gib"] = peak_mem_bytes / 2**30
    return m, missing
