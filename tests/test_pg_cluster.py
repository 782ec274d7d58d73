"""The throwaway PostgreSQL cluster (tests/pg_cluster.py) gives each test a database."""

from __future__ import annotations

import os

import pytest

from tests.pg_cluster import PgServer


def test_each_test_gets_a_working_database_of_its_own(pg_url: str, pg_cluster: PgServer) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x integer)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        assert conn.execute("SELECT sum(x) FROM t").fetchone() == (3,)
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert name.startswith(pg_cluster.prefix)
    other = pg_cluster.new_database()
    try:
        with psycopg.connect(pg_cluster.url(other)) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
            ).fetchone()[0]
        assert tables == 0  # another database: none of this test's tables
    finally:
        pg_cluster.drop_database(other)


def test_a_database_that_does_not_exist_is_refused(pg_cluster: PgServer) -> None:
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(pg_cluster.url("no_such_database")).close()


def test_hikaze_test_pg_dsn_points_the_tests_at_another_server(
    pg_cluster: PgServer, tmp_path
) -> None:
    """A pytest run with ``HIKAZE_TEST_PG_DSN`` (here: this session's server, as an
    external one) starts no cluster: its databases are made on that server, and dropped."""
    import subprocess
    import sys
    from pathlib import Path

    import psycopg

    def admin_commits() -> int:  # transactions on the server's admin database
        with psycopg.connect(pg_cluster.url("postgres")) as conn:
            return conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'"
            ).fetchone()[0]

    before = admin_commits()
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HIKAZE_TEST_PG_DSN": pg_cluster.url("postgres"), "PYTHONPATH": str(repo)}
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_pg_cluster.py::test_each_test_gets_a_working_database_of_its_own",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    with psycopg.connect(pg_cluster.url("postgres")) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'hikaze_t%%' "
            "AND datname NOT LIKE %s",
            (pg_cluster.prefix + "%",),
        ).fetchone()[0]
    assert left == 0  # the other run's databases are gone
    # ... and were made here: its template and its tests' databases, made and dropped,
    # about 15 statements, where this test's own reads are 4.
    assert admin_commits() - before >= 10
