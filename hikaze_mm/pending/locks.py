"""In-process locks for promotion.

* ``IdLocks``: one lock per pending id, taken without waiting. A second caller for an id
  that is being promoted gets ``LockedError`` (HTTP 423) at once, so the worker and the
  API never promote the same pending model twice.
* ``KeyedLocks``: blocking locks keyed by any hashable value. The promoter holds the lock
  of a SHA-256 while it decides between "created" and a conflict, writes images and
  commits, so two pending items with the same content are applied one after the other.

Both forget a key as soon as nobody holds or waits for it, so they never grow.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from hikaze_mm.errors import LockedError


class IdLocks:
    """Non-blocking, per-id locks: ``hold(id)`` or ``LockedError``."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: set[int] = set()

    def try_acquire(self, key: int) -> bool:
        with self._mutex:
            if key in self._held:
                return False
            self._held.add(key)
            return True

    def release(self, key: int) -> None:
        with self._mutex:
            self._held.discard(key)

    def held(self) -> set[int]:
        with self._mutex:
            return set(self._held)

    @contextmanager
    def hold(self, key: int) -> Iterator[None]:
        """Hold the lock of ``key`` for the block; raise LockedError if it is taken."""
        if not self.try_acquire(key):
            raise LockedError(f"pending model {key} is being promoted right now")
        try:
            yield
        finally:
            self.release(key)


class KeyedLocks:
    """Blocking locks created on demand per key and dropped when unused."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: Hashable, *, busy: Exception | None = None) -> Iterator[None]:
        """Hold the lock of ``key`` for the block, waiting for it; with ``busy``, raise
        that at once instead of waiting when someone else holds it."""
        with self._mutex:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        if not lock.acquire(blocking=busy is None):
            self._forget(key)
            assert busy is not None
            raise busy
        try:
            yield
        finally:
            lock.release()
            self._forget(key)

    def _forget(self, key: Hashable) -> None:
        """One user fewer; the lock goes when it has none."""
        with self._mutex:
            current, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (current, users - 1)


class PromotionLocks:
    """The two lock tables the promoter and the worker share (one per process)."""

    def __init__(self) -> None:
        self.ids = IdLocks()
        self.hashes = KeyedLocks()
