"""The README and the manual (docs/*.md) say what the code does: every `chipbench` command line they show
parses with chipbench's real parser, every relative link leads to a file (and heading) that exists, the
README stays one page, and code blocks fit 100 columns. Nothing runs a benchmark.

Which lines are commands: inside fenced code blocks, a line that begins (after blanks and a quote) with
`chipbench `, `$ chipbench ` or a path ending in `/chipbench ` (`.venv/bin/chipbench`,
`/tmp/cb-head/bin/chipbench`). A command goes on
over lines ending in a backslash, and over indented lines that begin with `[` or `-` (a synopsis wrapped
under its command). A `#` comment is dropped.

How a command is checked:
- a *synopsis* (it holds a placeholder: `[`, `]`, `...`, `|`, `<`, `>` or a `$` shell expansion) is checked
  for its subcommand's name and for every `-x`/`--flag` it names being an option of that subcommand
  (the flags inside a `$(...)` command substitution belong to another program and are skipped);
- any other command is parsed whole by `build_parser().parse_args(...)`, so its flags, choices and values
  (`--suite`, `--time-budget 0.3`, `--nproc-per-node 1,2`) must all be accepted.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from chipbench.cli.app import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

README_MAX_LINES = 200
CODE_MAX_COLUMNS = 100

_START = re.compile(r"^\s*['\"]?(?:\$ )?(?:\S*/)?chipbench(?= |$)")
_PLACEHOLDER = re.compile(r"[\[\]|<>]|\.\.\.|\$")
_FLAG = re.compile(r"(?<![\w./=-])(--?[A-Za-z][\w-]*)")


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str  # the command after `chipbench`, continuation lines joined, comment dropped

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: chipbench {self.text}"


def code_lines(page: Path) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block."""
    out, fence = [], None
    for i, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m and (fence is None or m.group(1).startswith(fence)):
            fence = None if fence else m.group(1)
            continue
        if fence:
            out.append((i, line))
    return out


def _drop_comment(text: str) -> str:
    """The text before an unquoted ` #` (shell comment)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text


def commands(page: Path) -> list[Command]:
    lines = code_lines(page)
    found: list[Command] = []
    i = 0
    while i < len(lines):
        no, line = lines[i]
        m = _START.match(line)
        i += 1
        if not m:
            continue
        parts = [line[m.end() :].strip()]
        while i < len(lines) and (
            parts[-1].endswith("\\")
            or (re.match(r"^\s+[\[-]", lines[i][1]) and not _START.match(lines[i][1]))
        ):
            if lines[i][0] != lines[i - 1][0] + 1:
                break  # the code block ended
            parts[-1] = parts[-1].removesuffix("\\").strip()
            parts.append(lines[i][1].strip())
            i += 1
        text = _drop_comment(" ".join(p.removesuffix("\\").strip() for p in parts)).strip()
        found.append(Command(page, no, text))
    return found


ALL = [c for page in PAGES for c in commands(page)]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("chipbench's parser has no subcommands")


PARSER = build_parser()
SUBCOMMANDS = _subparsers(PARSER)


def check(cmd: Command) -> None:
    """Raise AssertionError naming the command when it does not parse (see the module's docstring)."""
    text = cmd.text
    if _PLACEHOLDER.search(text):
        words = text.split()
        target = PARSER
        if words and not words[0].startswith("-"):
            assert words[0] in SUBCOMMANDS, f"{cmd}: no subcommand {words[0]!r} (have {sorted(SUBCOMMANDS)})"
            target = SUBCOMMANDS[words[0]]
        known = set(target._option_string_actions)
        for flag in _FLAG.findall(re.sub(r"\$\([^)]*\)", "", text)):  # not a $(...)'s own flags
            assert flag in known, f"{cmd}: {flag} is not an option of `{target.prog}` ({sorted(known)})"
        return
    argv = shlex.split(text)
    assert argv, f"{cmd}: an empty command"
    try:
        PARSER.parse_args(argv)
    except SystemExit as exc:  # --version or --help
        assert exc.code == 0, f"{cmd}: exit {exc.code}"
    except Exception as exc:  # chipbench's parser raises UsageError, in one line
        raise AssertionError(f"{cmd}: {exc}") from None


def test_the_pages_show_chipbench_commands() -> None:
    # The check must see what the pages show: each of the main commands appears as a command line.
    shown = {c.text.split()[0] for c in ALL if c.text}
    assert {"run", "report", "compare", "calibrate", "describe", "ab", "history"} <= shown, shown
    assert any(c.page == README for c in ALL)


@pytest.mark.parametrize("cmd", ALL, ids=[f"{c.page.name}:{c.line}" for c in ALL])
def test_command_parses(cmd: Command) -> None:
    check(cmd)


def test_the_check_fails_on_what_the_parser_refuses() -> None:
    page = README
    bad = [
        Command(page, 0, "run calib.copy --suite smoke --no-such-flag"),  # unknown flag
        Command(page, 0, "run --suite tiny"),  # a choice the parser does not offer
        Command(page, 0, "run --time-budget soon"),  # a value its type refuses
        Command(page, 0, "benchmark calib.copy"),  # no such subcommand
        Command(page, 0, "compare BASE NEW [--no-such-flag]"),  # a synopsis naming an unknown flag
        Command(page, 0, "frobnicate [--suite smoke]"),  # a synopsis of no subcommand
    ]
    for cmd in bad:
        with pytest.raises(AssertionError):
            check(cmd)
    check(Command(page, 0, "run calib.copy --suite smoke --set size_mib=16 --nproc-per-node 1,2"))


def test_commands_are_found_across_continuations(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text chipbench run --ignored\n```sh\n$ chipbench run a \\\n    --suite smoke  # why\n"
        "chipbench compare BASE NEW [--strict]\n                  [--json]\nnot chipbench\n```\n"
        "```text\n.venv/bin/chipbench env --json\n```\n",
        encoding="utf-8",
    )
    got = [(c.line, c.text) for c in commands(page)]
    assert got == [
        (3, "run a --suite smoke"),
        (5, "compare BASE NEW [--strict] [--json]"),
        (10, "env --json"),
    ]


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*_]|\[|\]|\(([^)]*)\)(?=$|\s)", lambda m: m.group(1) or "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_code = {n for n, _ in code_lines(page)}
    for i, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and i not in in_code:
            s = _slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_lead_somewhere(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, frag = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(
                f"{target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})"
            )
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            broken.append(f"{target} (no heading #{frag} in {dest.name})")
    assert not broken, f"{page.name}: broken links: {broken}"


def test_readme_is_one_page_and_leads_to_every_docs_page() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; the manual belongs in docs/"
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README)}
    assert not [p.name for p in DOCS if p not in linked], "docs pages the README does not link"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_code_blocks_fit_100_columns(page: Path) -> None:
    wide = [f"{page.name}:{n} ({len(line)})" for n, line in code_lines(page) if len(line) > CODE_MAX_COLUMNS]
    assert not wide, f"code lines over {CODE_MAX_COLUMNS} columns: {wide}"
