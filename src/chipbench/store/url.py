"""Where a store is: `StoreURL` reads what `--store` was given (nothing: the cache folder's SQLite file; a
path; `sqlite:///path`; `postgresql://user:password@host:port/db`) and keeps its password out of sight:
`redacted`, `str()` and `repr()` show `***` in its place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chipbench.core.errors import UsageError
from chipbench.platform.ceilings import cache_dir

DEFAULT_NAME = "store.sqlite"
"""The default store's file in chipbench's cache folder ($CHIPBENCH_CACHE_DIR, else the user's cache)."""

_POSTGRES = ("postgresql", "postgresql+psycopg", "postgres")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store address. Only `sqlalchemy_url` holds the password; nothing prints it."""

    dialect: str
    """`sqlite` or `postgresql`."""
    redacted: str
    """The address with its password replaced by `***`: what messages show."""
    sqlite_path: Path | None = None
    """The SQLite file (None for PostgreSQL)."""
    password: str | None = field(default=None, repr=False)
    _url: Any = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.redacted

    @property
    def sqlalchemy_url(self) -> Any:
        """SQLAlchemy's URL object (its own repr hides the password too)."""
        return self._url

    def scrub(self, message: str) -> str:
        """`message` with the password, were it in it, replaced by `***`."""
        return message.replace(self.password, "***") if self.password else message


def default_path() -> Path:
    return cache_dir() / DEFAULT_NAME


def parse(text: str | None) -> StoreURL:
    """The store at `text` (module docstring); a one-line UsageError for one chipbench cannot use."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if text is None:
        return _sqlite(default_path())
    text = text.strip()
    if not text:
        raise UsageError("--store is empty: give a path, sqlite:///PATH or postgresql://USER@HOST/DB")
    if "://" not in text:
        return _sqlite(Path(os.path.expanduser(text)))
    scheme = text.split("://", 1)[0].lower()
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        shown = text.split("@", 1)[-1] if "@" in text else text
        raise UsageError(
            f"cannot read the store URL ...{shown[:80]!r}: expected postgresql://USER@HOST/DB"
        ) from None
    if scheme == "sqlite":
        if not url.database or url.database == ":memory:":
            raise UsageError(
                "a sqlite store needs a file: sqlite:///relative/path or sqlite:////absolute/path"
            )
        return _sqlite(Path(url.database))
    if scheme not in _POSTGRES:
        raise UsageError(
            f"unknown store URL scheme {scheme[:40]!r}: use a path, sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    if not url.database:
        raise UsageError(f"store URL {url.render_as_string(hide_password=True)} names no database (…/DBNAME)")
    url = url.set(drivername="postgresql+psycopg")
    redacted = url.render_as_string(hide_password=True).replace("postgresql+psycopg://", "postgresql://", 1)
    return StoreURL("postgresql", redacted, None, url.password, url)


def _sqlite(path: Path) -> StoreURL:
    from sqlalchemy.engine import URL

    path = path.absolute()
    url = URL.create("sqlite", database=str(path))
    return StoreURL("sqlite", str(path), path, None, url)
