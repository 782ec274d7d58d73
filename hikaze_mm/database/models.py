"""ModelStore: the ``models`` table (the library), keyed by SHA-256."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.tags import MODEL_LINKS
from hikaze_mm.database.values import TagRef, chunks, normalize_sha256, now_ms, records
from hikaze_mm.errors import NotFoundError, ValidationError
from hikaze_mm.meta import dump_meta, merge_meta_json, parse_meta
from hikaze_mm.model_types import canonical_type

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# Columns a caller may set on a model besides its sha256.
MODEL_DATA_COLUMNS = ("path", "name", "type", "base", "size_bytes", "created_at", "last_used_at")


def model_values(data: dict[str, Any]) -> dict[str, Any]:
    """The settable columns of ``data``, checked (path as text, canonical type, ints)."""
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


class ModelStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    # ----------------------------------------------------------------- reading
    def get(self, sha256: str) -> dict[str, Any] | None:
        """The full record (columns, ``meta``, ``tags``, ``missing`` as a bool), or None."""
        sha = normalize_sha256(sha256)
        row = self.db.conn.execute("SELECT * FROM models WHERE sha256 = ?", (sha,)).fetchone()
        return self._records([row])[0] if row else None

    def get_by_path(self, path: str | Path) -> dict[str, Any] | None:
        """The model whose primary path is ``path`` (a present one before a missing one)."""
        row = self.db.conn.execute(
            "SELECT * FROM models WHERE path = ? ORDER BY missing LIMIT 1", (str(path),)
        ).fetchone()
        return self._records([row])[0] if row else None

    def exists(self, sha256: str) -> bool:
        sha = normalize_sha256(sha256)
        row = self.db.conn.execute("SELECT 1 FROM models WHERE sha256 = ?", (sha,)).fetchone()
        return row is not None

    def _records(self, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
        tags = self.db.tags.for_models([r["sha256"] for r in rows])
        result = records(rows, tags, "sha256")
        for record in result:
            record["missing"] = bool(record["missing"])
        return result

    def paths(self, *, missing: bool) -> list[tuple[str, str]]:
        """``(path, sha256)`` of every model flagged missing (or of every other model).

        Two narrow columns from the covering listing index, for a scan's bulk load.
        """
        return self.db.tuples("SELECT path, sha256 FROM models WHERE missing = ?", (int(missing),))

    def sizes(self, sha256s: Sequence[str]) -> dict[str, int | None]:
        """``size_bytes`` of the given models, one query per 500."""
        sizes: dict[str, int | None] = {}
        for chunk in chunks(sha256s):
            marks = ",".join("?" * len(chunk))
            sizes.update(
                self.db.tuples(
                    f"SELECT sha256, size_bytes FROM models WHERE sha256 IN ({marks})", chunk
                )
            )
        return sizes

    # ----------------------------------------------------------------- writing
    def upsert(
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
        (see ``merge_meta_json``). Tags (ids, or names created when new) are added to
        the model's tags either way. Returns ``(record, action)`` with action
        ``created``, ``updated`` or ``merged``.
        """
        if on_conflict not in ("update", "merge"):
            raise ValidationError(f"unknown on_conflict {on_conflict!r}")
        sha = normalize_sha256(data.get("sha256"))
        values = model_values(data)
        incoming_meta = data.get("meta") or {}
        if not isinstance(incoming_meta, dict):
            raise ValidationError("meta must be a JSON object")
        with self.db.transaction() as conn:
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
                self._set(sha, changes)
            self.db.tags.link(MODEL_LINKS, sha, self.db.tags.resolve(tags, create=True))
            record = self.get(sha)
        assert record is not None
        return record, action

    def _set(self, sha: str, changes: dict[str, Any]) -> bool:
        assignments = ", ".join(f"{k} = ?" for k in changes)
        cur = self.db.conn.execute(
            f"UPDATE models SET {assignments} WHERE sha256 = ?", [*changes.values(), sha]
        )
        return cur.rowcount > 0

    def update(self, sha256: str, **fields: Any) -> dict[str, Any]:
        """Set columns of an existing model (None clears a column); ``meta`` replaces meta."""
        sha = normalize_sha256(sha256)
        changes = model_values(fields)
        if "meta" in fields:
            if not isinstance(fields["meta"], dict):
                raise ValidationError("meta must be a JSON object")
            changes["meta_json"] = dump_meta(fields["meta"])
        if "missing" in fields:
            changes["missing"] = 1 if fields["missing"] else 0
        with self.db.transaction():
            if changes and not self._set(sha, changes):
                raise NotFoundError(f"no model {sha}")
            record = self.get(sha)
        if record is None:
            raise NotFoundError(f"no model {sha}")
        return record

    def mark_used(self, sha256: str) -> dict[str, Any]:
        """Stamp ``last_used_at`` and count one more use; the record after."""
        sha = normalize_sha256(sha256)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE models SET last_used_at = ?, use_count = use_count + 1 WHERE sha256 = ?",
                (now_ms(), sha),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no model {sha}")
            record = self.get(sha)
        assert record is not None
        return record

    def relink(self, sha256: str, path: str) -> bool:
        """Point a model at a new file (and clear ``missing``); False if it is gone. One UPDATE."""
        with self.db.transaction():
            return self._set(normalize_sha256(sha256), {"path": path, "missing": 0})

    def set_missing(self, sha256s: Sequence[str], missing: bool) -> int:
        """Flag (or unflag) models as missing in one transaction; returns rows changed."""
        if not sha256s:
            return 0
        flag = 1 if missing else 0
        with self.db.transaction() as conn:
            cur = conn.executemany(
                "UPDATE models SET missing = ? WHERE sha256 = ? AND missing != ?",
                [(flag, sha, flag) for sha in sha256s],
            )
            return cur.rowcount

    def add_tags(self, sha256: str, tags: Iterable[TagRef]) -> list[int]:
        """Attach tags (ids, or names created when new); returns their ids."""
        sha = normalize_sha256(sha256)
        with self.db.transaction():
            if not self.exists(sha):
                raise NotFoundError(f"no model {sha}")
            ids = self.db.tags.resolve(tags, create=True)
            self.db.tags.link(MODEL_LINKS, sha, ids)
        return ids

    def remove_tags(self, sha256: str, tags: Iterable[TagRef]) -> int:
        """Detach tags (ids or names; unknown ones are ignored); returns how many went."""
        sha = normalize_sha256(sha256)
        ids = self.db.tags.resolve(tags, create=False, missing_ok=True)
        return self.db.tags.unlink(MODEL_LINKS, sha, ids)

    def delete(self, sha256: str) -> bool:
        sha = normalize_sha256(sha256)
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM models WHERE sha256 = ?", (sha,)).rowcount > 0
