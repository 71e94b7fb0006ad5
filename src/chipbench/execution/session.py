"""A session: one worker (or torchrun job) on one device, the cases resolved for it, run in order, and
the results document built from what came back. `run`, `calibrate` and `ab` all go through it.

Ctrl-C (or SIGTERM, which the CLI turns into it) stops a session early: the worker is killed and the
cases that finished are kept. A case that crashes, runs out of memory or times out is an error entry;
the next case gets a fresh worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chipbench import workloads
from chipbench.core.cases import Case, memory_estimate
from chipbench.core.errors import StartFailed, UsageError
from chipbench.core.price import Price
from chipbench.core.wire import Environment
from chipbench.execution.options import Destination, Listener, RunOptions
from chipbench.execution.pools import WorkerPool
from chipbench.execution.probe import Prober, cases_for
from chipbench.execution.protocol import Hello, error, run_message
from chipbench.platform import ceilings as ceilings_store
from chipbench.platform import hardware
from chipbench.platform.ceilings import Ceilings
from chipbench.results import document, files
from chipbench.results.outcomes import CaseOutcome, RunOutcome
from chipbench.results.typed import LoadAvg, ResultsDocument

_IMPORTED = time.monotonic()


class Session:
    """One started worker pool and what it told us: environment, device kind, free memory, ceilings."""

    def __init__(self, pool: WorkerPool, options: RunOptions) -> None:
        self.pool = pool
        self.options = options
        self.price: Price | None = None
        """The machine's price (the user's), once its id is known."""
        self.hello: Hello | None = None
        self.ceilings: Ceilings | None = None
        self.prober: Prober | None = None
        """The host probe, run around the cases (`ready_probe`); None: no probe."""

    def start(self) -> Hello:
        """Launch the worker (unless launched already) and wait for its hello; StartFailed if it can't."""
        if self.pool.proc is None:
            self.pool.launch()
        try:
            self.hello = self.pool.wait_hello()
        except RuntimeError as exc:
            self.pool.kill()
            raise StartFailed(str(exc)) from None
        except BaseException:
            self.pool.kill()
            raise
        self.ceilings = ceilings_store.load(self.machine_id)
        return self.hello

    @property
    def started(self) -> Hello:
        """The worker's hello: what every property below reads."""
        assert self.hello is not None, "start() first"
        return self.hello

    @property
    def env(self) -> Environment:
        return self.started["env"]

    @property
    def kind(self) -> str:
        return self.started["kind"]

    @property
    def free_memory_bytes(self) -> int:
        return self.started["free_memory_bytes"]

    @property
    def machine_id(self) -> str:
        return hardware.machine_id(self.env)

    @property
    def cores(self) -> int:
        """The host's logical cores: what its load average is read against."""
        return int(self.env["cpu"]["logical_cores"] or 1)

    @property
    def world_size(self) -> int:
        return int((self.env.get("distributed") or {}).get("world_size", 1))

    def resolve(self, cases: list[Case], free_bytes: int | None = None) -> list[Case]:
        """The cases made concrete for this device: dtype=auto resolved, sizes fitted to free memory."""
        device_dtype = hardware.auto_dtype(self.env, self.ceilings)
        free = self.free_memory_bytes if free_bytes is None else free_bytes
        return [workloads.resolve_case(c, self.kind, device_dtype, free) for c in cases]

    def preflight(self, cases: list[Case]) -> None:
        """Stop before allocating when a case's estimate (per rank) exceeds free memory."""
        world, free = self.world_size, self.free_memory_bytes
        for c in cases:
            b = workloads.get(c.bench)
            est = memory_estimate(b, b.config(c.overrides), world, self.kind)
            if est and est > free:
                per = " per process" if world > 1 else ""
                raise UsageError(
                    f"{c.name} needs about {est / 2**30:.2f} GiB{per} but {free / 2**30:.2f} GiB is free; "
                    "reduce its size with --set (e.g. batch_size, max_rows, n_layers)"
                )

    def ready_probe(self) -> None:
        """Set up the host probe for this device when the options ask for one (a one-process run: the
        ranks of a job would each measure their own)."""
        if self.options.probe_s > 0 and self.world_size == 1:
            matmul, copy = self.resolve(list(cases_for(self.kind)))
            self.prober = Prober((matmul, copy), self.options.probe_s, self.options.seed)

    def _probe(self, when: str) -> None:
        if self.prober is not None:
            self.prober.run_pass(when, self.pool.run, self.options.limit_s)

    def run_case(self, case: Case) -> CaseOutcome:
        t0 = time.perf_counter()
        msg = run_message(case.bench, case.overrides, self.options)
        try:
            reply = self.pool.run(msg, case_limit_s(self.options, self.cores, load_avg()))
        except RuntimeError as exc:  # the worker could not be started again after a failure
            reply = error("start_failed", str(exc))
        return CaseOutcome(case, reply["type"] == "result", dict(reply), time.perf_counter() - t0)

    def run(
        self,
        cases: list[Case],
        on_start: Callable[[Case], None] | None = None,
        on_done: Callable[[CaseOutcome], None] | None = None,
    ) -> RunOutcome:
        """Run `cases` in order; Ctrl-C stops early and returns what finished (`interrupted`=True)."""
        out = RunOutcome(env=self.env, kind=self.kind, free_memory_bytes=self.free_memory_bytes)
        try:
            self._probe("start")
            for case in cases:
                if on_start:
                    on_start(case)
                oc = self.run_case(case)
                out.outcomes.append(oc)
                if on_done:
                    on_done(oc)
                if oc.payload.get("error_type") == "start_failed":
                    break  # the next case would fail the same way; what finished is saved
            else:
                self._probe("end")
        except KeyboardInterrupt:
            out.interrupted = True
        except BaseException:
            self.pool.close()
            raise
        # A second Ctrl-C or SIGTERM (CI cancellation sends both) while the worker is stopped waits:
        # what finished is kept and saved.
        with hold_signals() as held:
            if out.interrupted:
                self.pool.kill()  # the worker may be mid-step: do not wait for it
            self.pool.close()
        out.interrupted = out.interrupted or bool(held.received)
        return out

    def document(
        self,
        run: RunOutcome,
        *,
        suite: str | None,
        argv: list[str],
        commit_info: dict[str, Any] | None = None,
    ) -> ResultsDocument:
        return document.build_document(
            run,
            ceilings=self.ceilings,
            suite=suite,
            argv=argv,
            commit_info=commit_info if commit_info is not None else hardware.git_commit(),
            price=self.price,
        )

    def check_energy(self) -> None:
        """`--energy on` where the device has no energy source: one line, before any benchmark runs."""
        power: dict[str, Any] = self.hello.get("energy", {}) if self.hello else {}
        why = power.get("unavailable")
        if self.options.energy == "on" and why:
            raise UsageError(f"--energy on: {why}; use --energy auto to run without energy figures")

    def close(self) -> None:
        self.pool.close()


