"""PendingStore: the ``pending_import`` table, models whose hash is not known yet."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.errors import StorageConflictError, StorageNotFoundError
from hikaze_mm.database.schema import PENDING_STATUSES
from hikaze_mm.database.sql import chunks, records
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.tags import PENDING_LINKS
from hikaze_mm.database.values import TagRef, normalize_sha256, now_ms
from hikaze_mm.errors import ValidationError
from hikaze_mm.meta import dump_meta
from hikaze_mm.model_types import canonical_type

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

PENDING_DATA_COLUMNS = ("path", "name", "type", "base", "size_bytes", "created_at")


# The columns ``add_many`` writes, in its statement's order (``_pending_values``).
_ADDED = (*PENDING_DATA_COLUMNS, "source", "status", "meta_json", "updated_at")


def _pending_values(data: dict[str, Any], stamp: int) -> list[Any]:
    """A new pending row's values in ``_ADDED`` order, checked (``add``, ``add_many``)."""
    if not data.get("path"):
        raise ValidationError("a pending import needs a path")
    status = data.get("status", "new")
    if status not in PENDING_STATUSES:
        raise ValidationError(f"unknown pending status {status!r}")
    return [
        str(data["path"]),
        data.get("name"),
        canonical_type(data.get("type")),
        data.get("base"),
        data.get("size_bytes"),
        data.get("created_at", stamp),
        data.get("source", "legacy"),
        status,
        dump_meta(data.get("meta") or {}),
        stamp,
    ]


@dataclass(slots=True)
class PendingLocation:
    """A pending model as a scan compares it."""

    id: int
    path: str
    status: str
    source: str


