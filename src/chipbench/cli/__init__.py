"""The `chipbench` command line. Only this package reads the command line or prints; nothing imports it.

`main` is the process's entry point (the `chipbench` script, `python -m chipbench.cli`): before anything
heavy is imported (torch takes about a second), a Ctrl-C ends the process with one line and exit 130,
never a traceback; the command's own handling takes over once it starts.
"""

from __future__ import annotations

# The C module, not `signal`: importing `signal` imports `enum`, tens of ms on a busy machine, all of it
# before the handler would be set. `os` and `sys` are loaded already when the interpreter runs this.
import _signal
import os
import sys

EXIT_INTERRUPTED = 130


def interrupted(signum: int, frame: object) -> None:
    """SIGINT outside a command's own handling (imports, interpreter teardown): one line, exit 130."""
    os.write(2, b"chipbench: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def _entry() -> bool:
    """This import is the process's start: the `chipbench` script, or `python -m chipbench.cli` (argv[0] is
    "-m" while runpy imports the package), not a test or a program that imports the package."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first) == "chipbench"


if _entry():  # as early as this package can: the rest of the imports take about a second
    _signal.signal(_signal.SIGINT, interrupted)


def main(argv: list[str] | None = None) -> int:
    """Run one command; `argv` None: this process's command line, and this process is chipbench's."""
    if argv is None:
        _signal.signal(_signal.SIGINT, interrupted)
    from chipbench.cli.app import main as run_command

    code = run_command(argv)
    if argv is None:
        # Done: a Ctrl-C from here on finds the command finished. Python's teardown puts back the default
        # handler, which would end the process by SIGINT without a word instead of with `code`; ignored,
        # it stays ignored through the teardown (a few ms).
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    if argv is None and code == EXIT_INTERRUPTED:
        # Said and saved: end here. Python's own exit would end by SIGINT instead of 130 when a library
        # was interrupted inside its PyRun_String (the interpreter keeps that as an unhandled Ctrl-C).
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
    return code


__all__ = ["main"]
