"""DatabaseManager against real SQLite files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from hikaze_mm.database import LATEST_REVISION, DatabaseManager, SchemaTooNewError
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
    rec = db.add_model(
        {
            "sha256": SHA_B,
            "path": "/m/x.safetensors",
            "name": "X",
            "type": "Lora",
            "size_bytes": 10,
            "meta": {"description": "d"},
        },
        tags=["style", "Style"],
    )
    assert rec["sha256"] == "b" * 64
    assert rec["type"] == "loras"
    assert rec["meta"] == {"description": "d"}
    assert [t["name"] for t in rec["tags"]] == ["style"]
    assert db.get_model("B" * 64)["name"] == "X"
    assert db.get_model_by_path("/m/x.safetensors")["sha256"] == "b" * 64
    assert db.get_model_by_path("/nowhere") is None
    assert db.untag_model(SHA_B, "STYLE") is True
    assert db.get_model(SHA_B)["tags"] == []
    assert db.delete_model(SHA_B) is True
    assert db.get_model(SHA_B) is None
    assert db.delete_model(SHA_B) is False


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, "a" * 63, "a" * 65, None, 12])
def test_invalid_sha_is_a_value_error(db: DatabaseManager, bad: object) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        db.add_model({"sha256": bad, "path": "/p"})
    with pytest.raises(ValueError):
        db.get_model(bad)  # type: ignore[arg-type]


def test_collision_updates_or_merges_never_fails(db: DatabaseManager) -> None:
    db.add_model(
        {
            "sha256": SHA_A,
            "path": "/a",
            "name": "first",
            "base": None,
            "meta": {"keep": 1, "list": [1, 2], "desc": ""},
        },
        tags=["one"],
    )
    rec, action = db.upsert_model(
        {"sha256": SHA_A, "path": "/b", "name": "second", "meta": {"list": [2, 3], "new": True}},
        tags=["two"],
    )
    assert action == "updated"
    assert (rec["path"], rec["name"]) == ("/b", "second")
    assert rec["meta"] == {"keep": 1, "list": [2, 3, 1], "new": True, "desc": ""}
    assert {t["name"] for t in rec["tags"]} == {"one", "two"}
    rec, action = db.upsert_model(
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
    db.add_model({"sha256": SHA_A, "path": "/a"})
    # The tag id does not exist: the model's insert and its first tag must roll back too.
    with pytest.raises(NotFoundError):
        db.upsert_model({"sha256": "c" * 64, "path": "/c"}, tags=["fresh", 999])
    assert db.get_model("c" * 64) is None
    assert db.get_tag("fresh") is None
    with pytest.raises(ValidationError):
        db.upsert_model({"sha256": SHA_A, "path": "/a2", "size_bytes": "big"})
    assert db.get_model(SHA_A)["path"] == "/a"


def test_nested_transaction_rolls_back_inner_only(db: DatabaseManager) -> None:
    with db.transaction():
        db.add_tag("outer")
        with pytest.raises(RuntimeError), db.transaction():
            db.add_tag("inner")
            raise RuntimeError("boom")
    assert db.get_tag("outer") is not None
    assert db.get_tag("inner") is None


def test_tags_unique_ignoring_case_and_color_rules(db: DatabaseManager) -> None:
    tag = db.create_tag("  Anime  ", "#AABBCC")
    assert tag["name"] == "Anime" and tag["color"] == "#aabbcc"
    with pytest.raises(ConflictError):
        db.create_tag("anime")
    assert db.add_tag("ANIME")["id"] == tag["id"]
    with pytest.raises(ValidationError):
        db.create_tag("x", "red")
    with pytest.raises(ValidationError):
        db.create_tag("   ")
    other = db.create_tag("other")
    with pytest.raises(ConflictError):
        db.update_tag(other["id"], name="anime")
    assert db.update_tag(other["id"], color="#000000")["color"] == "#000000"


def test_deleting_a_tag_or_model_cascades(db: DatabaseManager) -> None:
    db.add_model({"sha256": SHA_A, "path": "/a"}, tags=["t"])
    pid = db.add_pending_import({"path": "/p", "name": "p"}, tags=["t"])
    tag = db.get_tag("t")
    assert [t["model_count"] for t in db.list_tags()] == [1]
    db.delete_tag(tag["id"])
    assert db.get_model(SHA_A)["tags"] == []
    assert db.get_pending(pid)["tags"] == []
    db.tag_model(SHA_A, "u")
    db.delete_model(SHA_A)
    assert db.conn.execute("SELECT COUNT(*) FROM model_tags").fetchone()[0] == 0


def test_pending_imports(db: DatabaseManager) -> None:
    pid = db.add_pending_import(
        {"id": 42, "path": "/m/p.ckpt", "name": "p", "type": "checkpoint", "meta": {"a": 1}},
        tags=["x"],
    )
    assert pid == 42
    rec = db.get_pending(42)
    assert rec["type"] == "checkpoints" and rec["status"] == "new" and rec["meta"] == {"a": 1}
    assert [t["name"] for t in rec["tags"]] == ["x"]
    with pytest.raises(ConflictError):
        db.add_pending_import({"path": "/m/p.ckpt"})
    db.update_pending(42, status="error", error="missing file")
    assert db.get_pending_imports(status="error")[0]["error"] == "missing file"
    assert db.count_pending() == 1
    assert db.pending_counts() == {"new": 0, "hashing": 0, "error": 1, "conflict": 0}
    with pytest.raises(ValidationError):
        db.update_pending(42, status="weird")
    assert db.remove_pending_import(42) is True
    assert db.get_pending(42) is None
    assert db.conn.execute("SELECT COUNT(*) FROM pending_model_tags").fetchone()[0] == 0


def test_state_and_hash_cache(db: DatabaseManager) -> None:
    assert db.get_state("stage2") is None
    db.set_state("stage2", {"status": "RUNNING", "processed": 3})
    assert db.get_state("stage2") == {"status": "RUNNING", "processed": 3}
    db.store_hash("/f", 10, 123, 7, SHA_B)
    assert db.cached_hash("/f", 10, 123, 7) == "b" * 64
    assert db.cached_hash("/f", 10, 124, 7) is None


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
    rec = db.get_model(SHA_A)
    assert rec["name"] == "Old" and rec["missing"] is False
    assert [t["name"] for t in rec["tags"]] == ["kept"]
    assert db.add_pending_import({"path": "/new"}) > 0
    db.close()


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
                db.add_model({"sha256": sha, "path": f"/t/{n}/{i}"}, tags=[f"t{i % 3}"])
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
