"""Whose journal entry is this, and is its process alive? (The promotion and move journals.)

An entry names the process that wrote it: its pid and a random token, so a restarted
process that got the same pid is not taken for the dead one. In a catalog several hosts
share, a pid means nothing on another host: there the writer also holds a session advisory
lock (``Library.hold``) named in its entries (``session``) from its first entry on, and it
is alive while a session holds that lock; the server ends the session of a host that dies.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

from hikaze_mm.database.holds import Hold
from hikaze_mm.database.interfaces import Library
from hikaze_mm.process_lock import pid_alive

PROCESS_TOKEN = uuid.uuid4().hex


class Liveness:
    """The owner stamp of one journal's entries, and the test of another's."""

    def __init__(self, db: Library, kind: str) -> None:
        self.db = db
        self.session = f"{kind}:{PROCESS_TOKEN}:{uuid.uuid4().hex[:8]}"
        self._hold: Hold | None = None
        self._lock = threading.Lock()

    def owner(self) -> dict[str, Any]:
        """What an entry of this process says of it; in a shared catalog the session is
        held from now on."""
        owner: dict[str, Any] = {"pid": os.getpid(), "token": PROCESS_TOKEN}
        if self.db.shared:
            with self._lock:  # entries are written from several threads
                if self._hold is None:
                    self._hold = self.db.hold(self.session, record=False)
            owner.update(host=self.db.host_name, session=self.session)
        return owner

    def is_ours(self, entry: dict[str, Any]) -> bool:
        """Written by this process (by this journal, where an entry names a session)."""
        owner = entry.get("owner") or {}
        mine = owner.get("pid") == os.getpid() and owner.get("token") == PROCESS_TOKEN
        return mine and owner.get("session", self.session) == self.session

    def live_other(self, entry: dict[str, Any]) -> bool:
        """Written by another process that still runs (a reused pid of ours is not it; in
        a shared catalog, one whose session still holds its lock, on any host)."""
        if self.is_ours(entry):
            return False
        owner = entry.get("owner") or {}
        if self.db.shared and owner.get("session"):
            return self.db.held(str(owner["session"]))
        pid = int(owner.get("pid") or 0)
        return pid != os.getpid() and pid_alive(pid)

    @staticmethod
    def describe(entry: dict[str, Any]) -> str:
        """The writer of ``entry``, for a message: ``process 123 on host-a``."""
        owner = entry.get("owner") or {}
        host = f" on {owner['host']}" if owner.get("host") else ""
        return f"process {owner.get('pid')}{host}"

    def close(self) -> None:
        """Let go of the session: this journal's entries are then another's to converge."""
        with self._lock:
            if self._hold is not None:
                self._hold.release()
                self._hold = None
