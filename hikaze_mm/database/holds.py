"""Catalog-wide holds: one job of a kind at a time across every process of a catalog.

``Library.hold(name)`` returns a ``Hold`` (``release()`` ends it) or raises
``HeldElsewhereError`` naming the host that holds it. On PostgreSQL a hold is a session
advisory lock on a connection of its own, so it ends with its process, on any host (a
host that dies lets go when the server drops its session); on SQLite, whose library one
host uses, the jobs' own locks already keep one run at a time, and a hold is ``NoHold``.
"""

from __future__ import annotations

from typing import Protocol


class Hold(Protocol):
    def release(self) -> None: ...


class NoHold:
    def release(self) -> None:
        pass
