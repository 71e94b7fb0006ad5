"""What a run was measured with, and which runs a baseline is: the software stack a results file records,
the order of runs in time, the run-to-run spread of identical code, and the choice of baseline runs.

- **Stack.** What a results file records of the software under the timed code: the Python, every package
  it lists (torch, torchrec, fbgemm), the device's driver and runtime, the host allocator's setting. A
  field one file records and another does not counts as a difference ("not recorded -> X"): nobody can
  say it stayed the same.
- **Order.** Commit time (`commit_info.time`), then the file's `datetime`, then the path.
- **Spread at unchanged code.** The standard deviation of the log of run medians among runs of one case
  at one version hash and one stack, pooled over every such group with two or more runs (degrees of
  freedom: runs - groups). It holds back-to-back noise and host drift between the runs alike.
- **Baseline choice.** Per case, the runs at one version hash and one stack: the new side's, where the
  baseline has runs at it, else those of the baseline's newest run; `last` keeps the newest `last` of
  them. Months of older code, another torch, or runs at several hashes are never pooled into one baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chipbench.results.files import load_typed, result_files
from chipbench.results.header import MachineInfo
from chipbench.results.provenance import Stack as Stack
from chipbench.results.provenance import order_key as order_key
from chipbench.results.provenance import stack as stack
from chipbench.results.typed import ResultsDocument

NOT_RECORDED = "not recorded"


def stack_changes(before: Stack, after: Stack) -> list[str]:
    """`torch 2.13.0 -> 2.14.0`, one per field that differs (a field only one side records included)."""
    a, b = dict(before), dict(after)
    return [
        f"{k} {a.get(k, NOT_RECORDED)} -> {b.get(k, NOT_RECORDED)}"
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k)
    ]


@dataclass(frozen=True)
class Run:
    """One case in one results file: what the baseline choice and the spread need."""

    file: str
    order: tuple[float, float, str]
    """order_key of its file."""
    version_hash: str | None
    stack: Stack
    median_s: float
    """The run's median step time (> 0)."""
    disturbed: str | None = None
    """Why the machine was disturbed while it ran (then it is never a baseline run)."""

    @property
    def key(self) -> tuple[str | None, Stack]:
        return self.version_hash, self.stack


@dataclass(frozen=True)
class RunSpread:
    """What is known of one case's run-to-run spread at unchanged code."""

    sd: float
    """Standard deviation of the log of run medians (0.05 ~ 5%)."""
    df: int
    """Its degrees of freedom: runs - groups."""
    runs: int
    source: str
    """Where it comes from, for the note: `4 base runs at one hash`."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sd) and self.sd >= 0) or self.df < 1:
            raise ValueError("a run spread needs a finite sd >= 0 and at least one degree of freedom")


def spread(groups: Iterable[Sequence[float]], source: str) -> RunSpread | None:
    """The pooled spread of the log of run medians within groups of runs of identical code; None if no
    group has two runs."""
    ss, df, runs = 0.0, 0, 0
    for g in groups:
        logs = np.log(np.asarray(g, dtype=float))
        if logs.size < 2:
            continue
        ss += float(np.sum((logs - logs.mean()) ** 2))
        df += logs.size - 1
        runs += logs.size
    if df < 1:
        return None
    return RunSpread(math.sqrt(ss / df), df, runs, f"{runs} {source} runs at one hash")


def spread_of_runs(runs: Sequence[Run], source: str) -> RunSpread | None:
    """`spread` over the undisturbed runs of one case, grouped by version hash and stack."""
    groups: dict[tuple[str | None, Stack], list[float]] = {}
    for r in runs:
        if not r.disturbed:
            groups.setdefault(r.key, []).append(r.median_s)
    return spread(groups.values(), source)


def choose(runs: Sequence[Run], new_keys: set[tuple[str | None, Stack]], last: int | None) -> list[Run]:
    """The baseline runs of one case (module docstring): one version hash and one stack, the newest
    `last` undisturbed ones (all where `last` is None); disturbed runs at that key only where no other is."""
    if not runs:
        return []
    ordered = sorted(runs, key=lambda r: r.order)
    hashes = {h for h, _ in new_keys}
    h = next(iter(hashes)) if len(hashes) == 1 else None
    at_hash = [r for r in ordered if r.version_hash == h] if h is not None else []
    if not at_hash:
        at_hash = [r for r in ordered if r.version_hash == ordered[-1].version_hash]
    stacks = {s for hh, s in new_keys if hh == at_hash[-1].version_hash}
    st = next(iter(stacks)) if len(stacks) == 1 and any(r.stack in stacks for r in at_hash) else None
    same = [r for r in at_hash if r.stack == (st if st is not None else at_hash[-1].stack)]
    good = [r for r in same if not r.disturbed]
    picked = good or same
    return picked[-last:] if last else picked


# ---------------------------------------------------------------- one run against one run

LARGEST_SAME_CODE_MOVE = 2.26
"""The largest ratio measured between back-to-back runs of identical code on these hosts, neither marked
disturbed (`benchmarks/aa_smoke.py`, cpu-amd-epyc-2c-avx2, 2026-12-07: `hstu.inference` 2.26x; over the
614 consecutive pairs of the committed results the largest was 1.92x): why a single run against a single
run, the spread unknown, is never a verdict (the note cites it)."""


@dataclass(frozen=True)
class SingleRun:
    """What to do where a side has a single run: use `drift` (the case's spread at unchanged code, from a
    history) or, failing it, the spread between the runs of a side with several, to widen the interval
    to a t interval on the log ratio; with neither, the case is `inconclusive` whatever it moved: one run
    against one run cannot tell the host's drift from a change."""

    drift: RunSpread | None = None
    floor: RunSpread | None = None
    """The machine's spread, every case's pooled (`pooled`): a case's own, from a few runs, is taken no
    smaller (three runs that all fell in one of the host's moods say little of the next run)."""


