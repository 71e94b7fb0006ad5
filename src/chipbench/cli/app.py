"""The `chipbench` command: the parser, one module per command group, and the exit codes.

Only this package reads the command line or prints; nothing imports it.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

from chipbench import __version__
from chipbench.cli import interrupted
from chipbench.cli.device_args import export_plugins
from chipbench.cli.output import EXIT_INTERRUPTED, EXIT_USAGE, Parser, error, warn
from chipbench.core.errors import StartFailed, UsageError
from chipbench.core.fileio import SkippedInput

GROUPS = ("info", "run", "calibrate", "gate", "report", "store", "dashboard")
"""The command modules, in the order `chipbench --help` lists their commands."""

MODULE_OF = {
    "list": "info", "describe": "info", "env": "info", "run": "run", "calibrate": "calibrate",
    "compare": "gate", "ab": "gate", "confirm": "gate", "history": "history", "report": "report",
    "ingest": "store", "dashboard": "dashboard", "triage": "dashboard",
}  # fmt: skip
"""Each command's module: a command imports its own alone (`run`'s pulls in every workload: 0.3 s)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with a known `command`, a parser of that command's module alone (the same
    subparser, so the same flags, help and errors)."""
    p = Parser(
        prog="chipbench",
        description="Benchmark harness for ML hardware (DLRM-style ranking, Llama-style training).",
    )
    p.add_argument("--version", action="version", version=f"chipbench {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for name in (MODULE_OF[command],) if command in MODULE_OF else GROUPS:
        importlib.import_module(f"chipbench.cli.{name}").add_parsers(sub)
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
    except Exception as exc:
        if not _caused_by_ctrl_c(exc):
            raise
        print("chipbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """A Ctrl-C that Python wrapped on its way up: 3.11 turns one raised while a class body is made (a
    dataclass's field, imported lazily by the command) into `RuntimeError: Error calling __set_name__`."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _command(argv: list[str] | None) -> int:
    try:
        given = sys.argv[1:] if argv is None else argv
        parser = build_parser(given[0] if given else None)
        args = parser.parse_args(given)
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
