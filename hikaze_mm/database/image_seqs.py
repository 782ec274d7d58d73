"""ImageSeqStore: the ``image_seqs`` and ``image_orders`` tables (revision 13): the next
free number of each model's images, claimed in the catalog, and the order a user chose
for a model's images.

Hosts of a studio write one images folder on a share, where an exclusive create
(``O_EXCL``) is no lock; a number taken here is no other host's, and an order set on one
host is every host's at once.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hikaze_mm.database.retry import retrying
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import normalize_sha256, now_ms

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# The row's next number becomes one past the larger of itself and the hint; the number
# taken is the one before.
_CLAIM = (
    "INSERT INTO image_seqs (sha256, next_seq) VALUES (?, ? + 1) "
    "ON CONFLICT (sha256) DO UPDATE SET next_seq = CASE "
    "WHEN image_seqs.next_seq > excluded.next_seq - 1 THEN image_seqs.next_seq "
    "ELSE excluded.next_seq - 1 END + 1 "
    "RETURNING next_seq - 1"
)


@translate_errors()
class ImageSeqStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    @retrying
    def claim(self, sha256: str, at_least: int = 0) -> int:
        """A number for a new image of the model, never given before, and at least
        ``at_least`` (one past the numbers its images already have on disk)."""
        sha = normalize_sha256(sha256)
        with self.db.transaction() as conn:
            return int(conn.execute(_CLAIM, (sha, int(at_least))).fetchone()[0])

    def orders(self) -> dict[str, list[int]]:
        """Every chosen order, by model (one query; models shown in number order have
        none)."""
        return {
            sha: json.loads(seqs)
            for sha, seqs in self.db.tuples("SELECT sha256, seqs_json FROM image_orders")
        }

    def set_order(self, sha256: str, seqs: list[int] | None) -> None:
        """Choose the order of a model's images (None: by number)."""
        sha = normalize_sha256(sha256)
        with self.db.transaction() as conn:
            if seqs is None:
                conn.execute("DELETE FROM image_orders WHERE sha256 = ?", (sha,))
                return
            conn.execute(
                "INSERT INTO image_orders (sha256, seqs_json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sha256) DO UPDATE SET seqs_json = excluded.seqs_json, "
                "updated_at = excluded.updated_at",
                (sha, json.dumps([int(seq) for seq in seqs]), now_ms()),
            )
