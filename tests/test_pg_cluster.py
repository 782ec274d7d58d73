"""The throwaway PostgreSQL cluster (tests/pg_cluster.py) gives each test a database."""

from __future__ import annotations

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
