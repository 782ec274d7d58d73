"""DatabaseManager against real SQLite files."""

from __future__ import annotations

import inspect
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hikaze_mm.database import LATEST_REVISION, DatabaseManager, SchemaTooNewError, interfaces
from hikaze_mm.database.schema import REVISIONS, split_statements
from hikaze_mm.errors import ConflictError, NotFoundError, ValidationError

SHA_A = "a" * 64
SHA_B = "B" * 64


@pytest.fixture
def db(tmp_path: Path):
    manager = DatabaseManager(tmp_path / "lib.db")
    manager.init_db()
    yield manager
    manager.close()


def columns(db: DatabaseManager, table: str) -> list[str]:
    return [r[1] for r in db.conn.execute(f"PRAGMA table_info({table})")]


def test_schema_columns_indexes_and_pragmas(db: DatabaseManager) -> None:
    assert columns(db, "models")[:9] == [
        "sha256",
        "path",
        "name",
        "type",
        "base",
        "size_bytes",
        "created_at",
        "last_used_at",
        "meta_json",
    ]
    assert "missing" in columns(db, "models")
    assert columns(db, "tags") == ["id", "name", "color", "created_at"]
    assert columns(db, "model_tags") == ["model_hash", "tag_id"]
    pending = columns(db, "pending_import")
    for col in (
        "id",
        "path",
        "name",
        "type",
        "base",
        "size_bytes",
        "created_at",
        "meta_json",
        "sha256",
        "status",
        "error",
    ):
        assert col in pending
    assert columns(db, "pending_model_tags") == ["model_id", "tag_id"]
    indexes = {r[1] for r in db.conn.execute("PRAGMA index_list(models)")}
    assert "idx_models_path" in indexes
    # Links are found by tag (filters, tag deletes) through an index that starts with tag_id.
    leading = {
        db.conn.execute(f"PRAGMA index_info({r[1]})").fetchone()[2]
        for r in db.conn.execute("PRAGMA index_list(model_tags)")
    }
    assert "tag_id" in leading
    fks = {(r[2], r[3], r[6]) for r in db.conn.execute("PRAGMA foreign_key_list(model_tags)")}
    assert ("models", "model_hash", "CASCADE") in fks
    assert ("tags", "tag_id", "CASCADE") in fks
    pfks = {(r[2], r[3]) for r in db.conn.execute("PRAGMA foreign_key_list(pending_model_tags)")}
    assert pfks == {("pending_import", "model_id"), ("tags", "tag_id")}
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert db.schema_version() == LATEST_REVISION


def test_model_crud_and_tags(db: DatabaseManager) -> None:
    rec = db.models.upsert(
        {
            "sha256": SHA_B,
            "path": "/m/x.safetensors",
            "name": "X",
            "type": "Lora",
            "size_bytes": 10,
            "meta": {"description": "d"},
        },
        tags=["style", "Style"],
    )[0]
    assert rec["sha256"] == "b" * 64
    assert rec["type"] == "loras"
    assert rec["meta"] == {"description": "d"}
    assert [t["name"] for t in rec["tags"]] == ["style"]
    assert db.models.get("B" * 64)["name"] == "X"
    assert db.models.get_by_path("/m/x.safetensors")["sha256"] == "b" * 64
    assert db.models.get_by_path("/nowhere") is None
    assert db.models.remove_tags(SHA_B, ["STYLE"]) == 1
    assert db.models.get(SHA_B)["tags"] == []
    assert db.models.delete(SHA_B) is True
    assert db.models.get(SHA_B) is None
    assert db.models.delete(SHA_B) is False


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, "a" * 63, "a" * 65, None, 12])
def test_invalid_sha_is_a_value_error(db: DatabaseManager, bad: object) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        db.models.upsert({"sha256": bad, "path": "/p"})[0]
    with pytest.raises(ValueError):
        db.models.get(bad)  # type: ignore[arg-type]


