"""The move journal: what makes moving a model's file converge after a crash.

A move changes files (the model, then its sidecars) and then the library, and the two
cannot change in one atomic step. So each move first writes an entry in the state store
(key ``move_journal``, one entry per model hash) before any file is touched, updates it
once a copy across file systems is verified (phase ``copied``), and drops it once the
library follows the new path. ``Organizer.converge`` reads an entry and ends the move
whichever way its files say (see ``organizer``).

An entry is owned by the process that wrote it (``liveness``, as in the promotion
journal): entries of a process that still runs are left to it, on any host of a shared
catalog.
"""

from __future__ import annotations

from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.liveness import Liveness

JOURNAL_KEY = "move_journal"


class MoveJournal:
    def __init__(self, db: Library) -> None:
        self.db = db
        self.liveness = Liveness(db, "move")

    def _entries(self) -> dict[str, dict[str, Any]]:
        state = self.db.state.get(JOURNAL_KEY) or {}
        entries = state.get("entries")
        return dict(entries) if isinstance(entries, dict) else {}

    def entries(self) -> dict[str, dict[str, Any]]:
        return self._entries()

    def get(self, sha256: str) -> dict[str, Any] | None:
        return self._entries().get(sha256)

    def put(self, sha256: str, entry: dict[str, Any] | None) -> None:
        """Write (or with None drop) the entry of ``sha256``; joins the caller's
        transaction, so an entry can commit with the library change it describes."""
        with self.db.transaction():  # read-modify-write under SQLite's write lock
            entries = self._entries()
            if entry is None:
                if entries.pop(sha256, None) is None:
                    return
            else:
                entries[sha256] = {**entry, "owner": entry.get("owner") or self.liveness.owner()}
            self.db.state.set(JOURNAL_KEY, {"entries": entries})

    def close(self) -> None:
        """Let go of this journal's session (``liveness``)."""
        self.liveness.close()

    def is_ours(self, entry: dict[str, Any]) -> bool:
        return self.liveness.is_ours(entry)

    def owned_by_live_other(self, entry: dict[str, Any]) -> bool:
        """Written by another process that still runs, on any host (``liveness``)."""
        return self.liveness.live_other(entry)
