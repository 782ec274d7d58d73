"""The move journal: what makes moving a model's file converge after a crash.

A move changes files (the model, then its sidecars) and then the library, and the two
cannot change in one atomic step. So each move first writes an entry in the state store
(key ``move_journal``, one entry per model hash) before any file is touched, updates it
once a copy across file systems is verified (phase ``copied``), and drops it once the
library follows the new path. ``Organizer.converge`` reads an entry and ends the move
whichever way its files say (see ``organizer``).

An entry is owned by the process that wrote it (pid and a random token, as in the
promotion journal): entries of a process that still runs are left to it.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.process_lock import pid_alive

JOURNAL_KEY = "move_journal"
PROCESS_TOKEN = uuid.uuid4().hex


def owner_stamp() -> dict[str, Any]:
    return {"pid": os.getpid(), "token": PROCESS_TOKEN}


class MoveJournal:
    def __init__(self, db: Library) -> None:
        self.db = db

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
                entries[sha256] = {**entry, "owner": entry.get("owner") or owner_stamp()}
            self.db.state.set(JOURNAL_KEY, {"entries": entries})

    @staticmethod
    def is_ours(entry: dict[str, Any]) -> bool:
        owner = entry.get("owner") or {}
        return owner.get("pid") == os.getpid() and owner.get("token") == PROCESS_TOKEN

    @classmethod
    def owned_by_live_other(cls, entry: dict[str, Any]) -> bool:
        """Written by another process that still runs (a reused pid of ours is not it)."""
        if cls.is_ours(entry):
            return False
        pid = int((entry.get("owner") or {}).get("pid") or 0)
        return pid != os.getpid() and pid_alive(pid)
