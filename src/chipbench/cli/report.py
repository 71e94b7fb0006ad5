"""`chipbench report`: results from any machines on one offline HTML page, and a Markdown summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chipbench.cli.output import count, say, warn
from chipbench.core.errors import UsageError
from chipbench.core.fileio import check_apart, check_writable, write_text_or_elsewhere


def cmd_report(args: argparse.Namespace) -> int:
    if args.store is not None and args.results:
        raise UsageError("report reads results files (RESULTS) or a store (--store URL), not both: drop one")
    if args.store is None:
        if not args.results:
            raise UsageError("report needs results files or folders (RESULTS), or a store (--store URL)")
        if args.last is not None or args.branch is not None:
            raise UsageError("--last and --branch pick a store's runs: give them with --store")
    # Every output path is checked before a file is read, and written whole or not at all.
    check_apart([("-o", args.output), ("--markdown", args.markdown)], [("RESULTS", p) for p in args.results])
    check_writable(args.output, "-o")
    if args.markdown:
        check_writable(args.markdown, "--markdown")
    # Plotting and templates load only for this command (an offline GPU image may lack them).
    try:
        from chipbench.report import assemble, page
    except ImportError as exc:
        raise UsageError(
            f"chipbench report needs plotly and jinja2 ({exc}); install them with "
            "`pip install plotly==7.1.0 jinja2==3.1.6`, or make the page on another machine"
        ) from None

    if args.store is not None:
        from chipbench.gate import stored  # sqlalchemy is needed only here

        loaded = stored.latest_documents(args.store, stored.Latest(args.last, args.branch))
        rep = assemble.build_loaded(
            loaded,
            [],
            baseline=args.baseline,
            title=args.title,
            ignore_version_hash=args.ignore_version_hash,
            include_disturbed=args.include_disturbed,
        )
    else:
        rep = assemble.build(
            args.results,
            baseline=args.baseline,
            title=args.title,
            skip_bad=args.skip_bad,
            ignore_version_hash=args.ignore_version_hash,
            include_disturbed=args.include_disturbed,
        )
    for s in rep.skipped:
        warn(f"left out {s.path}: {s.reason}")
    for n in rep.notes:
        warn(n)
    html = page.to_html(rep)
    md = page.to_markdown(rep) if args.markdown else None
    written = {"-o": _write(args.output, html)}
    if md is not None:
        written["--markdown"] = _write(args.markdown, md)
    for line in page.summary_lines(rep):  # the headline, a caution where it rests on few cases, each family
        say(line)
    matched = sum(1 for r in rep.rows if sum(1 for c in r.cells.values() if c.speedup is not None) >= 2)
    say(
        f"report: {len(rep.machines)} machine(s), {len(rep.rows)} case(s), {matched} matched across machines; "
        f"wrote {' and '.join(str(p) for p in written.values())}"
    )
    return 0


def _write(path: Path, text: str) -> Path:
    """Write an output whole; where that fails (a full disk, a symlink loop), elsewhere with a warning."""
    written, why = write_text_or_elsewhere(path, text)
    if why:
        warn(why)
    return written


def add_parsers(sub: Any) -> None:
    s = sub.add_parser(
        "report", help="one offline HTML page (and Markdown) putting the machines of any results side by side"
    )
    s.add_argument("results", nargs="*", type=Path, metavar="RESULTS", help="results files or folders")
    s.add_argument(
        "--store",
        metavar="URL",
        help="each machine's latest runs from a store (a SQLite path or postgresql://...)",
    )
    s.add_argument(
        "--last",
        type=count,
        metavar="N",
        help="with --store: each machine's newest N runs (default: its newest commit's)",
    )
    s.add_argument("--branch", metavar="B", help="with --store: only runs of this branch")
    s.add_argument(
        "-o", "--output", type=Path, default=Path("report.html"), help="the HTML page (default report.html)"
    )
    s.add_argument("--markdown", type=Path, metavar="FILE", help="also write a Markdown summary")
    s.add_argument(
        "--baseline", metavar="MACHINE_ID", help="the machine others are normalized to (default: the first)"
    )
    s.add_argument("--title", help="the page's title")
    s.add_argument("--skip-bad", action="store_true", help="leave out bad or foreign files with a warning")
    s.add_argument(
        "--ignore-version-hash", action="store_true",
        help="set cases side by side even where the benchmark's code differs (labelled)",
    )  # fmt: skip
    s.add_argument(
        "--include-disturbed", action="store_true",
        help="show runs measured on a disturbed machine, labelled (left out by default, as the gate does)",
    )  # fmt: skip
    s.set_defaults(func=cmd_report)