@translate_errors()
class PendingStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def add(self, data: dict[str, Any], tags: Iterable[TagRef] = ()) -> int:
        """Queue a model whose hash is not known yet; returns its id.

        ``data`` may carry ``id`` (Stage 1 keeps the legacy id). A path or id already
        pending is a StorageConflictError.
        """
        values: dict[str, Any] = dict(zip(_ADDED, _pending_values(data, now_ms()), strict=True))
        values["path"] = self.db.locations.stored(values["path"])
        if data.get("id") is not None:
            values["id"] = int(data["id"])
        with self.db.transaction() as conn:
            try:
                pending_id = int(
                    conn.execute(
                        f"INSERT INTO pending_import ({', '.join(values)}) "
                        f"VALUES ({', '.join('?' * len(values))}) RETURNING id",
                        list(values.values()),
                    ).fetchone()[0]
                )
            except (sqlite3.IntegrityError, StorageConflictError) as exc:
                raise StorageConflictError(f"already pending: {values['path']} ({exc})") from exc
            if "id" in values:
                self.db.after_explicit_ids("pending_import")
            self.add_tags(pending_id, tags)
        return pending_id

    def add_many(self, rows: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
        """Queue models as ``add`` does (no ``id``, no tags), several rows a statement;
        a path already pending (or given twice) is skipped. Returns ``(id, path)`` of
        each row added, in the order given."""
        values: dict[str, list[Any]] = {}
        given: dict[str, str] = {}  # stored path -> the path as given
        stamp = now_ms()
        for data in rows:
            row = _pending_values(data, stamp)
            stored = self.db.locations.stored(row[0])
            given.setdefault(stored, row[0])
            values.setdefault(stored, [stored, *row[1:]])
        ids: dict[str, int] = {}
        marks = "(" + ", ".join("?" * len(_ADDED)) + ")"
        with self.db.transaction():
            for chunk in chunks(list(values.values())):
                found = self.db.tuples(
                    f"INSERT INTO pending_import ({', '.join(_ADDED)}) VALUES "
                    f"{', '.join([marks] * len(chunk))} "
                    "ON CONFLICT (path) DO NOTHING RETURNING id, path",
                    [value for row in chunk for value in row],
                )
                ids.update((path, int(pid)) for pid, path in found)
        return [(ids[path], given[path]) for path in values if path in ids]

    def add_tags(self, pending_id: int, tags: Iterable[TagRef]) -> None:
        """Attach tags (ids, or names created when new) to a pending model."""
        with self.db.transaction():
            self.db.tags.link(PENDING_LINKS, pending_id, self.db.tags.resolve(tags, create=True))

    # ----------------------------------------------------------------- reading
    def get(self, pending_id: int) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM pending_import WHERE id = ?", (pending_id,)
        ).fetchone()
        return self._records([row])[0] if row else None

    def get_many(self, pending_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The records of these pending ids (those that exist), by id."""
        found: dict[int, dict[str, Any]] = {}
        for chunk in chunks(list(dict.fromkeys(pending_ids))):
            marks = ",".join("?" * len(chunk))
            rows = self.db.conn.execute(
                f"SELECT * FROM pending_import WHERE id IN ({marks})", chunk
            ).fetchall()
            found.update((record["id"], record) for record in self._records(rows))
        return found

    def get_by_path(self, path: str | Path) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM pending_import WHERE path = ?", (self.db.locations.stored(path),)
        ).fetchone()
        return self._records([row])[0] if row else None

    def list(
        self, *, status: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM pending_import"
        args: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        args += [self.db.dialect.no_limit if limit is None else limit, offset]
        return self._records(self.db.conn.execute(sql, args).fetchall())

    def _records(self, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
        found = records(rows, self.db.tags.of(PENDING_LINKS, [r["id"] for r in rows]), "id")
        return [self.db.locations.show(record) for record in found]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self.db.conn.execute("SELECT COUNT(*) FROM pending_import").fetchone()[0])
        return int(
            self.db.conn.execute(
                "SELECT COUNT(*) FROM pending_import WHERE status = ?", (status,)
            ).fetchone()[0]
        )

    def counts(self) -> dict[str, int]:
        """The number of pending models in each status (every status, zeros included)."""
        counts = dict.fromkeys(PENDING_STATUSES, 0)
        rows = self.db.tuples("SELECT status, COUNT(*) FROM pending_import GROUP BY status")
        counts.update({status: int(n) for status, n in rows})
        return counts

    def ids(self, statuses: Sequence[str]) -> list[tuple[int, str, int | None]]:
        """``(id, path, size_bytes)`` of the rows in these statuses, by id (the worker's todo)."""
        marks = ",".join("?" * len(statuses))
        rows = self.db.tuples(
            f"SELECT id, path, size_bytes FROM pending_import WHERE status IN ({marks}) "
            "ORDER BY id",
            list(statuses),
        )
        return [(pid, path, size) for pid, path, size in self.db.locations.here(rows, 1)]

    def locations(self) -> dict[str, PendingLocation]:
        """Every pending model by path (one query, for a scan)."""
        rows = self.db.locations.here(
            self.db.tuples("SELECT id, path, status, source FROM pending_import"), 1
        )
        return {
            path: PendingLocation(pid, path, status, source) for pid, path, status, source in rows
        }

    def next_free_id(self, at_least: int) -> int:
        """An id above every pending id and at least ``at_least``."""
        row = self.db.conn.execute("SELECT MAX(id) FROM pending_import").fetchone()
        return max(int(row[0] or 0) + 1, at_least)

    # ----------------------------------------------------------------- writing
    def update(self, pending_id: int, **fields: Any) -> None:
        """Set status, error, sha256, ``meta`` or data columns of a pending row."""
        allowed = {*PENDING_DATA_COLUMNS, "sha256", "status", "error"}
        unknown = set(fields) - allowed - {"meta"}
        if unknown:
            raise ValidationError(f"unknown pending fields: {sorted(unknown)}")
        changes = {k: v for k, v in fields.items() if k in allowed}
        if "status" in changes and changes["status"] not in PENDING_STATUSES:
            raise ValidationError(f"unknown pending status {changes['status']!r}")
        if changes.get("sha256") is not None:
            changes["sha256"] = normalize_sha256(changes["sha256"])
        if changes.get("path") is not None:
            changes["path"] = self.db.locations.stored(changes["path"])
        if "meta" in fields:
            changes["meta_json"] = dump_meta(fields["meta"])
        changes["updated_at"] = now_ms()
        assignments = ", ".join(f"{k} = ?" for k in changes)
        with self.db.transaction() as conn:
            cur = conn.execute(
                f"UPDATE pending_import SET {assignments} WHERE id = ?",
                [*changes.values(), pending_id],
            )
            if cur.rowcount == 0:
                raise StorageNotFoundError(f"no pending import {pending_id}")

    def reset_status(self, old: str, new: str, *, keep: Iterable[int] = ()) -> int:
        """Move every row in status ``old`` to ``new``, except the ids in ``keep``."""
        kept = list(keep)
        marks = ",".join("?" * len(kept))
        skip = f" AND id NOT IN ({marks})" if kept else ""
        with self.db.transaction() as conn:
            cur = conn.execute(
                f"UPDATE pending_import SET status = ?, updated_at = ? WHERE status = ?{skip}",
                [new, now_ms(), old, *kept],
            )
            return cur.rowcount

    def remove(self, pending_id: int) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM pending_import WHERE id = ?", (pending_id,))
            return cur.rowcount > 0

    def remove_many(self, pending_ids: Sequence[int]) -> int:
        """Delete these pending rows; returns how many there were."""
        removed = 0
        with self.db.transaction() as conn:
            for chunk in chunks(sorted(set(pending_ids))):
                marks = ",".join("?" * len(chunk))
                removed += conn.execute(
                    f"DELETE FROM pending_import WHERE id IN ({marks})", chunk
                ).rowcount
        return removed

    # ----------------------------------------------------------------- claims
    def claim(
        self,
        pending_ids: Sequence[int],
        owner: str,
        lease_ms: int,
        *,
        dead: Sequence[str] = (),
    ) -> list[int]:
        """Claim these pending rows for ``owner`` (a process) until ``lease_ms`` from now:
        those nobody holds, whose claim ran out (its process died), ``owner``'s own, and
        those of the ``dead`` owners (processes known to be gone). Rows another process is
        claiming at this moment are skipped, not waited for (``SKIP LOCKED``). Returns the
        ids claimed, in id order."""
        if not pending_ids:
            return []
        now = now_ms()
        takers = [owner, *dead]
        claimed: list[int] = []
        with self.db.transaction():
            for chunk in chunks(sorted(set(pending_ids))):
                marks = ",".join("?" * len(chunk))
                claimed += [
                    int(pid)
                    for (pid,) in self.db.tuples(
                        "UPDATE pending_import SET claimed_by = ?, lease_until = ? "
                        "WHERE id IN (SELECT id FROM pending_import "
                        f"WHERE id IN ({marks}) AND (claimed_by IS NULL "
                        f"OR claimed_by IN ({','.join('?' * len(takers))}) "
                        f"OR lease_until < ?) ORDER BY id{self.db.dialect.skip_locked}) "
                        "RETURNING id",
                        [owner, now + lease_ms, *chunk, *takers, now],
                    )
                ]
        return sorted(claimed)

    def renew(self, pending_ids: Sequence[int], owner: str, lease_ms: int) -> int:
        """The heartbeat of ``owner``'s claims on these rows: each holds ``lease_ms`` more.
        Returns how many it still held."""
        if not pending_ids:
            return 0
        renewed = 0
        with self.db.transaction() as conn:
            for chunk in chunks(sorted(set(pending_ids))):
                marks = ",".join("?" * len(chunk))
                renewed += conn.execute(
                    f"UPDATE pending_import SET lease_until = ? WHERE id IN ({marks}) "
                    "AND claimed_by = ?",
                    [now_ms() + lease_ms, *chunk, owner],
                ).rowcount
        return renewed

    def release(self, pending_ids: Sequence[int], owner: str) -> None:
        """End ``owner``'s claims on these rows (those still pending)."""
        if not pending_ids:
            return
        with self.db.transaction() as conn:
            for chunk in chunks(sorted(set(pending_ids))):
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    "UPDATE pending_import SET claimed_by = NULL, lease_until = NULL "
                    f"WHERE id IN ({marks}) AND claimed_by = ?",
                    [*chunk, owner],
                )

    def remove_stale_scan_rows(self, pending_ids: Sequence[int]) -> list[int]:
        """Delete pending rows a scan created whose files are gone; returns the ids removed.

        Only rows from a scan (``source = 'scan'``), waiting or failed (``new``/``error``,
        never one being hashed right now), and carrying no tags are removed: such a row
        holds nothing but what the scan read from the file, so nothing a user entered is
        lost.
        """
        removed: list[int] = []
        if not pending_ids:
            return removed
        with self.db.transaction() as conn:
            for pid in pending_ids:
                cur = conn.execute(
                    "DELETE FROM pending_import WHERE id = ? AND source = 'scan' "
                    "AND status IN ('new', 'error') "
                    "AND NOT EXISTS (SELECT 1 FROM pending_model_tags WHERE model_id = ?)",
                    (pid, pid),
                )
                if cur.rowcount:
                    removed.append(pid)
        return removed
