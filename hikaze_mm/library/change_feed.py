"""The library's change events, fanned out to whoever shows the library.

``ChangeFeed`` watches the library (``Library.watch_changes``: this process's changes on
SQLite, every host's on PostgreSQL) from its first subscriber on, and hands each
``Change`` to every subscription: an asyncio queue read on its own event loop
(``GET /api/events``, ComfyUI's websocket). A subscriber that falls more than
``QUEUE_LENGTH`` events behind gets ``resync`` in their place (it reads the library
again). A listener (``add_listener``: ComfyUI's websocket) is called with each change
from the library's thread. Jobs announce their runs through ``job_changed``, sent by a
thread of the feed so that no caller waits on the server.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from hikaze_mm.database.changes import Change
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError

log = logging.getLogger(__name__)

QUEUE_LENGTH = 256
MAX_SUBSCRIBERS = 32


class Subscription:
    """One subscriber's events, read on the event loop that subscribed."""

    def __init__(self, feed: ChangeFeed, loop: asyncio.AbstractEventLoop) -> None:
        self.feed = feed
        self.loop = loop
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_LENGTH)

    async def next(self, timeout: float) -> Change | None:
        """The next change; None when the feed closed. ``TimeoutError`` after ``timeout``
        seconds without one."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    def put(self, change: Change | None) -> None:
        """On the subscriber's loop: queue ``change`` (None: the end)."""
        if change is not None and self.queue.full():
            while not self.queue.empty():  # behind: one resync stands for what is dropped
                self.queue.get_nowait()
            change = Change("resync", (), True, change.host)
        self.queue.put_nowait(change)

    def close(self) -> None:
        self.feed.unsubscribe(self)


class ChangeFeed:
    def __init__(self, db: Library) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._listeners: list[Callable[[Change], None]] = []
        self._watching = False
        self._closed = False
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hikaze-notify")

    def subscribe(self) -> Subscription:
        """A new subscription, on the running event loop (ConflictError past
        ``MAX_SUBSCRIBERS``, or once the feed is closed)."""
        subscription = Subscription(self, asyncio.get_running_loop())
        with self._lock:
            if self._closed:
                raise ConflictError("the library is closing")
            if len(self._subscriptions) >= MAX_SUBSCRIBERS:
                raise ConflictError(f"at most {MAX_SUBSCRIBERS} clients follow the changes")
            self._subscriptions.append(subscription)
        self._watch()
        return subscription

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` with every change, from the library's thread (it must not
        block: ComfyUI's ``send_sync``, say)."""
        with self._lock:
            self._listeners.append(listener)
        self._watch()

    def _watch(self) -> None:
        with self._lock:
            start = not self._watching and not self._closed
            self._watching = True
        if start:
            self.db.watch_changes(self.publish)

    def wait_ready(self, timeout: float) -> bool:
        """Whether the library's changes reach the subscriptions (a listener connected)
        within ``timeout`` seconds; blocks: call it off the event loop."""
        return self.db.wait_listening(timeout)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def publish(self, change: Change | None) -> None:
        """Hand ``change`` to every subscription (None ends them); from any thread."""
        with self._lock:
            subscriptions, listeners = list(self._subscriptions), list(self._listeners)
        for listener in listeners if change is not None else ():
            try:
                listener(change)
            except Exception:  # a listener's fault must not stop the others
                log.exception("a change listener failed")
        for subscription in subscriptions:
            try:
                subscription.loop.call_soon_threadsafe(subscription.put, change)
            except RuntimeError:  # its loop is closed: it is gone
                self.unsubscribe(subscription)

    def job_changed(self, name: str) -> None:
        """A job's run began or ended: sent to every process of the library."""
        with self._lock:
            if self._closed:
                return
        self._sender.submit(self._notify, name)

    def _notify(self, name: str) -> None:
        with self._lock:
            if self._closed:  # the library is closing: no new connection for this
                return
        try:
            self.db.notify("jobs", [name])
        except Exception as exc:  # the library went away: a screen misses one refresh
            log.debug("could not announce job %s: %s", name, exc)
        finally:
            self.db.release_thread()

    def close(self) -> None:
        """End every subscription and stop watching the library."""
        with self._lock:
            self._closed = True
            watching, self._watching = self._watching, False
        # An announcement still queued is dropped: closing never waits on the server.
        self._sender.shutdown(wait=False, cancel_futures=True)
        if watching:
            self.db.watch_changes(None)
        self.publish(None)
        with self._lock:
            self._subscriptions.clear()
            self._listeners.clear()
