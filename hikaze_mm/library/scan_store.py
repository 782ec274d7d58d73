"""The scanner's bulk reads and writes, a few statements for a whole library.

A scan compares every file under the roots with what the library knows. Asking the
database once per file would dominate an unchanged rescan, so the scanner loads what it
needs up front, one query per table (the hash cache one range query per root, on its
primary key), and writes its changes in batches, one transaction per batch. Single-row
changes with rules of their own (relinking a model, queueing a pending import) go
through ``DatabaseManager`` inside those batch transactions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hikaze_mm.database import DatabaseManager


@dataclass(frozen=True, slots=True)
class CacheRow:
    size: int
    mtime_ns: int
    inode: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ModelLocation:
    sha256: str
    path: str
    size: int | None
    missing: bool


@dataclass(frozen=True, slots=True)
class PendingLocation:
    id: int
    path: str
    status: str
    source: str


def path_prefix_bounds(folder: str) -> tuple[str, str]:
    """``(low, high)`` such that ``low <= p < high`` holds exactly for paths below ``folder``.

    Every path below ``folder`` starts with ``folder + sep``; the next string after all
    of them swaps the separator for the character that follows it.
    """
    sep = os.sep
    base = folder.rstrip(sep) or sep
    low = base if base.endswith(sep) else base + sep
    return low, low[:-1] + chr(ord(sep) + 1)


def load_hash_cache(db: DatabaseManager, folders: Iterable[str]) -> dict[str, CacheRow]:
    """Cache rows for every path below ``folders``: one indexed range query per folder."""
    rows: dict[str, CacheRow] = {}
    for folder in folders:
        low, high = path_prefix_bounds(folder)
        cursor = db.conn.execute(
            "SELECT path, size_bytes, mtime_ns, inode, sha256 FROM hash_cache "
            "WHERE path >= ? AND path < ?",
            (low, high),
        )
        for path, size, mtime_ns, inode, sha in cursor:
            rows[path] = CacheRow(size, mtime_ns, inode, sha)
    return rows


def load_models(db: DatabaseManager) -> list[ModelLocation]:
    """Where every model in the library is supposed to be (one query)."""
    cursor = db.conn.execute("SELECT sha256, path, size_bytes, missing FROM models")
    return [ModelLocation(sha, path, size, bool(missing)) for sha, path, size, missing in cursor]


def load_pending(db: DatabaseManager) -> dict[str, PendingLocation]:
    """Every pending import by path (one query)."""
    cursor = db.conn.execute("SELECT id, path, status, source FROM pending_import")
    return {
        path: PendingLocation(pid, path, status, source) for pid, path, status, source in cursor
    }


def set_missing(db: DatabaseManager, sha256s: Sequence[str], missing: bool) -> int:
    """Flag (or unflag) models as missing in one transaction; returns rows changed."""
    if not sha256s:
        return 0
    flag = 1 if missing else 0
    with db.transaction() as conn:
        cur = conn.executemany(
            "UPDATE models SET missing = ? WHERE sha256 = ? AND missing != ?",
            [(flag, sha, flag) for sha in sha256s],
        )
        return cur.rowcount


def remove_stale_scan_pending(db: DatabaseManager, pending_ids: Sequence[int]) -> list[int]:
    """Delete pending rows the scan created whose files are gone; returns the ids removed.

    Only rows from the scan (``source = 'scan'``), waiting or failed (``new``/``error``,
    never one being hashed right now), and carrying no tags are removed: such a row holds
    nothing but what the scan read from the file, so nothing a user entered is lost.
    """
    removed: list[int] = []
    if not pending_ids:
        return removed
    with db.transaction() as conn:
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
