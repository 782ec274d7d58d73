"""The PostgreSQL backend's own rules: how it is chosen, its schema, its failures.

The stores' behaviour on it is the contract suite's (tests/test_store_contract.py, which
runs on both backends); these are what only a server has.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import LATEST_REVISION, SchemaTooNewError, open_library
from hikaze_mm.database.errors import StorageUnavailableError
from hikaze_mm.database.open import backend_of
from hikaze_mm.database.postgres.connection import to_psycopg
from hikaze_mm.database.postgres.errors import redact_url
from hikaze_mm.database.postgres.schema import PG_REVISION


def pg_config(tmp_path: Path, url: str) -> Config:
    return Config.load(data_dir=tmp_path / "data", env={"HIKAZE_DB_URL": url})


def test_the_url_comes_from_hikaze_db_url_and_picks_postgres(tmp_path: Path) -> None:
    config = pg_config(tmp_path, "postgresql://u:pw@db.example/lib")
    assert config.database_url == "postgresql://u:pw@db.example/lib"
    assert backend_of(config) == ("postgresql", "postgresql://u:pw@db.example/lib")
    assert backend_of(replace(config, database_url="postgres://h/x"))[0] == "postgres"
    assert Config.load(data_dir=tmp_path, env={}).database_url is None


def test_passwords_are_redacted_in_urls_and_dsns() -> None:
    assert redact_url("postgresql://bob:s3cr%40t@h/lib") == "postgresql://bob:***@h/lib"
    assert redact_url("host=h password=hunter2 user=bob") == "host=h password=*** user=bob"
    assert redact_url("postgresql://bob@/lib?host=/tmp&password=zz") == (
        "postgresql://bob@/lib?host=/tmp&password=***"
    )
    assert redact_url("postgresql://h/lib") == "postgresql://h/lib"


def test_placeholders_become_psycopgs_and_percent_signs_stay_literal() -> None:
    sql = "SELECT '?%' || x FROM t WHERE a = ? AND b LIKE '%x' AND c = ?"
    assert to_psycopg(sql) == "SELECT '?%%' || x FROM t WHERE a = %s AND b LIKE '%%x' AND c = %s"


def test_the_schema_is_built_at_head(tmp_path: Path, pg_url: str) -> None:
    assert PG_REVISION == LATEST_REVISION  # a new SQLite revision needs its PostgreSQL one
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        assert library.schema_version() == LATEST_REVISION
        assert library.init_db() == LATEST_REVISION  # again: nothing to do
    finally:
        library.close()
    reader = open_library(pg_config(tmp_path, pg_url), read_only=True)
    try:
        assert reader.check_readable() == LATEST_REVISION
    finally:
        reader.close()


def test_a_catalog_of_a_newer_release_is_refused(tmp_path: Path, pg_url: str) -> None:
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        library.conn.execute("UPDATE schema_revision SET revision = ?", (LATEST_REVISION + 1,))
    finally:
        library.close()
    for read_only in (False, True):
        with pytest.raises(SchemaTooNewError, match="Upgrade Hikaze Model Manager"):
            open_library(pg_config(tmp_path, pg_url), read_only=read_only)


def test_an_unreachable_server_is_one_clean_error_without_the_password(tmp_path: Path) -> None:
    missing = tmp_path / "no-server-here"
    missing.mkdir()
    url = f"postgresql://bob:TopSecret42@/lib?host={missing}"
    with pytest.raises(StorageUnavailableError) as caught:
        open_library(pg_config(tmp_path, url))
    message = str(caught.value.detail)
    assert "TopSecret42" not in message and "TopSecret42" not in repr(caught.value)
    assert "bob:***@" in message and str(missing) in message
    assert caught.value.__cause__ is None  # the driver's error (which may quote it) is dropped
