"""A private PostgreSQL server for the store's tests: the machine's PostgreSQL 15 binaries, a data folder
and a socket in a temporary folder, a loopback port, a password (scram) on TCP. Run as the `postgres`
user where the tests run as root (PostgreSQL refuses root). One per test session (per xdist worker),
stopped and removed at its end; each test gets a database of its own."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("CHIPBENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "postgres"


def unavailable() -> str | None:
    """Why no server can be started here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"no PostgreSQL binaries in {PG_BIN} ({tool} missing; set CHIPBENCH_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (make setup installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A started server; `new_database()` gives a URL of a fresh, empty database."""

    def __init__(self) -> None:
        self._as_root = os.geteuid() == 0
        # As root, under /tmp: the postgres user must reach it ($TMPDIR may be root's own folder).
        where = "/tmp" if self._as_root and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="chipbench-pg-", dir=where))
        self.password = "pw-" + secrets.token_hex(12)
        self.port = _free_port()
        self._n = itertools.count()
        if self._as_root:
            shutil.chown(self.root, USER)
        (self.root / "pw").write_text(self.password)
        if self._as_root:
            shutil.chown(self.root / "pw", USER)
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-U", USER, f"--pwfile={self.root / 'pw'}", "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions",
        )  # fmt: skip
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o", opts, "start"
        )

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(PG_BIN / tool), *args]
        if self._as_root:
            cmd = ["runuser", "-u", USER, "--", *cmd]
        got = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if got.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({got.returncode}): {got.stderr[-2000:]} {tail}")

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(self._n)}"
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a name made here, not from input
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
