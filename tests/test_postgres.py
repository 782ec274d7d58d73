"""The PostgreSQL backend's own rules: how it is chosen, its schema, its failures.

The stores' behaviour on it is the contract suite's (tests/test_store_contract.py, which
runs on both backends); these are what only a server has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import LATEST_REVISION, ModelQuery, SchemaTooNewError, open_library
from hikaze_mm.database.errors import StorageBusyError, StorageUnavailableError
from hikaze_mm.database.listing import TALLY_ROWS
from hikaze_mm.database.open import backend_of
from hikaze_mm.database.postgres.connection import to_psycopg
from hikaze_mm.database.postgres.errors import redact_url
from hikaze_mm.database.postgres.schema import PG_REVISION, SCHEMA_LOCK_KEY, SQLITE_HEAD_AT
from tests.helpers import run_cli, write_model
from tests.pg_cluster import PgServer
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def pg_config(tmp_path: Path, url: str) -> Config:
    return Config.load(data_dir=tmp_path / "data", env={"HIKAZE_DB_URL": url})


def test_a_batch_lookup_is_planned_for_its_values_each_time(tmp_path: Path, pg_url: str) -> None:
    """A statement naming its rows by a long list of values is never prepared (a generic
    plan made while the table is small would keep scanning it whole as it grows); one
    run as often with a single value is."""
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        hashes = [f"{n:064x}" for n in range(64)]
        for _ in range(8):
            library.models.locate(sha256s=hashes)
            library.models.exists(hashes[0])
        prepared = [
            text
            for (text,) in library.tuples("SELECT statement FROM pg_prepared_statements")
            if "FROM models WHERE sha256" in text
        ]
        assert len(prepared) == 1 and "SELECT 1 FROM models WHERE sha256 = $1" in prepared[0]
    finally:
        library.close()


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
    # A new SQLite revision needs its PostgreSQL one (and an entry here).
    assert SQLITE_HEAD_AT.get(LATEST_REVISION, PG_REVISION + 1) <= PG_REVISION
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        assert library.head_revision == PG_REVISION
        assert library.schema_version() == PG_REVISION
        assert library.init_db() == PG_REVISION  # again: nothing to do
    finally:
        library.close()
    reader = open_library(pg_config(tmp_path, pg_url), read_only=True)
    try:
        assert reader.check_readable() == PG_REVISION
    finally:
        reader.close()


def _undo_revision_14(conn: Any) -> None:
    """Back to revision 13's shape: the caches the catalog's, images numbered by files,
    no claims on pending rows."""
    for cache in ("hash_cache", "sidecar_files"):
        conn.execute(f"ALTER TABLE {cache} DROP COLUMN host")
        conn.execute(f"ALTER TABLE {cache} ADD PRIMARY KEY (path)")
    conn.execute("DROP TABLE image_seqs")
    conn.execute("DROP TABLE image_orders")
    conn.execute("ALTER TABLE pending_import DROP COLUMN claimed_by")
    conn.execute("ALTER TABLE pending_import DROP COLUMN lease_until")


def test_revision_14_gives_the_caches_of_before_to_the_host_that_used_the_catalog_last(
    tmp_path: Path, pg_url: str
) -> None:
    """Before revision 14 the caches were the catalog's; after it each host reads its own.
    The rows of before become the last host's, so a catalog one machine used reads none of
    its files again."""
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        library.hash_cache.store("/m/a.sft", 1, 2, 3, "a" * 64)
        with library.transaction() as conn:  # back to revision 13's shape
            _undo_revision_14(conn)
            conn.execute("DELETE FROM hosts")
            conn.execute(
                "INSERT INTO hosts (name, release, first_seen, last_seen) VALUES "
                "('old-host', '2.9', 1, 5), ('older-host', '2.8', 1, 2)"
            )
            conn.execute("UPDATE schema_revision SET revision = 13")
    finally:
        library.close()
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        assert library.schema_version() == PG_REVISION
        assert library.tuples("SELECT host, path FROM hash_cache") == [("old-host", "/m/a.sft")]
    finally:
        library.close()


def test_a_catalog_at_revision_12_is_upgraded_by_a_write_open(tmp_path: Path, pg_url: str) -> None:
    """Revision 13 stores the search's joined folds (``search_fold``) and indexes them, and
    keeps a tally of the models (``model_tally``) and sends change events: a
    catalog of the first PostgreSQL release (12: the folds joined in the index's own
    expression) is refused by a read-only open, and a write open upgrades it, with its
    models found by text and tag as before; and revision 14 keeps the caches per host.
    The upgrade runs both steps."""
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        library.models.upsert(
            {"sha256": "a" * 64, "path": "/m/Anime_Style.sft", "name": "Anime Style"},
            tags=["style"],
        )
        library.models.upsert({"sha256": "b" * 64, "path": "/m/other.sft", "name": "Other"})
        with library.transaction() as conn:  # back to revision 12's shape
            conn.execute("DROP INDEX idx_models_search")
            conn.execute("ALTER TABLE models DROP COLUMN search_fold")
            conn.execute("DROP FUNCTION hikaze_model_tally() CASCADE")  # and its triggers
            conn.execute("DROP TABLE model_tally")
            conn.execute("DROP FUNCTION hikaze_changed() CASCADE")
            conn.execute("DROP TABLE catalog_holds")
            conn.execute("DROP TABLE hosts")
            _undo_revision_14(conn)
            conn.execute(
                "INSERT INTO hash_cache (path, size_bytes, mtime_ns, inode, sha256, hashed_at) "
                "VALUES ('/m/other.sft', 1, 2, 3, ?, 0)",
                ("b" * 64,),
            )
            conn.execute(
                "CREATE INDEX idx_models_search ON models USING gin (tag_ids, "
                "(COALESCE(name_fold, '') || chr(10) || path_fold || chr(10) || "
                "COALESCE(words_fold, '')) gin_trgm_ops)"
            )
            conn.execute("UPDATE schema_revision SET revision = 12")
    finally:
        library.close()
    with pytest.raises(StorageUnavailableError, match="upgrades it"):
        open_library(pg_config(tmp_path, pg_url), read_only=True)
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        assert library.schema_version() == PG_REVISION
        total, rows = library.listing.page(ModelQuery(tags=("style",), q="ANIME"))
        assert (total, [r["sha256"] for r in rows]) == (1, ["a" * 64])
        index = library.conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_models_search'"
        ).fetchone()[0]
        assert "search_fold" in index
        assert _unfiltered_total(library) == 2  # the tally starts from the models there
        # Revision 14: the cache rows of before are the library's own (host '').
        assert library.tuples("SELECT host, path FROM hash_cache") == [("", "/m/other.sft")]
        assert library.tuples("SELECT COUNT(*) FROM image_seqs") == [(0,)]
        library.models.upsert({"sha256": "c" * 64, "path": "/m/c.sft"})
        assert _unfiltered_total(library) == 3
    finally:
        library.close()


def test_a_catalog_of_a_newer_release_is_refused(tmp_path: Path, pg_url: str) -> None:
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        library.conn.execute("UPDATE schema_revision SET revision = ?", (PG_REVISION + 1,))
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


# ---------------------------------------------------------------------- concurrency
def _waiting_on_locks(url: str, kind: str) -> int:
    """How many sessions of this database wait on a lock of ``kind`` (pg_locks' locktype:
    ``advisory``, ``transactionid``...)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND l.locktype = %s AND a.datname = current_database()",
            (kind,),
        ).fetchone()[0]


