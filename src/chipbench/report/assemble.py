"""The data behind `chipbench report`: results files from any machines read, pooled per machine and case,
matched across machines, and normalized to a baseline machine. No plotting and no printing here.

Glossary:
- machine: one machine id (device model, count, ISA tier); several results files of it are pooled.
- case key: what a user asked for (benchmark, requested config, process count). Machines fit some fields
  to themselves (`dtype=auto`, `max_rows=-1`, batch size), so cases match on the request, and the fitted
  values are shown side by side with every difference labelled.
- pooled case: every run of one case on one machine with one version hash; its median, 95% CI and the
  spread of its run medians.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chipbench.core import stats
from chipbench.core.errors import UsageError
from chipbench.gate.compare import median_ci_runs, ratio_ci
from chipbench.report.machines import Loaded, Machine, Skipped, collect, machine_id_of, read_machine
from chipbench.results.header import MachineInfo
from chipbench.results.model import Benchmark, WorkRecord
from chipbench.results.roofline import Roofline
from chipbench.results.typed import ResultsDocument
from chipbench.workloads import registry

__all__ = [
    "Cell",
    "LeftOut",
    "Loaded",
    "Machine",
    "Pooled",
    "Report",
    "Row",
    "Skipped",
    "build",
    "collect",
    "machine_id_of",
]

FITTED_FIELDS = ("dtype", "max_rows", "batch_size")
"""Config fields chipbench may fit to a machine; a file that predates recording the request is matched
with these taken as fitted where the suite's own case leaves them open."""


@dataclass
class Pooled:
    """Every run of one case on one machine and version hash."""

    machine: str
    key: str
    """The case key (see the glossary), as canonical JSON."""
    bench: str
    world: int
    requested: Mapping[str, Any]
    """The benchmark's config fields as asked (before fitting to the machine)."""
    requested_known: bool
    """False when the file predates recording the request and it was inferred from the suite."""
    resolved: Mapping[str, Any]
    """The config as run (fitted values included), from the newest run."""
    version_hash: str | None
    runs: list[np.ndarray] = field(default_factory=list)
    metrics_runs: list[dict[str, float]] = field(default_factory=list)
    work: WorkRecord = field(default_factory=WorkRecord)
    flags: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    command: str = ""
    date: str = ""
    stacks: set[str] = field(default_factory=set)
    """torch (and torchrec) versions of the pooled runs: more than one is said in the notes."""
    energy_scope: str = ""
    price_source: str = ""
    roofline: Roofline | None = None
    """The newest run's roofline breakdown (results.roofline), validated on load."""
    soak: str = ""
    """Burst against sustained: the clocks and temperature before and after a `--soak` (empty: none)."""
    run_files: list[str] = field(default_factory=list)
    """The results file of each run (parallel to `runs`)."""
    disturbed: list[str] = field(default_factory=list)
    """Why each run measured on a disturbed machine was (only with `--include-disturbed`; else such a run
    is left out)."""
    median_s: float = math.nan
    ci_s: tuple[float, float] = (math.nan, math.nan)
    run_medians_s: list[float] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        """Each metric's median over runs."""
        keys = {k for m in self.metrics_runs for k in m}
        return {k: float(np.median([m[k] for m in self.metrics_runs if k in m])) for k in sorted(keys)}

    @property
    def name(self) -> str:
        return case_name(self.bench, self.requested, self.world)


def case_name(bench: str, requested: Mapping[str, Any], world: int) -> str:
    """A case as a user names it: `bench[field=value,...]`, `@worldN` for N processes."""
    label = ",".join(f"{k}={v}" for k, v in sorted(requested.items()))
    suffix = f"@world{world}" if world > 1 else ""
    return (f"{bench}[{label}]" if label else bench) + suffix


@dataclass(frozen=True)
class LeftOut:
    """A run that was read but is not on the page, and why."""

    machine: str
    path: str
    """Its results file."""
    commit: str
    """The commit of its file (8 hex digits; empty when not recorded)."""
    date: str
    """Its file's date (UTC, ISO)."""
    case: str
    reason: str
    """Why it is left out, e.g. `disturbed: its threads waited 30% ...` or `older code: ...`."""


@dataclass(frozen=True)
class Cell:
    """One machine's figure in a matched row, against the baseline."""

    pooled: Pooled
    speedup: float | None
    """Baseline median step time over this machine's (> 1: faster than the baseline)."""
    speedup_ci: tuple[float, float] | None
    differences: tuple[str, ...]
    """Fitted values that differ from the baseline's, e.g. `dtype bf16 (baseline fp32)`."""


