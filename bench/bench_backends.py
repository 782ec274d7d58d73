"""The backends a bench runs on, side by side: SQLite always, PostgreSQL with ``--db-url``.

``--db-url URL`` names a PostgreSQL server the bench may create databases on (the URL's own
database is used to create and drop them); ``--db-url temp`` starts a throwaway cluster in a
temporary folder, on a Unix socket only, as the tests do (``tests/pg_cluster.py``; needs
Debian's ``postgresql`` package). Each library the bench builds gets a new database, dropped
at the end.
"""

from __future__ import annotations

import os
from dataclasses import replace
from itertools import count
from pathlib import Path

from hikaze_mm.config import Config

SQLITE, POSTGRES = "sqlite", "postgresql"


class Backends:
    def __init__(self, db_url: str | None) -> None:
        self.names = [SQLITE] + ([POSTGRES] if db_url else [])
        self._server = None
        self._stop = None
        self._made: list[str] = []
        self._ids = count(1)
        if db_url == "temp":
            from tests.pg_cluster import find_bindir, start_cluster

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit(
                    "--db-url temp needs PostgreSQL's initdb (apt-get install postgresql)"
                )
            self._server = start_cluster(bindir)
            self.url = self._server.url("postgres")
        else:
            self.url = db_url

    def config(self, backend: str, data_dir: Path, model_roots: list[str]) -> Config:
        """A new, empty library of ``backend`` (its data folder ``data_dir``)."""
        config = Config.load(data_dir=data_dir, model_roots=model_roots, env={})
        if backend == SQLITE:
            return config
        return replace(config, database_url=self._new_database())

    def _new_database(self) -> str:
        import psycopg
        from psycopg import sql

        from tests.pg_cluster import with_database

        assert self.url is not None
        name = f"hikaze_bench_{os.getpid()}_{next(self._ids)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._made.append(name)
        return with_database(self.url, name)

    def close(self) -> None:
        if self.url and self._made:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.url, autocommit=True) as conn:
                for name in self._made:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
        if self._server is not None:
            self._server.stop()
