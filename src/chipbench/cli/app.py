"""The `chipbench` command: the parser, one module per command group, and the exit codes.

Only this package reads the command line or prints; nothing imports it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

from chipbench import __version__
from chipbench.cli import calibrate, dashboard, gate, info, interrupted, report, run, store
from chipbench.cli.device_args import export_plugins
from chipbench.cli.output import EXIT_INTERRUPTED, EXIT_USAGE, Parser, error, warn
from chipbench.core.errors import StartFailed, UsageError
from chipbench.core.fileio import SkippedInput


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="chipbench",
        description="Benchmark harness for ML hardware (DLRM-style ranking, Llama-style training).",
    )
    p.add_argument("--version", action="version", version=f"chipbench {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    info.add_parsers(sub)
    run.add_parsers(sub)
    calibrate.add_parsers(sub)
    gate.add_parsers(sub)
    report.add_parsers(sub)
    store.add_parsers(sub)
    dashboard.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command: its exit code. In the process's own entry (`chipbench.cli.main` set the one-line
    SIGINT handler) Ctrl-C is a KeyboardInterrupt only while the command runs: before and after (imports,
    teardown) it ends the process with one line and exit 130."""
    entry = signal.getsignal(signal.SIGINT) is interrupted
    try:
        try:
            if entry:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            return _command(argv)
        finally:
            if entry:
                signal.signal(signal.SIGINT, interrupted)
    except KeyboardInterrupt:
        print("chipbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _command(argv: list[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return EXIT_USAGE
        export_plugins(args)
        with warnings.catch_warnings():
            # What a command leaves out of what it was given is a warning naming it; with --strict, an error.
            warnings.simplefilter("error" if getattr(args, "strict", False) else "always", SkippedInput)
            warnings.showwarning = _show_warning(warnings.showwarning)
            return int(args.func(args))
    except (UsageError, StartFailed) as exc:
        error(str(exc))
        return exc.exit_code
    except SkippedInput as exc:
        error(f"{exc} (an error with --strict)")
        return EXIT_USAGE


def _show_warning(shown: Callable[..., None]) -> Callable[..., None]:
    def show(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
        if issubclass(category, SkippedInput):
            warn(str(message))
        else:
            shown(message, category, *rest, **kw)

    return show