@dataclass(frozen=True)
class Row:
    """One case across machines."""

    key: str
    name: str
    bench: str
    family: str
    cells: dict[str, Cell]
    """Machine id -> its cell."""
    not_comparable: dict[str, str]
    """Machine id -> why its figure cannot be set against the baseline's."""


@dataclass(frozen=True)
class Report:
    title: str
    machines: list[Machine]
    """Each described by the files whose runs are shown (`Machine.files`), not by every file read."""
    baseline: str
    rows: list[Row]
    pooled: list[Pooled]
    skipped: list[Skipped]
    notes: list[str]
    """Warnings a reader must see (no common case, superseded runs left out)."""
    left_out: list[LeftOut] = field(default_factory=list)
    """Every run read but not shown (older code, a disturbed machine), oldest file first."""
    include_disturbed: bool = False
    """Runs measured on a disturbed machine are shown, labelled (`--include-disturbed`)."""


def infer_requested(
    bench: str, params: Mapping[str, Any], suite: str | None
) -> tuple[Mapping[str, Any], bool]:
    """The request behind a fitted config, for a file that did not record it: the suite case it came
    from, where exactly one fits (its fields equal, any other field one chipbench fits). Else the config
    as run, flagged unknown."""
    b = registry().get(bench)
    if b is None or suite is None:
        return dict(params), False
    found = []
    for c in b.suites.get(suite, []):
        same = all(
            k in params and (params[k] == v or (k in FITTED_FIELDS and v in ("auto", -1)))
            for k, v in c.items()
        )
        if same and set(params) - set(c) <= set(FITTED_FIELDS):
            found.append(c)
    if len(found) == 1:
        return dict(found[0]), False
    return dict(params), False


def case_key(bench: str, requested: Mapping[str, Any], world: int) -> str:
    return json.dumps([bench, requested, world], sort_keys=True, default=str)


@dataclass(frozen=True)
class _Source:
    """What every benchmark of one results file shares in the pool."""

    mid: str
    suite: str | None
    command: str
    stack: str
    price_source: str
    date: str
    path: str
    commit: str


def _source(path: Path, doc: ResultsDocument) -> _Source:
    cb = doc.header
    command = " ".join(["chipbench", *cb.argv[1:]]) if cb.argv else "pytest benchmarks (pytest-benchmark)"
    mi = doc.machine_info or MachineInfo()
    stack = " ".join(f"{k} {v}" for k in ("torch", "torchrec") if isinstance(v := mi.package(k), str))
    price = (cb.price.source if cb.price else None) or ""
    commit = ((doc.commit_info.id if doc.commit_info else None) or "")[:8]
    return _Source(machine_id_of(doc), cb.suite, command, stack, price, doc.datetime or "", str(path), commit)


def _request(b: Benchmark, suite: str | None) -> tuple[Mapping[str, Any], bool]:
    """What the user asked for: as recorded, else inferred from the suite."""
    if b.extra_info.requested is not None:
        return dict(b.extra_info.requested), True
    return infer_requested(b.bench, b.params or b.extra_info.config, suite)


def _add_run(groups: dict[tuple[str, str, str | None], Pooled], src: _Source, b: Benchmark) -> None:
    """One benchmark's run into its pooled case (the newest run's details win)."""
    extra = b.extra_info
    params = b.params or extra.config
    requested, known = _request(b, src.suite)
    key = case_key(b.bench, requested, extra.world)
    vh = extra.version_hash
    p = groups.setdefault(
        (src.mid, key, vh), Pooled(src.mid, key, b.bench, extra.world, requested, known, params, vh)
    )
    p.runs.append(np.asarray(b.samples, dtype=float))
    p.run_files.append(src.path)
    if extra.disturbed:
        p.disturbed.append(extra.disturbed)
    p.metrics_runs.append({k: float(v) for k, v in extra.metrics.items()})
    p.resolved = dict(extra.config or params)
    p.work = extra.work or WorkRecord()
    p.flags = list(extra.flags)  # the newest run's
    p.unavailable = dict(extra.unavailable)
    p.command = src.command
    p.date = src.date
    if src.stack:
        p.stacks.add(src.stack)
    m = extra.measurement
    energy, soak = (m.extra.energy, m.extra.soak) if m is not None else (None, None)
    p.energy_scope = (energy.scope if energy else None) or ""
    p.price_source = src.price_source
    p.soak = soak.line() if soak else ""
    p.roofline = extra.roofline


