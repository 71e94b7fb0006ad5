"""Result files: pytest-benchmark's JSON format with chipbench's fields in `extra_info` and `chipbench`.

One file per run = config + environment + measurements. `pytest-benchmark compare` reads them; so does
`chipbench compare`. This module builds the typed document (results.typed) from the workers' replies;
`files` writes and loads it, `render` shows it.
"""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import chipbench
from chipbench.core import stats
from chipbench.core.price import Price
from chipbench.platform.ceilings import Ceilings
from chipbench.platform.hardware import machine_id
from chipbench.results.header import (
    CaseError,
    CeilingsSeen,
    CommitInfo,
    CpuInfo,
    DeviceInfo,
    HostAllocator,
    MachineInfo,
    PriceSeen,
    RunSummary,
)
from chipbench.results.measurement import Energy, Measurement
from chipbench.results.metrics import Setting, derive_metrics
from chipbench.results.model import Benchmark, ExtraInfo, Scaling, Stats, WorkRecord
from chipbench.results.outcomes import CaseOutcome, RunOutcome
from chipbench.results.roofline import Roofline, roofline
from chipbench.results.typed import ResultsDocument, RunHeader
from chipbench.results.wire import JSONObject, integer

PYTEST_BENCHMARK_VERSION = "5.1.0"  # the file-format version we write


def machine_info(env: Mapping[str, Any]) -> MachineInfo:
    """pytest-benchmark's machine_info plus chipbench's device and stack description."""
    alloc = env.get("host_allocator")
    return MachineInfo(
        node=platform.node(),
        processor=platform.processor(),
        machine=platform.machine(),
        python_compiler=platform.python_compiler(),
        python_implementation=platform.python_implementation(),
        python_implementation_version=platform.python_version(),
        python_version=platform.python_version(),
        python_build=tuple(platform.python_build()),
        release=platform.release(),
        system=platform.system(),
        cpu=CpuInfo(
            brand_raw=env["cpu"]["model"], arch=env["cpu"]["arch"], count=env["cpu"]["logical_cores"]
        ),
        chipbench_machine_id=machine_id(dict(env)),
        device=DeviceInfo.from_json(env["device"]),
        packages=dict(env["packages"]),
        host_allocator=HostAllocator.from_json(alloc) if isinstance(alloc, dict) else None,
    )


@dataclass(frozen=True)
class _Run:
    """What every case of one run shares when its result is built."""

    env: Mapping[str, Any]
    kind: str
    world: int
    ceilings: Ceilings | None
    price: Price | None


def _world(env: Mapping[str, Any]) -> int:
    return int((env.get("distributed") or {}).get("world_size", 1))


def _error(oc: CaseOutcome, name: str, world: int) -> CaseError:
    p = oc.payload
    return CaseError(
        name=name,
        world_size=world,
        group=oc.case.bench,
        params=oc.case.overrides,
        error_type=p.get("error_type", "error"),
        message=p.get("message", ""),
        traceback=p.get("traceback"),
        wall_s=oc.wall_s,
    )


def _metrics(
    run: _Run, work: WorkRecord, st: Stats, m: Measurement, dtype: str | None, info: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str], Roofline | None]:
    """A case's derived metrics, why any is absent, and its roofline breakdown."""
    env = run.env
    median = st.median_s or 0.0
    metrics, missing = derive_metrics(
        work,
        median,
        st,
        Setting(
            device_name=env["device"]["name"],
            dtype=dtype,
            ceilings=run.ceilings,
            world_size=run.world,
            tf32=bool((env.get("tf32") or {}).get("effective")),
            price=run.price,
            nodes=int((env.get("distributed") or {}).get("nodes", 1)),
            cache_bytes=integer(env["device"].get("last_level_cache_bytes")),
        ),
        peak_mem_bytes=m.peak_mem_bytes,
        energy=m.extra.energy,
    )
    roof = None
    if isinstance(info.get("parts"), dict):
        roof, why = roofline(info["parts"], median, dtype, run.ceilings)
        if roof is not None:
            metrics["share_of_roofline"] = roof.share_of_roofline
        else:
            missing["share_of_roofline"] = why or "not measured"
    comm = m.extra.comm_s_per_step_by_rank
    if comm:
        # The busiest rank's time in collectives over the (slowest-rank) median step.
        metrics["comm_share_of_step"] = max(comm) / median
    elif run.world > 1:
        missing["comm_share_of_step"] = m.extra.comm_unavailable or "not profiled"
    return metrics, missing, roof


