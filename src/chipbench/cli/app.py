"""The `chipbench` command: the parser, one module per command group, and the exit codes.

Only this package reads the command line or prints; nothing imports it.
"""

from __future__ import annotations

import argparse
import sys

from chipbench import __version__
from chipbench.cli import calibrate, gate, info, report, run
from chipbench.cli.output import EXIT_INTERRUPTED, EXIT_USAGE, Parser, error
from chipbench.core.errors import StartFailed, UsageError


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
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args))
    except (UsageError, StartFailed) as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("chipbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
