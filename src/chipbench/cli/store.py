"""`chipbench ingest`: results files into a results store (chipbench.store; docs/store.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chipbench.cli.output import EXIT_FAILED, EXIT_OK, say, warn

EXIT_REFUSED = EXIT_FAILED
"""`ingest`: some files were refused by the strict reader (each named with why); the rest are stored."""

REASONS = ("commit", "pr", "nightly", "manual")  # chipbench.store.REASONS, without importing SQLAlchemy here

STORE_HELP = (
    "the store: a path or sqlite:///PATH (a SQLite file), or postgresql://USER:PASSWORD@HOST:PORT/DB "
    "(default: store.sqlite in chipbench's cache folder)"
)


def cmd_ingest(args: argparse.Namespace) -> int:
    # Imported here: SQLAlchemy is needed by the store's commands only (a missing one is one line, exit 2).
    from chipbench.results.files import result_files
    from chipbench.store import IngestOptions, open_store

    options = IngestOptions(branch=args.branch, reason=args.reason)
    files = [f for p in args.files for f in result_files(p)]  # a path that is not there: before the store
    with open_store(args.store) as store:
        rep = store.ingest(files, options)
        for f in rep.refused:
            warn(f"refused {f.reason}")
        rows = sum(f.results for f in rep.added)
        say(
            f"ingest: {len(rep.added)} file(s) added ({rows} results), {len(rep.present)} already there, "
            f"{len(rep.refused)} refused; store {store.url.redacted}"
        )
    return EXIT_REFUSED if rep.refused else EXIT_OK


def _branch(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_parsers(sub: Any) -> None:
    s = sub.add_parser(
        "ingest",
        help="put results files into a results store (SQLite or PostgreSQL); the same file twice adds nothing",
    )
    s.add_argument(
        "files", nargs="+", type=Path, metavar="FILE|DIR", help="results files, or folders of them"
    )
    s.add_argument("--store", metavar="URL", help=STORE_HELP)
    s.add_argument(
        "--branch",
        type=_branch,
        help="the branch the runs were made on (default: each file's commit_info.branch)",
    )
    s.add_argument(
        "--reason", choices=REASONS, default="manual", help="why the runs were made (default manual)"
    )
    s.set_defaults(func=cmd_ingest)