def pooled(spreads: Iterable[RunSpread | None]) -> RunSpread | None:
    """The cases' spreads pooled into the machine's (variances weighted by their degrees of freedom)."""
    known = [k for k in spreads if k is not None]
    df = sum(k.df for k in known)
    if df < 1:
        return None
    sd = math.sqrt(sum(k.sd**2 * k.df for k in known) / df)
    return RunSpread(sd, df, sum(k.runs for k in known), f"the machine's {len(known)} cases")


def drift_level(
    ratio: float, known: RunSpread, kb: int, kn: int, confidence: float
) -> tuple[float, float, float]:
    """(low, high, p) of the ratio from a t interval on its log, the run-to-run spread `known`."""
    from scipy.stats import t as student_t

    se = known.sd * math.sqrt(1.0 / kb + 1.0 / kn)
    r = math.log(ratio)
    if se <= 0:
        return ratio, ratio, 0.0 if r else 1.0
    half = float(student_t.ppf(0.5 + confidence / 2.0, known.df)) * se
    p = float(2.0 * student_t.sf(abs(r) / se, known.df))
    return math.exp(r - half), math.exp(r + half), p


# ---------------------------------------------------------------- the sides of a comparison

STACK_PACKAGES = ("torch", "fbgemm-gpu", "fbgemm-gpu-cpu", "torchrec")


@dataclass
class Entry:
    """One benchmark on one side: raw samples of each run, pooled later."""

    name: str
    group: str | None
    hashes: set[str | None] = field(default_factory=set)
    runs: list[np.ndarray] = field(default_factory=list)
    disturbed: list[str] = field(default_factory=list)
    """Evidence of each run left out because the machine was disturbed while it was measured."""
    history: list[Run] = field(default_factory=list)
    """Every run of the case this side read (a folder's whole history), for the baseline choice."""
    files: list[str] = field(default_factory=list)
    """The files its runs (`runs` and `disturbed`) come from."""
    drift: RunSpread | None = None
    """What its side's history knows of the case's run-to-run spread at unchanged code."""

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self.runs) if self.runs else np.array([])


@dataclass
class Side:
    files: list[Path]
    docs: list[ResultsDocument]
    entries: dict[str, Entry]


