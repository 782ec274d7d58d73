"""This process's claims on pending rows: leases with a heartbeat.

Hosts of a studio scan one NAS, so several processes may reach for the same pending row.
A process claims the rows it hashes and promotes (``PendingStore.claim``: rows nobody
holds, or whose lease ran out), renews the lease while it reads a large file (at most
every third of a lease) and lets go of what is still pending when it is done. A process
that dies holds its rows until its lease runs out; then another host claims them (a
process of the same host takes them at once: there its pid says it is gone). A file of the
NAS is hashed by one host at a time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hikaze_mm.database.interfaces import Library
from hikaze_mm.hashing import ProgressCallback
from hikaze_mm.liveness import PROCESS_TOKEN
from hikaze_mm.process_lock import pid_alive

DEFAULT_LEASE_SECONDS = 60.0


def host_of(owner: str | None) -> str | None:
    """The host of a claim's owner (``host/pid/token``), or None."""
    return owner.split("/", 1)[0] if owner else None


class Claims:
    def __init__(self, db: Library, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.db = db
        # Who claims (``host/pid/token``): this host, this process (its pid, for a
        # successor on this host to tell it is gone) and this run of it.
        self.owner = f"{db.host_name}/{os.getpid()}/{PROCESS_TOKEN[:12]}"
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self._beat_s = lease_seconds / 3
        self._lock = threading.Lock()
        self._last_beat: dict[int, float] = {}

    def take(self, pending_ids: Sequence[int]) -> list[int]:
        """The rows among ``pending_ids`` claimed for this process now."""
        claimed = self.db.pending.claim(pending_ids, self.owner, self.lease_ms)
        rest = sorted(set(pending_ids) - set(claimed))
        dead = self._dead_here(rest) if rest else []
        if dead:  # a process of this host that died: no need to wait out its leases
            claimed = sorted(
                claimed + self.db.pending.claim(rest, self.owner, self.lease_ms, dead=dead)
            )
        now = time.monotonic()
        with self._lock:
            self._last_beat.update(dict.fromkeys(claimed, now))
        return claimed

    def _dead_here(self, pending_ids: Sequence[int]) -> list[str]:
        """The owners of these rows' claims that were processes of this host and are gone."""
        owners = {
            str(record.get("claimed_by"))
            for record in self.db.pending.get_many(pending_ids).values()
            if record.get("claimed_by")
        }
        dead = []
        for owner in owners - {self.owner}:
            pid = owner.split("/")[1] if owner.count("/") >= 2 else ""
            # (Our own pid under another token: a past process that had our pid.)
            gone = pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid)))
            if host_of(owner) == self.db.host_name and gone:
                dead.append(owner)
        return sorted(dead)

    def release(self, pending_ids: Sequence[int]) -> None:
        with self._lock:
            for pid in pending_ids:
                self._last_beat.pop(pid, None)
        self.db.pending.release(pending_ids, self.owner)

    @contextmanager
    def holding(self, pending_ids: Sequence[int]) -> Iterator[list[int]]:
        """Claim for the block; what is still pending after it is let go."""
        claimed = self.take(pending_ids)
        try:
            yield claimed
        finally:
            self.release(claimed)

    def beat(self, pending_ids: Sequence[int]) -> None:
        """Renew the leases of these rows when a third of a lease has passed since."""
        now = time.monotonic()
        with self._lock:
            due = [pid for pid in pending_ids if now - self._last_beat.get(pid, 0) >= self._beat_s]
            self._last_beat.update(dict.fromkeys(due, now))
        if due:
            self.db.pending.renew(due, self.owner, self.lease_ms)

    def beating(
        self, pending_ids: Sequence[int], progress: ProgressCallback | None = None
    ) -> ProgressCallback:
        """A hashing progress callback that keeps these rows' leases alive (and calls
        ``progress``)."""

        def both(done: int, total: int) -> None:
            self.beat(pending_ids)
            if progress is not None:
                progress(done, total)

        return both