@dataclass
class Executed:
    """What `execute` produced."""

    doc: ResultsDocument
    path: Path | None
    """The results file written, or None (nothing finished, or write=False)."""
    exit_code: int
    """0 all ran, 1 a case failed, 130 interrupted."""


def execute(
    cases: list[Case],
    *,
    pool: WorkerPool,
    options: RunOptions,
    destination: Destination,
    listener: Listener | None = None,
    preflight: bool = False,
    price_for: Callable[[str], Price | None] | None = None,
) -> Executed:
    """Run cases in a session on `pool` and write the results file (unless `destination` says not to).
    `price_for` gives the machine's price from its id (a UsageError when the user's price file lacks it)."""
    hear = listener or Listener()
    load_start = load_avg()
    session = Session(pool, options)
    session.start()
    try:
        cases = _ready(session, cases, preflight, price_for)
        cores = session.cores
        # Our own previous run keeps the 1-minute average near 1: warn only when every core was busy.
        if load_start is not None and load_start >= cores and hear.on_warning:
            # Other processes on the cores stall torch's thread pool: figures can be inflated many times.
            hear.on_warning(
                f"this machine is busy (1-minute load {load_start:.1f} on {cores} cores); figures may be inflated"
            )
    except BaseException:
        session.close()
        raise
    first_done: list[float] = []

    def done(oc: CaseOutcome) -> None:
        if not first_done:
            first_done.append(time.monotonic())
        if hear.on_done:
            hear.on_done(oc)

    run = session.run(cases, hear.on_start, done)  # Ctrl-C until here stops the run; what finished is kept
    with hold_signals() as held:  # a Ctrl-C or SIGTERM from here on waits for the save
        doc = session.document(run, suite=destination.suite, argv=destination.argv)
        header = replace(
            doc.header,
            load_avg_1m=LoadAvg(start=load_start, end=load_avg()),
            # From process creation (interpreter start, imports, worker start) to the first finished benchmark.
            startup_to_first_result_s=first_done[0] - process_age_origin() if first_done else None,
            wall_s=time.monotonic() - process_age_origin(),  # process start to this save
            host_probe=session.prober.record() if session.prober is not None else None,
        )
        doc = replace(doc, chipbench=header)
        path = _save(doc, destination, hear.on_warning) if run.outcomes and destination.write else None
    failed = len(doc.errors)
    code = 130 if run.interrupted or held.received else (1 if failed else 0)
    return Executed(doc, path, code)


