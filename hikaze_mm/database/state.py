"""StateStore: small JSON documents by key (``migration_state``): run states, journals."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import now_ms
from hikaze_mm.meta import parse_meta

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager


@translate_errors()
class StateStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def hold(self, key: str) -> None:
        """Inside a unit of work, hold ``key`` until it ends: a writer that computes the
        document before writing it does so in the order the units commit."""
        self.db.lock_key(f"migration_state:{key}")

    def get(self, key: str) -> dict[str, Any] | None:
        """The document, or None. Read inside a unit of work, the key is held until it
        ends (it is read to be changed: a read-modify-write of a journal)."""
        self.hold(key)
        row = self.db.conn.execute(
            "SELECT value_json FROM migration_state WHERE key = ?", (key,)
        ).fetchone()
        return parse_meta(row[0]) if row else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO migration_state (key, value_json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, "
                "updated_at = excluded.updated_at",
                (key, json.dumps(value, sort_keys=True), now_ms()),
            )