def test_collision_updates_or_merges_never_fails(db: DatabaseManager) -> None:
    db.models.upsert(
        {
            "sha256": SHA_A,
            "path": "/a",
            "name": "first",
            "base": None,
            "meta": {"keep": 1, "list": [1, 2], "desc": ""},
        },
        tags=["one"],
    )[0]
    rec, action = db.models.upsert(
        {"sha256": SHA_A, "path": "/b", "name": "second", "meta": {"list": [2, 3], "new": True}},
        tags=["two"],
    )
    assert action == "updated"
    assert (rec["path"], rec["name"]) == ("/b", "second")
    assert rec["meta"] == {"keep": 1, "list": [2, 3, 1], "new": True, "desc": ""}
    assert {t["name"] for t in rec["tags"]} == {"one", "two"}
    rec, action = db.models.upsert(
        {
            "sha256": SHA_A,
            "path": "/c",
            "name": "third",
            "base": "SDXL",
            "meta": {"desc": "filled", "keep": 2},
        },
        on_conflict="merge",
    )
    assert action == "merged"
    assert (rec["path"], rec["name"], rec["base"]) == ("/b", "second", "SDXL")
    assert rec["meta"]["desc"] == "filled" and rec["meta"]["keep"] == 1
    assert db.conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 1


def test_failed_call_changes_nothing(db: DatabaseManager) -> None:
    db.models.upsert({"sha256": SHA_A, "path": "/a"})[0]
    # The tag id does not exist: the model's insert and its first tag must roll back too.
    with pytest.raises(NotFoundError):
        db.models.upsert({"sha256": "c" * 64, "path": "/c"}, tags=["fresh", 999])
    assert db.models.get("c" * 64) is None
    assert db.tags.get("fresh") is None
    with pytest.raises(ValidationError):
        db.models.upsert({"sha256": SHA_A, "path": "/a2", "size_bytes": "big"})
    assert db.models.get(SHA_A)["path"] == "/a"


def test_nested_transaction_rolls_back_inner_only(db: DatabaseManager) -> None:
    with db.transaction():
        db.tags.ensure("outer")
        with pytest.raises(RuntimeError), db.transaction():
            db.tags.ensure("inner")
            raise RuntimeError("boom")
    assert db.tags.get("outer") is not None
    assert db.tags.get("inner") is None


def test_tags_unique_ignoring_case_and_color_rules(db: DatabaseManager) -> None:
    tag = db.tags.create("  Anime  ", "#AABBCC")
    assert tag["name"] == "Anime" and tag["color"] == "#aabbcc"
    with pytest.raises(ConflictError):
        db.tags.create("anime")
    assert db.tags.ensure("ANIME")["id"] == tag["id"]
    with pytest.raises(ValidationError):
        db.tags.create("x", "red")
    with pytest.raises(ValidationError):
        db.tags.create("   ")
    other = db.tags.create("other")
    with pytest.raises(ConflictError):
        db.tags.update(other["id"], name="anime")
    assert db.tags.update(other["id"], color="#000000")["color"] == "#000000"


def test_deleting_a_tag_or_model_cascades(db: DatabaseManager) -> None:
    db.models.upsert({"sha256": SHA_A, "path": "/a"}, tags=["t"])[0]
    pid = db.pending.add({"path": "/p", "name": "p"}, tags=["t"])
    tag = db.tags.get("t")
    assert [t["model_count"] for t in db.tags.list()] == [1]
    db.tags.delete(tag["id"])
    assert db.models.get(SHA_A)["tags"] == []
    assert db.pending.get(pid)["tags"] == []
    db.models.add_tags(SHA_A, ["u"])
    db.models.delete(SHA_A)
    assert db.conn.execute("SELECT COUNT(*) FROM model_tags").fetchone()[0] == 0


def test_pending_imports(db: DatabaseManager) -> None:
    pid = db.pending.add(
        {"id": 42, "path": "/m/p.ckpt", "name": "p", "type": "checkpoint", "meta": {"a": 1}},
        tags=["x"],
    )
    assert pid == 42
    rec = db.pending.get(42)
    assert rec["type"] == "checkpoints" and rec["status"] == "new" and rec["meta"] == {"a": 1}
    assert [t["name"] for t in rec["tags"]] == ["x"]
    with pytest.raises(ConflictError):
        db.pending.add({"path": "/m/p.ckpt"})
    db.pending.update(42, status="error", error="missing file")
    assert db.pending.list(status="error")[0]["error"] == "missing file"
    assert db.pending.count() == 1
    assert db.pending.counts() == {"new": 0, "hashing": 0, "error": 1, "conflict": 0}
    with pytest.raises(ValidationError):
        db.pending.update(42, status="weird")
    assert db.pending.remove(42) is True
    assert db.pending.get(42) is None
    assert db.conn.execute("SELECT COUNT(*) FROM pending_model_tags").fetchone()[0] == 0