def _ready(
    session: Session, cases: list[Case], preflight: bool, price_for: Callable[[str], Price | None] | None
) -> list[Case]:
    """The started session's checks before any case runs; the cases made concrete for its device."""
    session.check_energy()
    if price_for is not None:
        session.price = price_for(session.machine_id)
    cases = session.resolve(cases)
    if preflight:
        session.preflight(cases)
    session.ready_probe()
    return cases


def _save(doc: ResultsDocument, to: Destination, warn: Callable[[str], None] | None) -> Path:
    """Write the results file (and the Markdown table); what went elsewhere or failed is a warning."""
    saved = files.save(doc, to.output)
    if saved.fallback_reason and warn:
        warn(saved.fallback_reason)
    if to.markdown:
        try:
            files.write_markdown(doc, to.markdown)
        except OSError as exc:
            if warn:
                warn(
                    f"could not write {to.markdown} ({exc.strerror or exc}); the results are in {saved.path}"
                )
    return saved.path


class Held:
    """The signals that arrived while held."""

    def __init__(self) -> None:
        self.received: list[int] = []


@contextlib.contextmanager
def hold_signals() -> Iterator[Held]:
    """SIGINT and SIGTERM are noted, not acted on, inside the block (in the main thread): the results
    document is built and written whole, then the caller sees that an interrupt came."""
    held = Held()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return

    def note(signum: int, frame: object) -> None:
        held.received.append(signum)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


BUSY_STRETCH_MAX = 4.0
"""The most a busy machine stretches a case's default time-out."""


def case_limit_s(options: RunOptions, cores: int, load: float | None) -> float:
    """A case's time-out: `--timeout` as given; else the default, stretched on a busy machine by its
    1-minute load over its cores (1 to 4x): other jobs slow a case's set-up as much as its steps, and a
    busy hour should not turn a slow case into a failed one (hstu.train_step at dlrmv3 took over 120 s
    beside two busy loops on 2 cores)."""
    if options.timeout_s is not None or load is None:
        return options.limit_s
    return options.limit_s * min(BUSY_STRETCH_MAX, max(1.0, load / max(cores, 1)))


def load_avg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def process_age_origin() -> float:
    """The monotonic time at which this process was created (Linux: from /proc, to 10 ms)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # seconds after boot
        return time.monotonic() - (time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED
