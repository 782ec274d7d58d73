"""SidecarStore: the ``sidecar_files`` and ``image_pixels`` tables (schema revision 9).

Each host keeps its own sidecar rows (``host``: the library's ``cache_host``, revision 13).

A sidecar file (another tool's metadata or preview next to a model file) is read again
only when its size or mtime changed; ``image_pixels`` keeps a digest of the decoded pixels
of each preview a model got from one, so the same picture is not stored twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING

from hikaze_mm.database.retry import retrying
from hikaze_mm.database.sql import chunks, path_ranges
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import normalize_sha256, now_ms

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager


@translate_errors()
class SidecarStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def below(self, folders: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``path -> (size, mtime_ns)`` of every sidecar read below ``folders``, one query."""
        if not folders:
            return {}
        where, args = path_ranges("path", folders)
        rows = self.db.tuples(
            f"SELECT path, size_bytes, mtime_ns FROM sidecar_files WHERE host = ? AND ({where})",
            [self.db.cache_host, *args],
        )
        return {path: (size, mtime) for path, size, mtime in rows}

    @retrying
    def record(self, rows: Sequence[tuple[str, int, int, str | None]]) -> None:
        """Remember ``(path, size, mtime_ns, sha256 of the model it was applied to)``."""
        if not rows:
            return
        now, host = now_ms(), self.db.cache_host
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO sidecar_files (host, path, size_bytes, mtime_ns, sha256, read_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(host, path) DO UPDATE SET "
                "size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns, "
                "sha256 = excluded.sha256, read_at = excluded.read_at",
                sorted(
                    ((host, p, size, mtime, sha, now) for p, size, mtime, sha in rows),
                    key=itemgetter(1),  # by path (stable): concurrent calls lock in one order
                ),
            )

    def forget(self, paths: Sequence[str]) -> None:
        """Forget these sidecars (gone from disk)."""
        with self.db.transaction() as conn:
            for chunk in chunks(paths):
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"DELETE FROM sidecar_files WHERE host = ? AND path IN ({marks})",
                    [self.db.cache_host, *chunk],
                )

    def rename(self, moves: Sequence[tuple[str, str]]) -> int:
        """The rows of sidecars that moved, ``(old path, new path)``, follow them (size,
        mtime and model kept: a rename keeps the mtime); a row already at a new path is
        replaced. Returns how many rows moved."""
        moved = 0
        with self.db.transaction() as conn:
            host = self.db.cache_host
            for old, new in moves:
                if old == new:
                    continue
                conn.execute("DELETE FROM sidecar_files WHERE host = ? AND path = ?", (host, new))
                moved += conn.execute(
                    "UPDATE sidecar_files SET path = ? WHERE host = ? AND path = ?",
                    (new, host, old),
                ).rowcount
        return moved

    def has_pixels(self, sha256: str, digest: str) -> bool:
        """Whether the model already has an image with these decoded pixels."""
        row = self.db.conn.execute(
            "SELECT 1 FROM image_pixels WHERE sha256 = ? AND digest = ?",
            (normalize_sha256(sha256), digest),
        ).fetchone()
        return row is not None

    def add_pixels(self, sha256: str, digest: str, seq: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO image_pixels (sha256, digest, seq) VALUES (?, ?, ?) "
                "ON CONFLICT(sha256, digest) DO UPDATE SET seq = excluded.seq",
                (normalize_sha256(sha256), digest, seq),
            )
