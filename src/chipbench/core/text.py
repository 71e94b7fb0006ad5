"""Strings from results files (anyone's) made safe to show: on a terminal no control character (an ANSI
escape could recolour or rewrite the screen) and in Markdown no markup or HTML."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")
"""Control characters, lone surrogates (unprintable), and the invisible format characters that reorder or
hide text (bidirectional overrides, zero-width characters, line and paragraph separators)."""
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def _escape_control(m: re.Match[str]) -> str:
    return m.group(0).encode("unicode_escape", "backslashreplace").decode("ascii")


def terminal(text: object) -> str:
    """`text` with every control character shown as its escape (\\x1b, \\n, ...)."""
    return _CONTROL.sub(_escape_control, str(text))


_LIVE = re.compile(r"@|\$|://|www\.|#\d", re.IGNORECASE)
"""What GitHub turns into a mention, a link, math or an issue reference even when escaped: only a code
span keeps it literal."""


def code_span(text: object) -> str:
    """`text` as an inline code span for a Markdown table cell: nothing inside is read as markup, a
    mention, a link or math; its pipes are escaped (GitHub tables split on them even there)."""
    s = terminal(text).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip(" ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def markdown(text: object) -> str:
    """`text` for a Markdown table cell: controls escaped, HTML's <, > and & as entities, Markdown's
    punctuation backslash-escaped, so a name renders as itself and never as markup or a link. Text that
    GitHub would still make live (an @mention, a URL, $math$, #123) becomes a code span."""
    if _LIVE.search(str(text)):
        return code_span(text)
    s = terminal(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", s)


def markdown_table(columns: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table: our own header, every cell of `rows` escaped with `markdown`."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(markdown(c) for c in row) + " |" for row in rows),
    ]