def _flags(
    metrics: Mapping[str, float], ceilings: Ceilings | None, energy: Energy | None = None
) -> tuple[str, ...]:
    above = tuple(
        f"{k} is {v:.0%}, above 100%: a counting error, a stale ceiling (rerun `chipbench calibrate`) "
        "or data that fit in a cache the ceiling's did not"
        for k, v in metrics.items()
        if (k.startswith("share_of_") or k == "mfu") and v > 1.0
    )
    why = ceilings.disturbed if ceilings is not None else None
    busy = tuple(
        f"{k} is of a ceiling measured on a disturbed machine ({why}): too high by as much as the "
        "ceiling was low; rerun `chipbench calibrate` when the machine is quiet"
        for k in metrics
        if (k.startswith("share_of_ceiling") or k == "share_of_roofline") and why
    )
    unlike = energy.unlike_timed if energy is not None else None
    per = [k for k in metrics if k.startswith(("joules_per_", "energy_usd_per_")) or k.endswith("_per_joule")]
    window = (f"{', '.join(per)}: {unlike}",) if unlike and per else ()
    return above + busy + window


def _benchmark(run: _Run, oc: CaseOutcome, name: str) -> Benchmark:
    """One finished case's result, from the worker's reply."""
    case, p = oc.case, oc.payload
    raw = p["measurement"]
    m = Measurement.from_json(raw)
    work = WorkRecord.from_json(p["work"])
    st = Stats.from_json(stats.summarize(raw["samples"], raw["iterations"]))
    cfg = p["config"]
    dtype = cfg.get("dtype")
    metrics, missing, roof = _metrics(run, work, st, m, dtype, p["info"])
    extra = ExtraInfo(
        benchmark=case.bench,
        version_hash=p["version_hash"],
        config=cfg,
        # What was asked before fitting to this device (dtype=auto, max_rows=-1): the report matches
        # machines on it.
        requested=case.overrides if case.requested is None else case.requested,
        device=run.kind,
        world_size=run.world,
        dtype=dtype,
        metrics=metrics,
        unavailable=missing,
        flags=_flags(metrics, run.ceilings, m.extra.energy),
        # Why the machine was disturbed while this case was measured (the kernel's evidence,
        # `measurement.extra.contention`); the gate says "rerun" instead of judging it.
        disturbed=m.extra.disturbed,
        work=work,
        info=p["info"],
        # Each part of a whole step against the ceilings (results.roofline), when measured.
        roofline=roof,
        measurement=m,
    )
    options = {"disable_gc": True, "timer": raw["timer"], "min_rounds": None, "max_time": None,
               "min_time": None, "warmup": raw["warmup_steps"]}  # fmt: skip
    return Benchmark(
        group=case.bench, name=name, fullname=f"chipbench::{name}", params=case.overrides or None,
        param=case.label or None, extra_info=extra, options=options, stats=st,
    )  # fmt: skip