def test_state_and_hash_cache(db: DatabaseManager) -> None:
    assert db.state.get("stage2") is None
    db.state.set("stage2", {"status": "RUNNING", "processed": 3})
    assert db.state.get("stage2") == {"status": "RUNNING", "processed": 3}
    db.hash_cache.store("/f", 10, 123, 7, SHA_B)
    assert db.hash_cache.lookup("/f", 10, 123, 7) == "b" * 64
    assert db.hash_cache.lookup("/f", 10, 124, 7) is None


def test_upgrade_from_older_revision_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = DatabaseManager(path)
    old.upgrade_to(1)  # the first released schema: models, tags, model_tags only
    with old.transaction() as conn:
        conn.execute("INSERT INTO models (sha256, path, name) VALUES (?, '/old', 'Old')", (SHA_A,))
        conn.execute("INSERT INTO tags (name) VALUES ('kept')")
        conn.execute("INSERT INTO model_tags VALUES (?, 1)", (SHA_A,))
    old.close()

    db = DatabaseManager(path)
    assert db.init_db() == LATEST_REVISION
    rec = db.models.get(SHA_A)
    assert rec["name"] == "Old" and rec["missing"] is False
    assert [t["name"] for t in rec["tags"]] == ["kept"]
    assert db.pending.add({"path": "/new"}) > 0
    db.close()
    # The library as it was before the upgrade, copied whole by the backup API first.
    with sqlite3.connect(tmp_path / "old.db.bak-r1") as backup:
        assert backup.execute("PRAGMA user_version").fetchone()[0] == 1
        assert backup.execute("SELECT name FROM models").fetchall() == [("Old",)]
        assert backup.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_close_folds_the_wal_back_into_the_database(tmp_path: Path) -> None:
    db = DatabaseManager(tmp_path / "wal.db")
    db.init_db()
    for n in range(50):
        db.pending.add({"path": f"/p/{n}"})
    assert (tmp_path / "wal.db-wal").stat().st_size > 0
    db.close()
    wal = tmp_path / "wal.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(f"file:{tmp_path / 'wal.db'}?mode=ro&immutable=1", uri=True) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pending_import").fetchone()[0] == 50


def test_a_new_or_current_library_is_not_backed_up(tmp_path: Path) -> None:
    for _ in range(2):  # created, then opened at the latest revision
        db = DatabaseManager(tmp_path / "new.db")
        db.init_db()
        db.close()
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == []


def schema_of(path: Path) -> list[tuple[str, str, str, str | None]]:
    """Every table, index and trigger of a database file as ``sqlite_master`` has it."""
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def test_a_new_library_has_the_schema_an_upgrade_from_the_first_revision_gives(
    tmp_path: Path,
) -> None:
    fresh = DatabaseManager(tmp_path / "fresh.db")
    assert fresh.init_db() == LATEST_REVISION
    fresh.close()
    old = DatabaseManager(tmp_path / "old.db")
    assert old.upgrade_to(1) == 1
    old.close()
    upgraded = DatabaseManager(tmp_path / "old.db")
    assert upgraded.init_db() == LATEST_REVISION
    upgraded.close()
    assert (tmp_path / "old.db.bak-r1").is_file()  # an upgrade still backs up first
    assert len(schema_of(tmp_path / "fresh.db")) > 20
    assert schema_of(tmp_path / "fresh.db") == schema_of(tmp_path / "old.db")


# Creates a library and dies (no cleanup, as a kill) when SQLite runs the last statement
# of the last revision: by then every earlier revision has been executed.
DIE_WHILE_CREATING = """
import os, sys
from hikaze_mm.database import DatabaseManager

db = DatabaseManager(sys.argv[1])
db.conn.set_trace_callback(lambda sql: os._exit(9) if sql.strip() == sys.argv[2] else None)
db.init_db()
"""


def test_a_library_killed_while_created_is_created_again_without_a_backup(
    tmp_path: Path,
) -> None:
    from tests.helpers import REPO, cli_env

    path = tmp_path / "hikaze_mm.db"
    marker = split_statements(REVISIONS[-1])[-1]
    assert all(marker not in split_statements(r) for r in REVISIONS[:-1])
    died = subprocess.run(
        [sys.executable, "-c", DIE_WHILE_CREATING, str(path), marker],
        env=cli_env(),
        cwd=str(REPO),
        timeout=60,
    )
    assert died.returncode == 9
    assert path.is_file()
    with sqlite3.connect(path) as conn:  # what the killed process committed: nothing
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0

    db = DatabaseManager(path)
    assert db.init_db() == LATEST_REVISION
    assert db.pending.add({"path": "/p"}) > 0
    db.close()
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == []
    reference = DatabaseManager(tmp_path / "reference.db")
    reference.init_db()
    reference.close()
    assert schema_of(path) == schema_of(tmp_path / "reference.db")


