"""DatabaseManager: the only code that talks SQL to the v3 library.

One instance per database file, passed to whoever needs it. Each thread gets its own
SQLite connection (WAL, foreign keys on, busy timeout), so the server's executor threads
and the background worker can use one manager at once. Every method that changes more
than one row runs in one transaction; ``transaction()`` nests with savepoints, so a
service can compose several calls into one atomic change.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hikaze_mm.database.schema import LATEST_REVISION, PENDING_STATUSES, REVISIONS
from hikaze_mm.errors import ConflictError, NotFoundError, ValidationError
from hikaze_mm.meta import dump_meta, merge_meta_json, parse_meta
from hikaze_mm.model_types import canonical_type

_SHA_RE = re.compile(r"[0-9a-fA-F]{64}")
_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")

MODEL_COLUMNS = (
    "sha256",
    "path",
    "name",
    "type",
    "base",
    "size_bytes",
    "created_at",
    "last_used_at",
    "meta_json",
    "missing",
)
# Columns a caller may set on a model besides its sha256.
MODEL_DATA_COLUMNS = ("path", "name", "type", "base", "size_bytes", "created_at", "last_used_at")
PENDING_COLUMNS = (
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
    "source",
    "updated_at",
)
PENDING_DATA_COLUMNS = ("path", "name", "type", "base", "size_bytes", "created_at")

TagRef = int | str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def normalize_sha256(value: object) -> str:
    """Return the lowercase hash, or raise ValueError for anything not 64 hex characters."""
    if not isinstance(value, str) or not _SHA_RE.fullmatch(value):
        raise ValidationError(f"not a SHA-256 (64 hex characters): {value!r}")
    return value.lower()


def normalize_color(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _COLOR_RE.fullmatch(value.strip()):
        raise ValidationError(f"color must be #RRGGBB, not {value!r}")
    return value.strip().lower()


def normalize_tag_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("a tag name must be a non-empty string")
    name = " ".join(value.split())
    if len(name) > 100:
        raise ValidationError("a tag name is at most 100 characters")
    return name


def _records(
    rows: Sequence[sqlite3.Row], tags: dict[Any, list[dict[str, Any]]], key: str
) -> list[dict[str, Any]]:
    """Rows as dicts: ``meta_json`` parsed into ``meta``, and each row's ``tags``."""
    records = []
    for row in rows:
        record = {k: row[k] for k in row.keys() if k != "meta_json"}
        record["meta"] = parse_meta(row["meta_json"])
        record["tags"] = tags.get(row[key], [])
        records.append(record)
    return records


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer release than this one."""


class DatabaseManager:
    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 15_000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    # ----------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # used by one thread; closed by close() from any
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._all_lock:
            self._all.append(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit outside ``transaction()``)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.depth = 0
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested calls become savepoints of the outer one."""
        conn = self.conn
        depth = self._local.depth
        savepoint = f"sp{depth}"
        conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException:
            self._local.depth = depth
            if depth == 0:
                conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
            raise
        self._local.depth = depth
        conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # ----------------------------------------------------------------- schema
    def init_db(self) -> int:
        """Create the database or upgrade it to the latest revision; return that revision."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.conn
        conn.execute("PRAGMA journal_mode = WAL")
        return self.upgrade_to(LATEST_REVISION)

    def upgrade_to(self, target: int) -> int:
        """Apply the missing revisions up to ``target``, each in its own transaction."""
        current = self.schema_version()
        if current > LATEST_REVISION:
            raise SchemaTooNewError(
                f"{self.path} has schema revision {current}; this release knows up to "
                f"{LATEST_REVISION}. Upgrade Hikaze Model Manager."
            )
        for revision in range(current + 1, target + 1):
            with self.transaction() as conn:
                for statement in REVISIONS[revision - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {revision}")
        return self.schema_version()

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    # ----------------------------------------------------------------- models
    def get_model(self, sha256: str) -> dict[str, Any] | None:
        sha = normalize_sha256(sha256)
        row = self.conn.execute("SELECT * FROM models WHERE sha256 = ?", (sha,)).fetchone()
        return self._model_records([row])[0] if row else None

    def get_model_by_path(self, path: str | Path) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM models WHERE path = ? ORDER BY missing LIMIT 1", (str(path),)
        ).fetchone()
        return self._model_records([row])[0] if row else None

    def get_models(self, sha256s: Sequence[str]) -> list[dict[str, Any]]:
        """Several models in two queries (rows, then all their tags), in the given order."""
        shas = [normalize_sha256(s) for s in sha256s]
        if not shas:
            return []
        marks = ",".join("?" * len(shas))
        rows = self.conn.execute(f"SELECT * FROM models WHERE sha256 IN ({marks})", shas)
        by_sha = {r["sha256"]: r for r in rows}
        return self._model_records([by_sha[s] for s in shas if s in by_sha])

    def _model_records(self, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
        records = _records(rows, self.tags_for_models([r["sha256"] for r in rows]), "sha256")
        for record in records:
            record["missing"] = bool(record["missing"])
        return records

    def tags_for_models(self, sha256s: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return self._tags_for("model_tags", "model_hash", list(sha256s))

    def _tags_for(self, table: str, key: str, ids: list[Any]) -> dict[Any, list[dict[str, Any]]]:
        result: dict[Any, list[dict[str, Any]]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT l.{key} AS owner, t.id, t.name, t.color FROM {table} l "
                f"JOIN tags t ON t.id = l.tag_id WHERE l.{key} IN ({marks}) "
                "ORDER BY t.name COLLATE NOCASE",
                chunk,
            )
            for row in rows:
                result.setdefault(row["owner"], []).append(
                    {"id": row["id"], "name": row["name"], "color": row["color"]}
                )
        return result

    def upsert_model(
        self,
        data: dict[str, Any],
        tags: Iterable[TagRef] = (),
        *,
        on_conflict: str = "update",
    ) -> tuple[dict[str, Any], str]:
        """Insert a model, or update the one with the same sha256; never fails on a collision.

        ``data`` holds ``sha256`` and any of MODEL_DATA_COLUMNS, plus ``meta`` (a dict).
        On a collision, ``on_conflict="update"`` writes every given non-null column and
        merges meta with the new values winning; ``"merge"`` fills only the existing
        empty columns and merges meta with the existing values winning
        (see ``merge_meta_json``). Tags are added to the model's tags either way.
        Returns ``(record, action)`` with action ``created``, ``updated`` or ``merged``.
        """
        if on_conflict not in ("update", "merge"):
            raise ValidationError(f"unknown on_conflict {on_conflict!r}")
        sha = normalize_sha256(data.get("sha256"))
        values = self._model_values(data)
        incoming_meta = data.get("meta") or {}
        if not isinstance(incoming_meta, dict):
            raise ValidationError("meta must be a JSON object")
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM models WHERE sha256 = ?", (sha,)).fetchone()
            if row is None:
                if not values.get("path"):
                    raise ValidationError("a new model needs a path")
                values.setdefault("created_at", now_ms())
                values["type"] = values.get("type") or "other"
                columns = ["sha256", *values, "meta_json"]
                conn.execute(
                    f"INSERT INTO models ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    [sha, *values.values(), dump_meta(incoming_meta)],
                )
                action = "created"
            else:
                existing_meta = parse_meta(row["meta_json"])
                if on_conflict == "update":
                    changes = {k: v for k, v in values.items() if v is not None}
                    meta = merge_meta_json(incoming_meta, existing_meta)
                    action = "updated"
                else:
                    changes = {
                        k: v for k, v in values.items() if v is not None and row[k] in (None, "")
                    }
                    meta = merge_meta_json(existing_meta, incoming_meta)
                    action = "merged"
                changes["meta_json"] = dump_meta(meta)
                if "path" in changes:
                    changes["missing"] = 0
                assignments = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(
                    f"UPDATE models SET {assignments} WHERE sha256 = ?", [*changes.values(), sha]
                )
            for tag in tags:
                self.tag_model(sha, tag)
            record = self.get_model(sha)
        assert record is not None
        return record, action

    def add_model(self, data: dict[str, Any], tags: Iterable[TagRef] = ()) -> dict[str, Any]:
        """Insert or update a model (see ``upsert_model``); returns the stored record."""
        return self.upsert_model(data, tags)[0]

    @staticmethod
    def _model_values(data: dict[str, Any]) -> dict[str, Any]:
        values = {k: data[k] for k in MODEL_DATA_COLUMNS if k in data}
        if "path" in values and values["path"] is not None:
            values["path"] = str(values["path"])
        if values.get("type") is not None:
            values["type"] = canonical_type(values["type"])
        for key in ("size_bytes", "created_at", "last_used_at"):
            value = values.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValidationError(f"{key} must be an integer")
        return values

    def update_model(self, sha256: str, **fields: Any) -> dict[str, Any]:
        """Set columns of an existing model (None clears a column); ``meta`` replaces meta."""
        sha = normalize_sha256(sha256)
        changes = self._model_values(fields)
        if "meta" in fields:
            if not isinstance(fields["meta"], dict):
                raise ValidationError("meta must be a JSON object")
            changes["meta_json"] = dump_meta(fields["meta"])
        if "missing" in fields:
            changes["missing"] = 1 if fields["missing"] else 0
        with self.transaction() as conn:
            if changes:
                assignments = ", ".join(f"{k} = ?" for k in changes)
                cur = conn.execute(
                    f"UPDATE models SET {assignments} WHERE sha256 = ?", [*changes.values(), sha]
                )
                if cur.rowcount == 0:
                    raise NotFoundError(f"no model {sha}")
            record = self.get_model(sha)
        if record is None:
            raise NotFoundError(f"no model {sha}")
        return record

    def delete_model(self, sha256: str) -> bool:
        sha = normalize_sha256(sha256)
        with self.transaction() as conn:
            return conn.execute("DELETE FROM models WHERE sha256 = ?", (sha,)).rowcount > 0

    # ----------------------------------------------------------------- tags
    def create_tag(self, name: str, color: str | None = None) -> dict[str, Any]:
        """Create a tag; a name already taken (in any case) is a ConflictError."""
        clean = normalize_tag_name(name)
        hex_color = normalize_color(color)
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tags WHERE name = ?", (clean,)).fetchone():
                raise ConflictError(f"a tag named {clean!r} exists already")
            cur = conn.execute(
                "INSERT INTO tags (name, color, created_at) VALUES (?, ?, ?)",
                (clean, hex_color, now_ms()),
            )
            tag_id = cur.lastrowid
        tag = self.get_tag(int(tag_id))  # type: ignore[arg-type]
        assert tag is not None
        return tag

    def add_tag(self, name: str, color: str | None = None) -> dict[str, Any]:
        """Get the tag with this name (any case), creating it if needed."""
        clean = normalize_tag_name(name)
        hex_color = normalize_color(color)
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO tags (name, color, created_at) VALUES (?, ?, ?)",
                (clean, hex_color, now_ms()),
            )
            tag = self.get_tag(clean)
        assert tag is not None
        return tag

    def get_tag(self, tag: TagRef) -> dict[str, Any] | None:
        if isinstance(tag, int) and not isinstance(tag, bool):
            row = self.conn.execute("SELECT * FROM tags WHERE id = ?", (tag,)).fetchone()
        elif isinstance(tag, str):
            row = self.conn.execute(
                "SELECT * FROM tags WHERE name = ?", (" ".join(tag.split()),)
            ).fetchone()
        else:
            raise ValidationError(f"a tag is named by its id or name, not {tag!r}")
        return dict(row) if row else None

    def list_tags(self) -> list[dict[str, Any]]:
        """All tags, with the number of models and pending models that carry each."""
        rows = self.conn.execute(
            "SELECT t.*, "
            "(SELECT COUNT(*) FROM model_tags mt WHERE mt.tag_id = t.id) AS model_count, "
            "(SELECT COUNT(*) FROM pending_model_tags pt WHERE pt.tag_id = t.id) AS pending_count "
            "FROM tags t ORDER BY t.name COLLATE NOCASE"
        )
        return [dict(r) for r in rows]

    def update_tag(
        self, tag_id: int, *, name: str | None = None, color: str | object | None = ...
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = normalize_tag_name(name)
        if color is not ...:
            changes["color"] = normalize_color(color)
        with self.transaction() as conn:
            if self.get_tag(tag_id) is None:
                raise NotFoundError(f"no tag {tag_id}")
            if "name" in changes:
                clash = conn.execute(
                    "SELECT id FROM tags WHERE name = ? AND id != ?", (changes["name"], tag_id)
                ).fetchone()
                if clash:
                    raise ConflictError(f"a tag named {changes['name']!r} exists already")
            if changes:
                assignments = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(
                    f"UPDATE tags SET {assignments} WHERE id = ?", [*changes.values(), tag_id]
                )
            tag = self.get_tag(tag_id)
        assert tag is not None
        return tag

    def delete_tag(self, tag_id: int) -> bool:
        with self.transaction() as conn:
            return conn.execute("DELETE FROM tags WHERE id = ?", (tag_id,)).rowcount > 0

    def _tag_id(self, tag: TagRef, *, create: bool) -> int:
        if isinstance(tag, str) and create:
            return int(self.add_tag(tag)["id"])
        found = self.get_tag(tag)
        if found is None:
            raise NotFoundError(f"no tag {tag!r}")
        return int(found["id"])

    def tag_model(self, sha256: str, tag: TagRef) -> dict[str, Any]:
        """Attach a tag (by id, or by name, created if new) to a model; returns the tag."""
        sha = normalize_sha256(sha256)
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM models WHERE sha256 = ?", (sha,)).fetchone():
                raise NotFoundError(f"no model {sha}")
            tag_id = self._tag_id(tag, create=True)
            conn.execute(
                "INSERT OR IGNORE INTO model_tags (model_hash, tag_id) VALUES (?, ?)", (sha, tag_id)
            )
        found = self.get_tag(tag_id)
        assert found is not None
        return found

    def untag_model(self, sha256: str, tag: TagRef) -> bool:
        sha = normalize_sha256(sha256)
        found = self.get_tag(tag)
        if found is None:
            return False
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM model_tags WHERE model_hash = ? AND tag_id = ?", (sha, found["id"])
            )
            return cur.rowcount > 0

    # ----------------------------------------------------------------- pending imports
    def add_pending_import(self, data: dict[str, Any], tags: Iterable[TagRef] = ()) -> int:
        """Queue a model whose hash is not known yet; returns its id.

        ``data`` may carry ``id`` (Stage 1 keeps the legacy id). A path or id already
        pending is a ConflictError.
        """
        values: dict[str, Any] = {k: data[k] for k in PENDING_DATA_COLUMNS if k in data}
        if not values.get("path"):
            raise ValidationError("a pending import needs a path")
        values["path"] = str(values["path"])
        values["type"] = canonical_type(values.get("type"))
        values.setdefault("created_at", now_ms())
        if data.get("id") is not None:
            values["id"] = int(data["id"])
        values["source"] = data.get("source", "legacy")
        values["status"] = data.get("status", "new")
        if values["status"] not in PENDING_STATUSES:
            raise ValidationError(f"unknown pending status {values['status']!r}")
        values["meta_json"] = dump_meta(data.get("meta") or {})
        values["updated_at"] = now_ms()
        with self.transaction() as conn:
            try:
                cur = conn.execute(
                    f"INSERT INTO pending_import ({', '.join(values)}) "
                    f"VALUES ({', '.join('?' * len(values))})",
                    list(values.values()),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"already pending: {values['path']} ({exc})") from exc
            pending_id = int(cur.lastrowid)  # type: ignore[arg-type]
            for tag in tags:
                self.tag_pending(pending_id, tag)
        return pending_id

    def tag_pending(self, pending_id: int, tag: TagRef) -> None:
        with self.transaction() as conn:
            tag_id = self._tag_id(tag, create=True)
            conn.execute(
                "INSERT OR IGNORE INTO pending_model_tags (model_id, tag_id) VALUES (?, ?)",
                (pending_id, tag_id),
            )

    def get_pending(self, pending_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM pending_import WHERE id = ?", (pending_id,)
        ).fetchone()
        return self._pending_records([row])[0] if row else None

    def get_pending_by_path(self, path: str | Path) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM pending_import WHERE path = ?", (str(path),)
        ).fetchone()
        return self._pending_records([row])[0] if row else None

    def get_pending_imports(
        self, *, status: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM pending_import"
        args: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        args += [-1 if limit is None else limit, offset]
        return self._pending_records(self.conn.execute(sql, args).fetchall())

    def count_pending(self, status: str | None = None) -> int:
        if status is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM pending_import").fetchone()[0])
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM pending_import WHERE status = ?", (status,)
            ).fetchone()[0]
        )

    def pending_counts(self) -> dict[str, int]:
        """The number of pending models in each status (every status, zeros included)."""
        counts = dict.fromkeys(PENDING_STATUSES, 0)
        rows = self.conn.execute("SELECT status, COUNT(*) FROM pending_import GROUP BY status")
        counts.update({status: int(n) for status, n in rows})
        return counts

    def _pending_records(self, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
        tags = self._tags_for("pending_model_tags", "model_id", [r["id"] for r in rows])
        return _records(rows, tags, "id")

    def update_pending(self, pending_id: int, **fields: Any) -> None:
        """Set status, error, sha256 or data columns of a pending row."""
        allowed = {*PENDING_DATA_COLUMNS, "sha256", "status", "error"}
        unknown = set(fields) - allowed - {"meta"}
        if unknown:
            raise ValidationError(f"unknown pending fields: {sorted(unknown)}")
        changes = {k: v for k, v in fields.items() if k in allowed}
        if "status" in changes and changes["status"] not in PENDING_STATUSES:
            raise ValidationError(f"unknown pending status {changes['status']!r}")
        if changes.get("sha256") is not None:
            changes["sha256"] = normalize_sha256(changes["sha256"])
        if "meta" in fields:
            changes["meta_json"] = dump_meta(fields["meta"])
        changes["updated_at"] = now_ms()
        assignments = ", ".join(f"{k} = ?" for k in changes)
        with self.transaction() as conn:
            cur = conn.execute(
                f"UPDATE pending_import SET {assignments} WHERE id = ?",
                [*changes.values(), pending_id],
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no pending import {pending_id}")

    def remove_pending_import(self, pending_id: int) -> bool:
        with self.transaction() as conn:
            cur = conn.execute("DELETE FROM pending_import WHERE id = ?", (pending_id,))
            return cur.rowcount > 0

    # ----------------------------------------------------------------- persistent state
    def get_state(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT value_json FROM migration_state WHERE key = ?", (key,)
        ).fetchone()
        return parse_meta(row[0]) if row else None

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO migration_state (key, value_json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, "
                "updated_at = excluded.updated_at",
                (key, json.dumps(value, sort_keys=True), now_ms()),
            )

    # ----------------------------------------------------------------- hash cache
    def cached_hash(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        row = self.conn.execute(
            "SELECT sha256 FROM hash_cache WHERE path = ? AND size_bytes = ? AND mtime_ns = ? "
            "AND inode = ?",
            (path, size, mtime_ns, inode),
        ).fetchone()
        return row[0] if row else None

    def store_hash(self, path: str, size: int, mtime_ns: int, inode: int, sha256: str) -> None:
        sha = normalize_sha256(sha256)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO hash_cache (path, size_bytes, mtime_ns, inode, sha256, hashed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns, "
                "inode = excluded.inode, sha256 = excluded.sha256, hashed_at = excluded.hashed_at",
                (path, size, mtime_ns, inode, sha, now_ms()),
            )

    def forget_hash(self, path: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM hash_cache WHERE path = ?", (path,))