def build_document(
    run: RunOutcome,
    *,
    ceilings: Ceilings | None,
    suite: str | None,
    argv: list[str],
    commit_info: CommitInfo | Mapping[str, Any],
    price: Price | None = None,
) -> ResultsDocument:
    """The typed results document of one run."""
    env = run.env
    shared = _Run(env, run.kind, _world(env), ceilings, price)
    benchmarks: list[Benchmark] = []
    errors: list[CaseError] = []
    for oc in run.outcomes:
        case = oc.case
        name = case.name if shared.world == 1 else f"{case.name}@world{shared.world}"
        if oc.ok:
            benchmarks.append(_benchmark(shared, oc, name))
        else:
            errors.append(_error(oc, name, shared.world))
    header = RunHeader(
        schema_version=chipbench.SCHEMA_VERSION,
        version=chipbench.__version__,
        machine_id=machine_id(dict(env)),
        suite=suite,
        argv=tuple(argv),
        environment=env,
        ceilings=CeilingsSeen.from_json(ceilings.to_json()) if ceilings else None,
        price=PriceSeen.from_json(price.as_dict()) if price else None,
        errors=tuple(errors),
        interrupted=run.interrupted,
    )
    return ResultsDocument(
        machine_info=machine_info(env),
        commit_info=commit_info if isinstance(commit_info, CommitInfo) else CommitInfo.from_json(commit_info),
        benchmarks=tuple(benchmarks),
        datetime=dt.datetime.now(dt.timezone.utc).isoformat(),
        version=PYTEST_BENCHMARK_VERSION,
        chipbench=header,
    )


def build(
    run: RunOutcome,
    *,
    ceilings: Ceilings | None,
    suite: str | None,
    argv: list[str],
    commit_info: Mapping[str, Any],
    price: Price | None = None,
) -> JSONObject:
    """The results document of one run, as JSON (`build_document(...).to_json()`)."""
    return build_document(
        run, ceilings=ceilings, suite=suite, argv=argv, commit_info=commit_info, price=price
    ).to_json()


THROUGHPUT_KEYS = ("samples_per_s", "tokens_per_s", "tflops", "gbps")


def base_name(name: str) -> str:
    """A benchmark's name without its `@worldN` suffix (multi-process results carry one, so they never
    match a one-process baseline by name)."""
    return name.rsplit("@world", 1)[0]


def merge(docs: Sequence[ResultsDocument]) -> ResultsDocument:
    """One results document from runs of the same cases at several process counts (a sweep)."""
    first = docs[0]
    cb = first.header
    runs = tuple(
        RunSummary(world_size=d.header.world_size, distributed=d.header.environment.get("distributed"),
                   benchmarks=len(d.benchmarks), errors=len(d.errors))
        for d in docs
    )  # fmt: skip
    # The runs of a sweep follow one another in one process, each timed from its start: the last is the whole.
    walls = [d.header.wall_s for d in docs]
    header = replace(
        cb,
        errors=tuple(e for d in docs for e in d.errors),
        interrupted=any(d.header.interrupted for d in docs),
        runs=runs,
        wall_s=max(w for w in walls if w is not None) if all(w is not None for w in walls) else None,
        # wall_s is written after the runs, as the sweep's
        key_order=tuple(k for k in cb.key_order if k != "wall_s") if cb.key_order is not None else None,
    )
    merged = replace(first, benchmarks=tuple(b for d in docs for b in d.benchmarks), chipbench=header)
    return add_scaling(merged)


def add_scaling(doc: ResultsDocument) -> ResultsDocument:
    """Scaling efficiency of every N-process result whose one-process twin is in the same document:
    global throughput over N times the one-process throughput (1.0 = perfect, weak or strong scaling)."""
    single = {b.name: b for b in doc.benchmarks if b.extra_info.world == 1}
    return replace(doc, benchmarks=tuple(_scaled(b, single) for b in doc.benchmarks))


def _scaled(b: Benchmark, single: Mapping[str, Benchmark]) -> Benchmark:
    n = b.extra_info.world
    one = single.get(base_name(b.name)) if n > 1 else None
    if one is None:
        return b
    m, m1 = dict(b.extra_info.metrics), one.extra_info.metrics
    key = next((k for k in THROUGHPUT_KEYS if m.get(k) and m1.get(k)), None)
    if key is None:  # no work count: step time alone cannot tell weak from strong scaling
        missing = {**b.extra_info.unavailable, "scaling_efficiency": "the benchmark counts no work per step"}
        return replace(b, extra_info=replace(b.extra_info, unavailable=missing))
    m["speedup_over_1proc"] = m[key] / m1[key]
    m["scaling_efficiency"] = m[key] / (n * m1[key])
    scaling = Scaling(baseline=one.name, metric=key, world_size=n)
    return replace(b, extra_info=replace(b.extra_info, metrics=m, scaling=scaling))
