"""LegacyLedgerStore: what the Stage 1 legacy import has already done (schema revision 4).

Three small tables in the v3 library make the import idempotent and crash-safe:

* ``legacy_import_models``: a legacy model's path (unique in v2) and what it became. A
  recorded path is skipped by every later run, so a re-run never resurrects a model that
  Stage 2 promoted or the user deleted, and never re-copies its images. The row is
  written in the same transaction as the model it records.
* ``legacy_import_tags``: a legacy tag name and the v3 tag it maps to.
* ``legacy_import_images``: for a model (sha256) and an original image (the SHA-256 of
  its file), the seq it occupies. It is written as a reservation (``done`` = 0) before the
  tier files, and marked done by the model's commit; a run after a crash finds the
  reservation and rewrites the same seq instead of taking a new one (no ``_1`` twins).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.tags import nocase
from hikaze_mm.database.values import now_ms

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager


@translate_errors()
class LegacyLedgerStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    # ------------------------------------------------------------------ models
    def is_imported(self, path: str) -> bool:
        """Whether an earlier run imported the legacy model at ``path``."""
        row = self.db.conn.execute(
            "SELECT 1 FROM legacy_import_models WHERE path = ?", (path,)
        ).fetchone()
        return row is not None

    def sha_imported(self, sha256: str) -> bool:
        row = self.db.conn.execute(
            "SELECT 1 FROM legacy_import_models WHERE sha256 = ? LIMIT 1", (sha256,)
        ).fetchone()
        return row is not None

    def record_model(
        self, path: str, legacy_id: int, *, sha256: str | None = None, pending_id: int | None
    ) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO legacy_import_models (path, legacy_id, sha256, pending_id, "
                "imported_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "legacy_id = excluded.legacy_id, sha256 = excluded.sha256, "
                "pending_id = excluded.pending_id, imported_at = excluded.imported_at",
                (path, legacy_id, sha256, pending_id, now_ms()),
            )

    # ------------------------------------------------------------------ tags
    def tag_for(self, name: str) -> int | None:
        row = self.db.conn.execute(
            "SELECT tag_id FROM legacy_import_tags WHERE name = ?", (nocase(name),)
        ).fetchone()
        return int(row[0]) if row else None

    def record_tag(self, name: str, tag_id: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO legacy_import_tags (name, tag_id) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET tag_id = excluded.tag_id",
                (nocase(name), tag_id),
            )

    # ------------------------------------------------------------------ images
    def reservation(self, sha256: str, source_sha: str) -> tuple[int, bool] | None:
        """``(seq, done)`` of a legacy image already placed for this model, or None."""
        row = self.db.conn.execute(
            "SELECT seq, done FROM legacy_import_images WHERE sha256 = ? AND source_sha = ?",
            (sha256, source_sha),
        ).fetchone()
        return (int(row[0]), bool(row[1])) if row else None

    def reserve(self, sha256: str, source_sha: str, seq: int) -> None:
        """Record (committed at once) that this image is about to be written at ``seq``."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO legacy_import_images (sha256, source_sha, seq, done) "
                "VALUES (?, ?, ?, 0) ON CONFLICT(sha256, source_sha) DO UPDATE SET "
                "seq = excluded.seq, done = 0",
                (sha256, source_sha, seq),
            )

    def mark_done(self, sha256: str, source_shas: Iterable[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE legacy_import_images SET done = 1 WHERE sha256 = ? AND source_sha = ?",
                [(sha256, s) for s in source_shas],
            )