def _newest(groups: dict[tuple[str, str, str | None], Pooled]) -> tuple[list[Pooled], list[Pooled]]:
    """Per machine and case, the newest version hash's pool; and the older ones it supersedes."""
    newest: dict[tuple[str, str], Pooled] = {}
    superseded: list[Pooled] = []
    for p in groups.values():  # insertion order follows the file dates
        old = newest.get((p.machine, p.key))
        if old is not None and old.version_hash != p.version_hash:
            older = old if old.date <= p.date else p
            superseded.append(older)
            if older is p:
                continue
        newest[(p.machine, p.key)] = p
    return list(newest.values()), superseded


def _disturbed_notes(counts: dict[str, int], include: bool) -> list[str]:
    if include:
        return [
            f"{mid}: {n} run(s) measured on a disturbed machine shown, labelled `disturbed` "
            "(--include-disturbed): another process held the CPUs, so their figures are not this machine's alone"
            for mid, n in sorted(counts.items())
        ]
    return [
        f"{mid}: {n} run(s) measured on a disturbed machine left out (another process held the CPUs; "
        "--include-disturbed shows them, labelled)"
        for mid, n in sorted(counts.items())
    ]


def pool(docs: Loaded, *, include_disturbed: bool = False) -> tuple[list[Pooled], list[str], list[LeftOut]]:
    """Pool runs per machine, case and version hash; where one machine holds several version hashes of a
    case, the newest is kept. Every run left out (older code; a disturbed machine, unless
    `include_disturbed`) is returned with its reason, and counted in the notes."""
    groups: dict[tuple[str, str, str | None], Pooled] = {}
    sources: dict[str, _Source] = {}
    left: list[LeftOut] = []
    disturbed: dict[str, int] = {}
    for path, doc in sorted(docs, key=lambda pd: pd[1].datetime or ""):
        src = sources[str(path)] = _source(path, doc)
        for b in doc.benchmarks:
            if why := b.extra_info.disturbed:
                disturbed[src.mid] = disturbed.get(src.mid, 0) + 1
                if not include_disturbed:  # as the gate does: another process's figure, not this machine's
                    name = case_name(b.bench, _request(b, src.suite)[0], b.extra_info.world)
                    left.append(LeftOut(src.mid, src.path, src.commit, src.date, name, f"disturbed: {why}"))
                    continue
            _add_run(groups, src, b)
    kept, superseded = _newest(groups)
    for old in superseded:
        for f in old.run_files:
            s = sources[f]
            reason = f"older code: version hash {old.version_hash} (a newer version's runs are shown)"
            left.append(LeftOut(s.mid, s.path, s.commit, s.date, old.name, reason))
    left.sort(key=lambda lo: (lo.machine, lo.date, lo.path, lo.case))
    olds: dict[str, list[Pooled]] = {}
    for old in superseded:
        olds.setdefault(old.machine, []).append(old)
    notes = [
        f"{mid}: {sum(len(o.runs) for o in ps)} older run(s) of {len({o.key for o in ps})} case(s) with another "
        "version hash left out (the newest code's runs are shown; the files are named under Machines)"
        for mid, ps in sorted(olds.items())
    ]
    notes += _disturbed_notes(disturbed, include_disturbed)
    mixed = sorted({(p.machine, " / ".join(sorted(p.stacks))) for p in kept if len(p.stacks) > 1})
    notes += [f"{mid}: runs of different software stacks pooled ({stacks})" for mid, stacks in mixed]
    for p in kept:
        allx = np.concatenate(p.runs)
        p.median_s = float(np.median(allx))
        p.run_medians_s = [float(np.median(r)) for r in p.runs]
        p.ci_s = median_ci_runs(p.runs) if len(p.runs) > 1 else stats.median_ci(allx)
    return kept, notes, left


# ---------------------------------------------------------------- matching


def _differences(p: Pooled, base: Pooled) -> tuple[str, ...]:
    out = []
    for k in sorted(set(p.resolved) | set(base.resolved)):
        a, b = p.resolved.get(k), base.resolved.get(k)
        if a != b:  # a field the request set is equal on both sides: only fitted fields differ
            out.append(f"{k} {a} (baseline {b})")
    return tuple(out)


