"""DownloadStore: the ``downloads`` table, the download queue and its history.

A download record is a dict of its columns, with ``request_json`` parsed into ``request``
and ``meta_json`` into ``meta``. ``list()`` puts the queue (queued, running, paused,
verifying) first, oldest first (the order they run in), then the history, newest first.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.errors import StorageNotFoundError
from hikaze_mm.database.schema import DOWNLOAD_STATUSES, DOWNLOAD_UNFINISHED
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import now_ms
from hikaze_mm.errors import ValidationError
from hikaze_mm.meta import parse_meta

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# The columns ``update`` may set (``id``, ``created_at`` and ``source`` never change).
DOWNLOAD_FIELDS = (
    "status",
    "type",
    "folder",
    "url",
    "file_name",
    "expected_sha256",
    "sha256",
    "path",
    "part_path",
    "bytes_done",
    "bytes_total",
    "error",
    "request",
    "meta",
)
_UNFINISHED = ",".join(f"'{s}'" for s in DOWNLOAD_UNFINISHED)


def _record(row: sqlite3.Row) -> dict[str, Any]:
    record = {k: row[k] for k in row.keys() if k not in ("request_json", "meta_json")}
    record["request"] = parse_meta(row["request_json"])
    record["meta"] = parse_meta(row["meta_json"])
    return record


def _column_values(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(DOWNLOAD_FIELDS)
    if unknown:
        raise ValidationError(f"unknown download fields: {', '.join(sorted(unknown))}")
    if "status" in fields and fields["status"] not in DOWNLOAD_STATUSES:
        raise ValidationError(f"unknown download status {fields['status']!r}")
    values = {k: v for k, v in fields.items() if k not in ("request", "meta")}
    for key in ("request", "meta"):
        if key in fields:
            values[f"{key}_json"] = json.dumps(fields[key] or {}, sort_keys=True)
    return values


@translate_errors()
class DownloadStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def add(self, source: str, **fields: Any) -> int:
        """A new download of ``source`` (status ``queued`` unless given); returns its id."""
        if not isinstance(source, str) or not source:
            raise ValidationError("a download needs its source")
        values = {"status": "queued", **_column_values(fields)}
        now = now_ms()
        values.update(source=source, created_at=now, updated_at=now)
        with self.db.transaction() as conn:
            row = conn.execute(
                f"INSERT INTO downloads ({', '.join(values)}) "
                f"VALUES ({', '.join('?' * len(values))}) RETURNING id",
                list(values.values()),
            ).fetchone()
        return int(row[0])

    def get(self, download_id: int) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM downloads WHERE id = ?", (download_id,)
        ).fetchone()
        return _record(row) if row else None

    def list(self, limit: int = 500) -> list[dict[str, Any]]:
        """The queue (oldest first), then the history (newest first), at most ``limit``."""
        rows = self.db.conn.execute(
            f"SELECT * FROM downloads ORDER BY status IN ({_UNFINISHED}) DESC, "
            f"CASE WHEN status IN ({_UNFINISHED}) THEN id ELSE -id END LIMIT ?",
            (limit,),
        ).fetchall()
        return [_record(row) for row in rows]

    def unfinished(self) -> list[dict[str, Any]]:
        """The downloads not over (queued, running, paused, verifying), oldest first."""
        rows = self.db.conn.execute(
            f"SELECT * FROM downloads WHERE status IN ({_UNFINISHED}) ORDER BY id"
        ).fetchall()
        return [_record(row) for row in rows]

    def update(self, download_id: int, **fields: Any) -> dict[str, Any]:
        """Set these fields (``DOWNLOAD_FIELDS``); the record, or StorageNotFoundError."""
        values = _column_values(fields)
        values["updated_at"] = now_ms()
        with self.db.transaction() as conn:
            cur = conn.execute(
                f"UPDATE downloads SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                [*values.values(), download_id],
            )
            if cur.rowcount == 0:
                raise StorageNotFoundError(f"no download {download_id}")
        record = self.get(download_id)
        assert record is not None
        return record

    def delete(self, download_id: int) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM downloads WHERE id = ?", (download_id,))
        return cur.rowcount > 0
