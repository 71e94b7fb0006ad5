"""The parser class, exit codes and terminal output every command shares."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, NoReturn

from chipbench.core import text
from chipbench.core.errors import UsageError

EXIT_OK = 0
EXIT_FAILED = 1
"""A benchmark failed, or the gate found a regression."""
EXIT_USAGE = 2
"""Bad input: one line on stderr, nothing run or written."""
EXIT_INCONCLUSIVE = 3
EXIT_RERUN = 4
"""No regression, but a case was measured while another process held its CPUs (or the hypervisor stole
them): run it again (gate.compare.RERUN_EXIT)."""
EXIT_INTERRUPTED = 130


def seconds(text: str) -> float:
    """A flag's duration: a finite number of seconds > 0 (argparse turns the error into one line)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return v


def _whole(text: str, low: int, high: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if not low <= v <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and 2^31, got {text[:40]!r}")
    return v


def count(text: str) -> int:
    """A flag's count or size: a whole number >= 1."""
    return _whole(text, 1, 2**31)


def index(text: str) -> int:
    """A flag's index: a whole number >= 0."""
    return _whole(text, 0, 2**31 - 1)


def finite(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: what was wrong and where to look.
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def plain() -> bool:
    """No colours or live progress: under CI, or when the output is not a terminal."""
    return os.environ.get("CI", "").lower() in ("1", "true") or not sys.stdout.isatty()


def width() -> int | None:
    """Columns to lay output out in: $COLUMNS where set (honoured when piped, as `COLUMNS=100 chipbench
    ... | less` asks), else the terminal's own; 160 when piped without it (a log file)."""
    cols = os.environ.get("COLUMNS", "").strip()
    if cols.isdigit() and int(cols) >= 20:
        return int(cols)
    return 160 if plain() else None


def console(err: bool = False) -> Any:
    """A rich console at `width()`: tables and notes folded to fit it."""
    from rich.console import Console

    return Console(width=width(), stderr=err, highlight=False)


NAME_WIDTH = 28
"""A case name longer than this, in a table's first column, is shown as its benchmark and a key."""


def short_names(
    columns: tuple[str, ...] | list[str], rows: list[list[str]]
) -> tuple[list[list[str]], list[str]]:
    """A table's rows with long case names shortened to `benchmark [k]`, and the legend of the keys:
    a name folded over 5-8 lines of a narrow column reads worse than a key and the name once below."""
    if not rows or columns[0] not in ("benchmark", "case") or max(len(r[0]) for r in rows) <= NAME_WIDTH:
        return rows, []
    keys: dict[str, str] = {}
    for r in rows:
        name = r[0]
        if len(name) > NAME_WIDTH and "[" in name and name not in keys:
            keys[name] = f"{name.split('[', 1)[0]} [{len(keys) + 1}]"
    shown = [[keys.get(r[0], r[0]), *r[1:]] for r in rows]
    return shown, [f"{k[k.rindex('[') :]} {name}" for name, k in keys.items()]


def _least(cells: list[str]) -> int:
    """The narrowest a column of these cells can be without breaking a word."""
    return max((len(w) for c in cells for w in c.split()), default=1)


def print_table(
    title: str, columns: tuple[str, ...] | list[str], rows: list[list[str]], compact: bool = False
) -> None:
    """A table folded to `width()` columns: long case names as keys with a legend below (`short_names`),
    columns empty in every row left out, no vertical rules past 5 columns (or `compact`), and the
    names kept whole where the other columns leave room."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    shown, legend = short_names(columns, rows)
    keep = [i for i, _ in enumerate(columns) if i == 0 or not shown or any(r[i].strip() for r in shown)]
    columns, shown = [columns[i] for i in keep], [[r[i] for i in keep] for r in shown]
    compact = compact or len(columns) > 5
    # Strings from results files are never read as markup, and their control characters are shown
    # escaped (rich passes ANSI escapes through).
    table = Table(
        title=Text(text.terminal(title)),
        show_lines=False,
        box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD,
        show_edge=not compact,
        pad_edge=not compact,
        collapse_padding=compact,
    )
    out = console()
    names = max((len(r[0]) for r in shown), default=0)
    others = sum(_least([c, *(r[i] for r in shown)]) + 3 for i, c in enumerate(columns) if i)
    for i, c in enumerate(columns):
        whole = i == 0 and names <= NAME_WIDTH and names + others + 4 <= out.width
        table.add_column(c, overflow="fold", width=names if whole else None)
    for r in shown:
        table.add_row(*(Text(text.terminal(c)) for c in r))
    out.print(table)
    print_notes(legend)


def print_notes(lines: list[str], err: bool = False) -> None:
    """Lines folded to `width()` columns (a long case name breaks rather than runs past the edge)."""
    from rich.text import Text

    out = console(err)
    for line in lines:
        out.print(Text(text.terminal(line)), overflow="fold")


def error(message: str) -> None:
    print(f"chipbench: error: {text.terminal(message)}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"warning: {text.terminal(message)}", file=sys.stderr)


def say(message: str, err: bool = False) -> None:
    """A line of output whose parts may come from results files: control characters escaped."""
    print(text.terminal(message), file=sys.stderr if err else sys.stdout, flush=True)
