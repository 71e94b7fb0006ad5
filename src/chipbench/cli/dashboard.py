"""`chipbench dashboard`: static history pages from a results store; `chipbench triage`: a change point's
status (open, acknowledged, invalid, fixed), so the dashboard's index stops listing what someone looked
at (docs/store.md#the-dashboard)."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from chipbench.cli.output import EXIT_OK, count, print_table, say
from chipbench.cli.store import STORE_HELP
from chipbench.core.errors import UsageError
from chipbench.core.fileio import atomic_write_text, check_writable

STATUSES = ("open", "acknowledged", "invalid", "fixed")  # chipbench.store.STATUSES, without SQLAlchemy


def _open(url: str | None) -> Any:
    """The store at `url` (None: the default one), which must exist: never an empty store made by a typo."""
    from chipbench.gate import stored  # SQLAlchemy is imported only by the store's commands

    return stored.open_existing(url)


def cmd_dashboard(args: argparse.Namespace) -> int:
    check_writable(args.output, "-o", folder=True)
    try:  # plotting and templates load only for this command (an offline GPU image may lack them)
        from chipbench.report.dashboard_build import Built, DashboardOptions, pages
    except ImportError as exc:
        raise UsageError(
            f"chipbench dashboard needs plotly, jinja2 and sqlalchemy ({exc}); install them with `make setup`"
        ) from None
    options = DashboardOptions(title=args.title, branch=args.branch, last=args.last)
    with _open(args.store) as store:
        machines = store.machines()
        if not machines:
            raise UsageError(
                f"the store {store.url.redacted} holds no runs: nothing to draw; put results in it first "
                "(`chipbench ingest FILE|DIR --store URL`)"
            )
        if args.branch and not any(store.runs(m, branch=args.branch, last=1) for m in machines):
            raise UsageError(
                f"the store {store.url.redacted} holds no run of branch {args.branch}: nothing to draw"
            )
        built: list[Built] = []
        _write_folder(args.output, pages(store, options, built))
    b = built[0]
    branch = f" of branch {args.branch}" if args.branch else ""
    say(
        f"dashboard: {b.machines} machine(s), {b.runs} run(s){branch}, {b.points} points; {b.open} open change "
        f"point(s), {b.looked_at} looked at; wrote {args.output / 'index.html'}"
    )
    return EXIT_OK


def _write_folder(out: Path, files: Any) -> None:
    """Every file into a new folder beside `out`, then moved in: a dashboard that fails half way (a full
    disk, a store gone) leaves `out` as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in files:
            atomic_write_text(tmp / name, text)
        out.mkdir(exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot write the dashboard ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cmd_triage(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        if args.id is None:
            if args.note is not None:
                raise UsageError(
                    "--note needs a change point's id: `chipbench triage ID --status S --note TEXT`"
                )
            return _list(store, args.status or "open")
        if args.status is None:
            raise UsageError(f"say which status change point {args.id} gets: --status {'|'.join(STATUSES)}")
        c = store.set_status(args.id, args.status, args.note)
    note = f" ({c.note})" if c.note else ""
    say(
        f"change point {c.id}: {c.status}{note}: {c.case} on {c.machine_id}, {c.ratio:.3g}x at "
        f"{c.previous_commit[:12]}..{c.commit[:12]}"
    )
    return EXIT_OK


def _list(store: Any, status: str) -> int:
    cps = store.change_points(status=status)
    if not cps:
        say(f"no {status} change point in {store.url.redacted}")
        return EXIT_OK
    rows = [
        [c.case, str(c.id), c.machine_id, f"{c.ratio:.3g}x", c.direction, f"{c.previous_commit[:10]}..{c.commit[:10]}",
         c.note]
        for c in cps
    ]  # fmt: skip
    print_table(
        f"{len(cps)} {status} change point(s), newest first",
        ("case", "id", "machine", "ratio", "direction", "commits", "note"),
        rows,
    )
    return EXIT_OK


def add_parsers(sub: Any) -> None:
    d = sub.add_parser(
        "dashboard",
        help="static history pages from a results store: open change points, a panel per case and machine",
    )
    d.add_argument("--store", metavar="URL", help=STORE_HELP)
    d.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="the folder to write into")
    d.add_argument("--branch", help="only runs of this branch (default: every run)")
    d.add_argument(
        "--last",
        type=count,
        default=300,
        metavar="N",
        help="the newest N runs per machine page (default 300)",
    )
    d.add_argument("--title", default="chipbench history", help="the pages' title")
    d.set_defaults(func=cmd_dashboard)

    t = sub.add_parser(
        "triage",
        help="set a change point's status (the dashboard's index lists open ones); without an id, list them",
    )
    t.add_argument(
        "id", nargs="?", type=count, metavar="ID", help="the change point (its id on the dashboard)"
    )
    t.add_argument(
        "--status", choices=STATUSES,
        help="acknowledged (real, being handled), invalid (not a real change), fixed, or open again; "
        "without an id: list those of this status (default open)",
    )  # fmt: skip
    t.add_argument("--note", help="why, for whoever reads the dashboard next (with an id)")
    t.add_argument("--store", metavar="URL", help=STORE_HELP)
    t.set_defaults(func=cmd_triage)