def load_side(paths: Iterable[Path]) -> Side:
    """Every run of every case in the files (a folder: recursively), pooled per case."""
    files: list[Path] = []
    for p in paths:
        files.extend(result_files(Path(p)))
    docs = [load_typed(f) for f in files]
    entries: dict[str, Entry] = {}
    for f, doc in zip(files, docs, strict=True):
        st, order = stack(doc), order_key(doc, f)
        for b in doc.benchmarks:
            data = np.asarray(b.samples, dtype=float)
            if data.size == 0:
                continue
            e = entries.setdefault(b.name, Entry(b.name, b.group))
            e.hashes.add(b.extra_info.version_hash)
            e.files.append(str(f))
            why = b.extra_info.disturbed
            if why:  # its samples say more about the other process than about the code
                e.disturbed.append(why)
            else:
                e.runs.append(data)
            med = float(np.median(data))
            e.history.append(Run(str(f), order, b.extra_info.version_hash, st, med, why))
    return Side(files, docs, entries)


def choose_baseline(base: Side, new: Side, last: int | None = None) -> Side:
    """The base side narrowed, per case, to the runs `choose` picks (module docstring), each entry with
    the spread its whole history shows at unchanged code; the docs and files are those it kept."""
    entries: dict[str, Entry] = {}
    kept: set[str] = set()
    for name, e in base.entries.items():
        other = new.entries.get(name)
        new_keys = {r.key for r in other.history} if other else set()
        picked = choose(e.history, new_keys, last)
        if not picked:  # built by hand, without a history: as it is
            entries[name] = e
            kept.update(e.files)
            continue
        by_file = {r.file: r for r in picked}
        runs, why = _samples_of(base, name, by_file)
        entries[name] = Entry(
            name, e.group, {picked[0].version_hash}, runs, why, e.history, [r.file for r in picked],
            spread_of_runs(e.history, "base"),
        )  # fmt: skip
        kept.update(by_file)
    files = [f for f in base.files if str(f) in kept]
    docs = [d for f, d in zip(base.files, base.docs, strict=True) if str(f) in kept]
    return Side(files, docs, entries)


def _samples_of(side: Side, name: str, picked: dict[str, Run]) -> tuple[list[np.ndarray], list[str]]:
    """The samples of the picked runs (undisturbed) and the evidence of the disturbed ones."""
    runs: list[np.ndarray] = []
    why: list[str] = []
    for f, doc in zip(side.files, side.docs, strict=True):
        if str(f) not in picked:
            continue
        for b in doc.benchmarks:
            if b.name != name or not b.samples:
                continue
            if b.extra_info.disturbed:
                why.append(b.extra_info.disturbed)
            else:
                runs.append(np.asarray(b.samples, dtype=float))
    return runs, why


def machine_key(doc: ResultsDocument) -> dict[str, str]:
    """What must agree for two results to be compared: machine id, device model, software stack."""
    mi = doc.machine_info or MachineInfo()
    key: dict[str, str] = {}
    mid = doc.recorded_machine_id
    if mid:
        key["machine id"] = mid
    dev = mi.device
    if dev is not None and dev.name:
        key["device"] = f"{dev.name} x{dev.count if dev.count is not None else 1}"
    elif not mid:  # a plain pytest-benchmark file: the CPU is all we know
        brand = (mi.cpu.brand_raw if mi.cpu else None) or "?"
        key["cpu"] = f"{brand} ({mi.machine or '?'})"
    for name in STACK_PACKAGES:
        if name in mi.packages:
            key[name] = str(mi.packages[name])
    if mi.host_allocator is not None:  # files from before it was recorded have none
        key["host allocator"] = mi.host_allocator.describe()
    return key


def machine_differences(a: list[ResultsDocument], b: list[ResultsDocument]) -> list[str]:
    """Human-readable differences between the machines of two sets of docs (fields both sides know)."""
    keys_a = [machine_key(d) for d in a]
    keys_b = [machine_key(d) for d in b]
    diffs: list[str] = []
    all_keys = keys_a + keys_b
    fields = {k for key in all_keys for k in key}
    for f in sorted(fields):
        va = {str(k[f]) for k in keys_a if f in k}
        vb = {str(k[f]) for k in keys_b if f in k}
        vals = va | vb
        if len(vals) > 1 and va and vb:
            diffs.append(f"{f} {'/'.join(sorted(va))} vs {'/'.join(sorted(vb))}")
        elif len(va) > 1 or len(vb) > 1:
            diffs.append(f"{f} mixed within one side ({', '.join(sorted(vals))})")
    return diffs