def test_two_processes_building_the_schema_at_once_take_turns(
    tmp_path: Path, pg_cluster: PgServer
) -> None:
    """Both wait on the advisory lock (held here first); released, one builds the schema and
    the other finds it built: both open the library, and it holds one revision row."""
    import psycopg

    url = pg_cluster.url(pg_cluster.new_database())  # empty: no schema yet
    script = (
        "import sys; from dataclasses import replace; from hikaze_mm.config import Config; "
        "from hikaze_mm.database import open_library; "
        "c = replace(Config.load(data_dir=sys.argv[2], env={}), database_url=sys.argv[1]); "
        "print(open_library(c).schema_version())"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, url, str(tmp_path / f"d{n}")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for n in range(2)
        ]
        try:
            wait_until(
                lambda: _waiting_on_locks(url, "advisory"),
                lambda n: n == 2,
                message="both processes to wait on the schema lock",
            )
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [
        (proc.returncode, out.strip()) for proc, (out, _err) in zip(procs, results, strict=True)
    ] == [
        (0, str(PG_REVISION)),
        (0, str(PG_REVISION)),
    ], [err for _out, err in results]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_revision").fetchone()[0] == 1


def _in_thread(target: Callable[[], T]) -> tuple[threading.Thread, list[Any]]:
    """Run ``target`` in a thread; the list gets its result (or its exception)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(target())
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_model_created_by_two_writers_at_once_is_created_then_updated(
    tmp_path: Path, pg_url: str
) -> None:
    library = open_library(pg_config(tmp_path, pg_url))
    sha = "d" * 64
    try:
        with library.transaction():
            first = library.models.upsert({"sha256": sha, "path": "/m/a.safetensors", "name": "A"})
            # The second writer finds no row yet, then waits on this one's new row.
            thread, outcome = _in_thread(
                lambda: library.models.upsert({"sha256": sha, "path": "/m/b.safetensors"})
            )
            wait_until(
                lambda: _waiting_on_locks(pg_url, "transactionid"),
                lambda n: n >= 1,
                message="the second writer to wait on the first",
            )
        thread.join(timeout=30)
        assert first[1] == "created"
        record, action = outcome[0]
        assert action == "updated" and record["path"] == "/m/b.safetensors"
        assert record["name"] == "A"
    finally:
        library.close()


def test_a_state_document_read_to_be_changed_is_held_until_the_unit_ends(
    tmp_path: Path, pg_url: str
) -> None:
    """Two read-modify-writes of one journal: the second waits for the first, then reads
    what it wrote (no entry lost, as under SQLite's write lock)."""
    library = open_library(pg_config(tmp_path, pg_url))

    def add_entry(name: str) -> None:
        with library.transaction():
            entries = (library.state.get("journal") or {}).get("entries", {})
            library.state.set("journal", {"entries": {**entries, name: 1}})
        library.release_thread()

    try:
        with library.transaction():
            entries = (library.state.get("journal") or {}).get("entries", {})
            thread, outcome = _in_thread(lambda: add_entry("second"))
            wait_until(
                lambda: _waiting_on_locks(pg_url, "advisory"),
                lambda n: n == 1,
                message="the second writer to wait on the journal",
            )
            library.state.set("journal", {"entries": {**entries, "first": 1}})
        thread.join(timeout=30)
        assert outcome == [None]
        assert library.state.get("journal") == {"entries": {"first": 1, "second": 1}}
    finally:
        library.close()


def test_a_store_call_that_loses_a_deadlock_runs_again(tmp_path: Path, pg_url: str) -> None:
    """A bulk write (``set_missing``) and a unit of work lock two models in opposite orders;
    the server aborts one. The store call, a unit of work by itself, runs again and
    succeeds; the other unit either finished or failed as busy (never half done)."""
    library = open_library(pg_config(tmp_path, pg_url))
    x, y = "1" * 64, "2" * 64
    try:
        for sha in (x, y):
            library.models.upsert({"sha256": sha, "path": f"/m/{sha[0]}.safetensors"})
        first: list[object] = []
        try:
            with library.transaction():
                library.models.get(y)  # read to change: y locked
                thread, outcome = _in_thread(lambda: library.models.set_missing([x, y], True))
                wait_until(
                    lambda: _waiting_on_locks(pg_url, "transactionid"),
                    lambda n: n >= 1,
                    message="the bulk write to wait on y, holding x",
                )
                first.append(library.models.get(x))  # x: held by the bulk write: a deadlock
        except StorageBusyError as exc:  # this unit lost instead: it changed nothing
            first.append(exc)
        thread.join(timeout=60)
        assert outcome == [2]
        assert [library.models.get(sha)["missing"] for sha in (x, y)] == [True, True]
        assert len(first) == 1
    finally:
        library.close()


def test_a_connection_lost_mid_unit_fails_it_cleanly_and_the_next_call_reconnects(
    tmp_path: Path, pg_url: str, pg_cluster: PgServer
) -> None:
    library = open_library(pg_config(tmp_path, pg_url))
    a, b = "a" * 64, "b" * 64
    try:
        with pytest.raises(StorageUnavailableError), library.transaction():
            library.models.upsert({"sha256": a, "path": "/m/a.safetensors"})
            pid = library.conn.raw.info.backend_pid
            pg_cluster.admin(f"SELECT pg_terminate_backend({int(pid)})")  # the server drops it
            library.models.upsert({"sha256": b, "path": "/m/b.safetensors"})
        assert library.models.exists(a) is False  # nothing of the unit was written
        library.models.upsert({"sha256": b, "path": "/m/b.safetensors"})  # a new connection
        assert library.models.exists(b) and library.open_connections() == 1
    finally:
        library.close()


def test_the_cli_works_on_a_server_library_and_never_shows_its_password(
    tmp_path: Path, pg_url: str
) -> None:
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:Hunter2Secret@")
    root = tmp_path / "models"
    write_model(root / "loras" / "a.safetensors", 2000)
    where = ["--data-dir", str(tmp_path / "data"), "--db-url", url, "--models-root", str(root)]
    scan = run_cli(*where, "scan", "--immediate")
    listing = run_cli(*where, "list", "--json")
    status = run_cli(*where, "status")
    for done in (scan, listing, status):
        assert done.returncode == 0, done.stderr
        assert "Hunter2Secret" not in done.stdout + done.stderr
    assert [m["name"] for m in json.loads(listing.stdout)["items"]] == ["a"]
    down = run_cli(*where[:2], "--db-url", url.replace("host=", "host=/nowhere"), "status")
    assert down.returncode != 0 and down.stdout == ""
    assert down.stderr.count("\n") == 1 and "postgres:***@" in down.stderr
    assert "Hunter2Secret" not in down.stderr


def test_a_reader_reads_inside_a_unit_of_work_without_locking(tmp_path: Path, pg_url: str) -> None:
    writer = open_library(pg_config(tmp_path, pg_url))
    reader = open_library(pg_config(tmp_path, pg_url), read_only=True)
    try:
        writer.models.upsert({"sha256": "e" * 64, "path": "/m/e.safetensors", "name": "E"})
        with reader.transaction():  # a read-only session: no FOR UPDATE, which it refuses
            assert reader.models.get("e" * 64)["name"] == "E"
            assert reader.state.get("nothing") is None
    finally:
        reader.close()
        writer.close()


# ---------------------------------------------------------------------- models.tag_ids
def _tag_ids_disagree(library: Any) -> list[tuple[Any, ...]]:
    """The models whose ``tag_ids`` (kept by the triggers of ``model_tags``) are not the
    ids of their links."""
    return library.tuples(
        "SELECT m.sha256, m.tag_ids FROM models m WHERE ARRAY(SELECT unnest(m.tag_ids) "
        "ORDER BY 1) IS DISTINCT FROM ARRAY(SELECT l.tag_id FROM model_tags l "
        "WHERE l.model_hash = m.sha256 ORDER BY 1)"
    )


def test_a_models_tag_ids_follow_its_links_through_every_change(
    tmp_path: Path, pg_url: str
) -> None:
    library = open_library(pg_config(tmp_path, pg_url))
    a, b = "a" * 64, "b" * 64
    try:
        for sha in (a, b):
            library.models.upsert({"sha256": sha, "path": f"/m/{sha[0]}.sft"}, tags=["x", "y"])
        ids = {name: library.tags.get(name)["id"] for name in ("x", "y")}
        library.models.add_tags(a, ["z", "x"])  # one new, one already there
        library.models.remove_tags(b, ["y"])
        library.models.retag([a, b], add=[ids["y"]], remove=[ids["x"]])
        assert library.tuples("SELECT count(*) FROM models WHERE tag_ids <> '{}'") == [(2,)]
        library.tags.delete(ids["y"])  # cascades to its links
        with library.transaction() as conn:  # a link moved by hand, and a rehashed model
            conn.execute("UPDATE model_tags SET model_hash = ? WHERE model_hash = ?", (b, a))
            conn.execute("UPDATE models SET sha256 = ? WHERE sha256 = ?", ("c" * 64, b))
        assert library.tuples("SELECT tag_ids FROM models WHERE sha256 = ?", ("c" * 64,)) == [
            ([library.tags.get("z")["id"]],)
        ]
        assert _tag_ids_disagree(library) == []
        library.models.delete("c" * 64)
        assert _tag_ids_disagree(library) == [] and library.tags.count()["links"] == 0
    finally:
        library.close()


def test_two_writers_linking_one_model_at_once_keep_both_tags(tmp_path: Path, pg_url: str) -> None:
    """The second link's trigger waits on the first's row lock, then adds its id to the
    array the first wrote (a row changed in place, never recomputed from a stale read)."""
    library = open_library(pg_config(tmp_path, pg_url))
    sha = "f" * 64
    try:
        library.models.upsert({"sha256": sha, "path": "/m/f.sft"})
        library.tags.ensure_ids(["first", "second"])

        def link_second() -> None:
            library.models.add_tags(sha, ["second"])
            library.release_thread()

        with library.transaction():
            library.models.add_tags(sha, ["first"])
            thread, outcome = _in_thread(link_second)
            wait_until(
                lambda: _waiting_on_locks(pg_url, "transactionid"),
                lambda n: n >= 1,
                message="the second link to wait on the first",
            )
        thread.join(timeout=30)
        assert outcome == [None]
        assert _tag_ids_disagree(library) == []
        total, rows = library.listing.page(ModelQuery(tags=("first", "second"), q="/m/f"))
        assert total == 1 and rows[0]["sha256"] == sha
    finally:
        library.close()


def _unfiltered_total(library: Any) -> int:
    return library.listing.page(ModelQuery(limit=0))[0]


def test_an_unfiltered_total_follows_every_change_through_the_tally(
    tmp_path: Path, pg_url: str
) -> None:
    """Inserts, missing flags both ways, a rename of the hash, deletes: the total read from
    ``model_tally`` is the models not flagged missing, and folding its rows (past
    ``TALLY_ROWS``) keeps the sums."""
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        shas = [f"{n:x}" * 64 for n in range(1, 7)]
        for sha in shas:
            library.models.upsert({"sha256": sha, "path": f"/m/{sha[0]}.sft"})
        library.models.upsert({"sha256": shas[0], "path": "/m/1.sft", "name": "again"})
        library.models.set_missing(shas[:3], True)
        library.models.set_missing(shas[:1], False)
        library.models.delete(shas[1])  # missing: the present total stays
        library.models.delete(shas[5])
        assert _unfiltered_total(library) == 3  # shas 0, 3, 4
        with library.transaction() as conn:
            conn.execute("UPDATE models SET sha256 = ? WHERE sha256 = ?", ("f" * 64, shas[4]))
        assert _unfiltered_total(library) == 3
        assert library.conn.execute("SELECT count(*) FROM model_tally").fetchone()[0] > 1
        for _ in range(TALLY_ROWS // 2 + 1):  # each statement flagging one adds a tally row
            library.models.set_missing([shas[3]], True)
            library.models.set_missing([shas[3]], False)
        assert _unfiltered_total(library) == 3  # read, then folded
        folded = library.conn.execute("SELECT count(*), sum(models), sum(missing) FROM model_tally")
        assert tuple(folded.fetchone()) == (1, 4, 1)  # shas 0, 2 (missing), 3 and f...f
        assert _unfiltered_total(library) == 3
    finally:
        library.close()


def test_writers_of_new_models_do_not_wait_on_each_others_tally(
    tmp_path: Path, pg_url: str
) -> None:
    """The tally is rows added, not one row updated: a writer adds a model while another's
    transaction, which added one, is still open; each total counts what it can see."""
    library = open_library(pg_config(tmp_path, pg_url))
    try:
        with library.transaction():
            library.models.upsert({"sha256": "a" * 64, "path": "/m/a.sft"})
            thread, result = _in_thread(
                lambda: library.models.upsert({"sha256": "b" * 64, "path": "/m/b.sft"})
            )
            thread.join(30)
            assert not thread.is_alive(), "the second writer waited on the first"
            assert not isinstance(result[0], BaseException), result
            assert _unfiltered_total(library) == 2  # this one's and the committed one
        assert _unfiltered_total(library) == 2
    finally:
        library.close()


def test_a_reading_command_on_an_empty_database_creates_nothing(
    tmp_path: Path, pg_cluster: PgServer
) -> None:
    """``list`` and ``status`` only read: on a database with no schema they say so in one
    line and leave it empty; ``scan`` (a command that writes) builds the schema."""
    import psycopg

    url = pg_cluster.url(pg_cluster.new_database())
    data = str(tmp_path / "data")
    for command in ("list", "status"):
        proc = run_cli(command, "--data-dir", data, "--db-url", url)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert "not a Hikaze library (no schema)" in proc.stderr and "creates it" in proc.stderr
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone()[0] == 0
    proc = run_cli("scan", "--data-dir", data, "--db-url", url, "--models-root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(url) as conn:
        revision = conn.execute("SELECT revision FROM schema_revision").fetchone()[0]
        assert revision == PG_REVISION
