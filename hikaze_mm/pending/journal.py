"""The promotion journal: what makes a promotion converge after a crash.

A promotion writes image files before its DB commit and removes the pending originals
after it. Files and the DB cannot change in one atomic step, so each promotion that
touches files leaves a small entry in the ``migration_state`` table (key
``promotion_journal``) while it runs:

1. ``plan``: before any tier is written, the entry lists the *staged* seqs (freshly
   claimed, so they belong to this promotion alone) and the pending originals.
2. ``mark_committed``: in the promotion's own DB transaction, the entry becomes
   ``committed`` and records the renames still to do (``override`` stages the new image
   at a fresh seq and renames it onto seq 0 only after the commit, so a crash before the
   commit never loses the existing seq 0).
3. ``finish``: after the commit, the renames are done, the originals removed, and the
   entry dropped.

``converge`` rolls a ``planned`` entry back (its staged tiers are deleted: they were never
committed, so they are orphans) and rolls a ``committed`` entry forward (renames and
removals are idempotent). It runs when a promotion fails, when the same pending id is
promoted again (``recover_entry``) and for every entry of a dead process when the library
is opened (``recover_dead``).

An entry is owned by the process that wrote it (``liveness``: its pid and token, and in a
catalog several hosts share the session it holds). Entries of a process that is still
alive are left alone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import LockedError
from hikaze_mm.images import ImageStore
from hikaze_mm.liveness import Liveness

JOURNAL_KEY = "promotion_journal"


class PromotionJournal:
    def __init__(self, db: Library, images: ImageStore) -> None:
        self.db = db
        self.images = images
        self.liveness = Liveness(db, "promotion")

    def close(self) -> None:
        """Let go of this journal's session (``liveness``)."""
        self.liveness.close()

    # ------------------------------------------------------------ storage
    def _entries(self) -> dict[str, dict[str, Any]]:
        state = self.db.state.get(JOURNAL_KEY) or {}
        entries = state.get("entries")
        return dict(entries) if isinstance(entries, dict) else {}

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        self.db.state.set(JOURNAL_KEY, {"entries": entries})

    def entries(self) -> dict[int, dict[str, Any]]:
        return {int(k): v for k, v in self._entries().items()}

    def get(self, pending_id: int) -> dict[str, Any] | None:
        return self._entries().get(str(pending_id))

    def _put(self, pending_id: int, entry: dict[str, Any] | None) -> None:
        with self.db.transaction():  # read-modify-write under SQLite's write lock
            entries = self._entries()
            if entry is None:
                if entries.pop(str(pending_id), None) is None:
                    return
            else:
                entries[str(pending_id)] = entry
            self._write(entries)

    # ------------------------------------------------------------ the three steps
    def plan(self, pending_id: int, sha256: str, staged: list[int], sources: list[Path]) -> None:
        self._put(
            pending_id,
            {
                "phase": "planned",
                "sha256": sha256,
                "staged": list(staged),
                "moves": [],
                "sources": [str(p) for p in sources],
                "owner": self.liveness.owner(),
            },
        )

    def mark_committed(self, pending_id: int, moves: list[tuple[int, int]]) -> None:
        """Call inside the promotion's transaction: the entry commits with the DB change."""
        entry = self.get(pending_id)
        if entry is None:
            raise RuntimeError(f"no journal entry for pending model {pending_id}")
        entry = {**entry, "phase": "committed", "moves": [list(m) for m in moves]}
        self._put(pending_id, entry)

    def finish(self, pending_id: int) -> None:
        """Roll a committed entry forward: rename staged tiers, remove originals, drop it."""
        entry = self.get(pending_id)
        if entry is None:
            return
        sha = entry["sha256"]
        for src_seq, dst_seq in entry.get("moves", []):
            self.images.move_image(sha, src_seq, dst_seq)
        for source in entry.get("sources", []):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(source)
        self._put(pending_id, None)

    def converge(self, pending_id: int) -> None:
        """Finish a committed entry; undo a planned one (its staged tiers were never committed)."""
        entry = self.get(pending_id)
        if entry is None:
            return
        if entry.get("phase") == "committed":
            self.finish(pending_id)
            return
        for seq in entry.get("staged", []):
            self.images.delete_image(entry["sha256"], int(seq))
        self._put(pending_id, None)

    # ------------------------------------------------------------ recovery
    def recover_entry(self, pending_id: int) -> None:
        """Converge the entry of ``pending_id`` left by an earlier attempt, if any.

        The caller holds the id's lock, so an entry of this process is a leftover of a
        failed attempt. Raises LockedError when another live process owns the entry.
        """
        entry = self.get(pending_id)
        if entry is None:
            return
        if self.liveness.live_other(entry):
            who = self.liveness.describe(entry)
            raise LockedError(f"pending model {pending_id} is being promoted by {who}")
        self.converge(pending_id)

    def recover_dead(self, skip: set[int] | None = None) -> int:
        """Converge every entry whose process is gone (run when a library is opened)."""
        done = 0
        for pending_id, entry in self.entries().items():
            if skip and pending_id in skip:
                continue
            if self.liveness.is_ours(entry) or self.liveness.live_other(entry):
                continue
            self.converge(pending_id)
            done += 1
        return done
