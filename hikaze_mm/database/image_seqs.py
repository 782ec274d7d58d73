"""ImageSeqStore: the ``image_seqs`` table (revision 13), the next free number of each
model's images, claimed in the catalog.

Hosts of a studio write one images folder on a share, where an exclusive create
(``O_EXCL``) is no lock; a number taken here is no other host's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hikaze_mm.database.retry import retrying
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import normalize_sha256

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