def match(
    pooled: list[Pooled], machines: list[str], baseline: str, *, ignore_version_hash: bool
) -> list[Row]:
    by_key: dict[str, dict[str, Pooled]] = {}
    for p in pooled:
        by_key.setdefault(p.key, {})[p.machine] = p
    rows = []
    for key, per in by_key.items():
        base = per.get(baseline)
        cells: dict[str, Cell] = {}
        apart: dict[str, str] = {}
        for mid in machines:
            got = per.get(mid)
            if got is None:
                continue
            p = got
            if base is None:
                cells[mid] = Cell(p, None, None, ())
                continue
            if p is not base and p.version_hash != base.version_hash and not ignore_version_hash:
                apart[mid] = (
                    f"code differs: version hash {p.version_hash} vs the baseline's {base.version_hash} "
                    "(pass --ignore-version-hash to set them side by side anyway)"
                )
                cells[mid] = Cell(p, None, None, ())
                continue
            if p is base:
                cells[mid] = Cell(p, 1.0, (1.0, 1.0), ())
                continue
            r, lo, hi = ratio_ci(base.runs, p.runs, n_boot=1000)
            if not (
                r > 0 and lo > 0 and hi > 0
            ):  # bounded samples keep this from happening; never divide by 0
                cells[mid] = Cell(p, None, None, ())
                apart[mid] = "no speed-up: a ratio of medians that is not a positive number"
                continue
            diff = _differences(p, base)
            if p.version_hash != base.version_hash:  # only with --ignore-version-hash
                diff = (f"code differs: version hash {p.version_hash} (baseline {base.version_hash})", *diff)
            cells[mid] = Cell(p, 1.0 / r, (1.0 / hi, 1.0 / lo), diff)
        any_p = next(iter(per.values()))
        rows.append(Row(key, any_p.name, any_p.bench, any_p.bench.split(".")[0], cells, apart))
    rows.sort(key=lambda r: (r.family, r.bench, r.name))
    return rows


def build(
    paths: list[Path],
    *,
    baseline: str | None = None,
    title: str | None = None,
    skip_bad: bool = False,
    ignore_version_hash: bool = False,
    include_disturbed: bool = False,
) -> Report:
    """Read, pool and match every results file under `paths` (`build_loaded`)."""
    docs, skipped = collect(paths, skip_bad=skip_bad)
    return build_loaded(docs, skipped, baseline=baseline, title=title, ignore_version_hash=ignore_version_hash,
                        include_disturbed=include_disturbed)  # fmt: skip


def build_loaded(
    loaded: Loaded,
    skipped: list[Skipped],
    *,
    baseline: str | None = None,
    title: str | None = None,
    ignore_version_hash: bool = False,
    include_disturbed: bool = False,
) -> Report:
    """Pool and match results already read (from files, or a store's documents). Each machine is described
    by the files whose runs are shown; every run left out is named with its reason (`Report.left_out`)."""
    docs: Loaded = []
    for f, d in loaded:
        if d.benchmarks:
            docs.append((f, d))
        else:
            skipped.append(Skipped(str(f), "holds no finished benchmark"))
    if not docs:
        raise UsageError("no results to report: every file given was empty or bad; run `chipbench run` first")
    pooled, notes, left_out = pool(docs, include_disturbed=include_disturbed)
    used = {f for p in pooled for f in p.run_files}
    by_machine: dict[str, Loaded] = {}
    for pd in docs:
        by_machine.setdefault(machine_id_of(pd[1]), []).append(pd)
    machines = [read_machine(mid, ds, used) for mid, ds in sorted(by_machine.items())]
    ids = [m.id for m in machines]
    if baseline is None:
        baseline = ids[0]
    elif baseline not in ids:
        raise UsageError(
            f"--baseline {baseline!r} is not among the machines in these results: {', '.join(ids)}"
        )
    rows = match(pooled, ids, baseline, ignore_version_hash=ignore_version_hash)
    inferred = sum(1 for p in pooled if not p.requested_known)
    if inferred:
        notes.append(
            f"{inferred} case(s) come from files that predate recording the request: it was inferred from "
            "their suite (the config as run where no suite case fits)"
        )
    if len(ids) > 1:
        for mid in ids:
            if mid != baseline and not any(mid in r.cells and r.cells[mid].speedup is not None for r in rows):
                notes.append(
                    f"{mid} has no case in common with the baseline {baseline} (same benchmark, request and "
                    "code): its figures are shown alone"
                )
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Report(
        title=title or f"chipbench: {len(ids)} machine(s) side by side ({when})",
        machines=machines,
        baseline=baseline,
        rows=rows,
        pooled=pooled,
        skipped=skipped,
        notes=notes,
        left_out=left_out,
        include_disturbed=include_disturbed,
    )
