"""A throwaway PostgreSQL cluster for the tests (the ``pg_cluster`` and ``pg_url`` fixtures).

``pg_cluster`` (one per session) runs ``initdb`` and ``pg_ctl`` in a temporary folder: a
server that listens on a Unix socket in that folder only, with ``fsync`` off, stopped and
removed at the end. As root it runs them as the ``postgres`` account (``runuser``), since
``initdb`` refuses root. A template database holds the library's schema, built once, and
``pg_url`` gives each test its own database copied from it (``CREATE DATABASE ...
TEMPLATE``, a file copy), dropped after the test.

``HIKAZE_TEST_PG_DSN`` (a URL of a server whose account may create databases) points the
tests at that server instead. Without either, the PostgreSQL tests skip with one reason;
under CI (``CI`` set) they fail instead, so they can never be skipped silently there.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

TEMPLATE = "hikaze_template"
_names = itertools.count(1)


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(candidates[-1]).parent if candidates else None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parents[1].name
    return tuple(int(p) for p in part.split(".") if p.isdigit())


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name)))


class PgServer:
    """A server the tests may create databases on: ``url(name)`` names one of them."""

    def __init__(self, base_url: str, stop: Callable[[], None] | None = None) -> None:
        self.base_url = base_url
        self._stop = stop
        self.prefix = f"hikaze_t{os.getpid()}_"
        self._version: int | None = None

    def url(self, name: str) -> str:
        return with_database(self.base_url, name)

    def admin(self, sql: str) -> None:
        """Run one statement (outside any transaction) as the server's account."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def new_database(self, template: str | None = None) -> str:
        """A new database (a copy of ``template``: its files, on PostgreSQL 15 and later,
        which is several times faster than through the WAL); its name."""
        name = f"{self.prefix}{next(_names)}"
        copy = f' TEMPLATE "{template}"' if template else ""
        if template and self.version() >= 150000:
            copy += " STRATEGY FILE_COPY"
        self.admin(f'CREATE DATABASE "{name}"{copy}')
        return name

    def version(self) -> int:
        """The server's ``server_version_num``."""
        if self._version is None:
            import psycopg

            with psycopg.connect(self.url("postgres")) as conn:
                self._version = conn.info.server_version
        return self._version

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def start_cluster(bindir: Path) -> PgServer:
    """initdb + pg_ctl start in a new temporary folder; the server, which removes it all
    when stopped."""
    root = Path(tempfile.mkdtemp(prefix="hikaze-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    os.chmod(root, 0o755)
    run = lambda argv: subprocess.run(  # noqa: E731
        _as_server_user(argv), check=True, capture_output=True, text=True, cwd=root
    )
    options = (
        f"-k {root} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
        "-c synchronous_commit=off -c max_connections=60"
    )
    try:
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
            ]
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr or exc.stdout}") from exc

    def stop() -> None:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"]),
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)

    return PgServer(f"postgresql://postgres@/postgres?host={quote(str(root))}", stop)


def pg_server() -> Iterator[PgServer]:
    """The session's server (see the module's docstring), skipped or failed without one."""
    dsn = os.environ.get("HIKAZE_TEST_PG_DSN")
    if dsn:
        yield PgServer(dsn)
        return
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL tests need initdb (Debian: apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; under CI they must run")
        pytest.skip(reason)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        reason = 'PostgreSQL tests need psycopg: pip install -e ".[test]"'
        if os.environ.get("CI"):
            pytest.fail(reason + "; under CI they must run")
        pytest.skip(reason)
    server = start_cluster(bindir)
    try:
        yield server
    finally:
        server.stop()


def build_template(server: PgServer, prepare: Callable[[str], None]) -> str:
    """A template database prepared once by ``prepare(url)`` (the library's schema)."""
    name = f"{server.prefix}{TEMPLATE}"
    server.drop_database(name)
    server.admin(f'CREATE DATABASE "{name}"')
    prepare(server.url(name))
    return name