def test_revision_scripts_split_where_sqlite_says_a_statement_ends() -> None:
    script = """
    CREATE TABLE t (a TEXT DEFAULT 'x;y');
    CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN
        UPDATE t SET a = a || ';' WHERE rowid = new.rowid;
        SELECT 1;
    END;
    INSERT INTO t (a) VALUES ('semi;colon');
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with sqlite3.connect(":memory:") as conn:
        for statement in statements:
            conn.execute(statement)
        assert conn.execute("SELECT a FROM t").fetchone()[0] == "semi;colon;"
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE u (a TEXT)")


@pytest.mark.parametrize(
    "store, contract",
    [
        ("models", interfaces.ModelStoreContract),
        ("tags", interfaces.TagStoreContract),
        ("pending", interfaces.PendingStoreContract),
        ("hash_cache", interfaces.HashCacheStoreContract),
        ("sidecars", interfaces.SidecarStoreContract),
        ("state", interfaces.StateStoreContract),
        ("legacy_ledger", interfaces.LegacyLedgerStoreContract),
        ("listing", interfaces.ListingStoreContract),
        ("downloads", interfaces.DownloadStoreContract),
        (None, interfaces.Library),
    ],
)
def test_the_sqlite_stores_implement_the_contract(
    db: DatabaseManager, store: str | None, contract: type
) -> None:
    """Every method of the contract exists with the same parameters (names, kinds)."""
    impl = db if store is None else getattr(db, store)
    assert isinstance(impl, contract)
    methods = [
        name
        for name, value in vars(contract).items()
        if callable(value) and not name.startswith("_")
    ]
    assert methods
    for name in methods:
        wanted = inspect.signature(getattr(contract, name)).parameters
        given = inspect.signature(getattr(type(impl), name)).parameters
        assert [(p.name, p.kind) for p in given.values()] == [
            (p.name, p.kind) for p in wanted.values()
        ], name


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_REVISION + 1}")
    db = DatabaseManager(path)
    with pytest.raises(SchemaTooNewError):
        db.init_db()
    db.close()


def test_many_threads_write_at_once(db: DatabaseManager) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                sha = f"{n:02x}{i:062x}"
                db.models.upsert({"sha256": sha, "path": f"/t/{n}/{i}"}, tags=[f"t{i % 3}"])[0]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 150
    assert db.conn.execute("SELECT COUNT(*) FROM model_tags").fetchone()[0] == 150


def test_sqlite_errors_leave_the_package_as_storage_errors(tmp_path: Path) -> None:
    from hikaze_mm.database.errors import (
        StorageBusyError,
        StorageConflictError,
        StorageUnavailableError,
    )

    path = tmp_path / "lib.db"
    holder = DatabaseManager(path)
    holder.init_db()
    holder.models.upsert({"sha256": SHA_A, "path": "/m/a.safetensors", "name": "A"})
    other = DatabaseManager(path, busy_timeout_ms=50)
    try:
        with holder.transaction():  # the write lock, held
            with pytest.raises(StorageBusyError) as busy:
                other.state.set("k", {"v": 1})
            assert isinstance(busy.value.__cause__, sqlite3.OperationalError)
            with pytest.raises(StorageBusyError), other.transaction():
                pass
            # Compacting the text index is left for later, not an error, while busy.
            assert other.listing.tidy_search_index(max_segments=0) is False
        other.state.set("k", {"v": 1})  # released: the same write goes through
        assert other.listing.tidy_search_index(max_segments=0) is True
        assert holder.state.get("k") == {"v": 1}
        holder.tags.create("t")
        with pytest.raises(StorageConflictError):  # the driver's clash, not a pre-check
            holder.tags.insert("T", None, None, id=99)
    finally:
        other.close()
        holder.close()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all, " * 100)
    reader = DatabaseManager(garbage, read_only=True)
    with pytest.raises(StorageUnavailableError, match="not a library database"):
        reader.check_readable()
    reader.close()
