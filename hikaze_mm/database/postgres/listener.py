"""The catalog's change events, heard on a connection of their own (``database.changes``).

``Listener`` runs a thread that ``LISTEN``\\ s on the changes' channel and passes each
notification, as a ``Change``, to its callback. A lost connection is opened again (every
``RETRY_S`` until the server answers), and then the callback gets ``resync``: what was
sent meanwhile is lost, so whoever shows the catalog reads it again.
"""

from __future__ import annotations

import logging
import threading

from hikaze_mm.database.changes import CHANNEL, Change, ChangeCallback, parse_payload

log = logging.getLogger(__name__)

RETRY_S = 1.0
# How long a wait for notifications lasts before the thread checks whether to stop.
POLL_S = 0.5
CONNECT_TIMEOUT_S = 10


class Listener:
    def __init__(self, url: str, where: str, host: str, callback: ChangeCallback) -> None:
        self.url = url
        self.where = where
        self.host = host
        self.callback = callback
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hikaze-changes", daemon=True)
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """Whether the listener is (again) on the channel within ``timeout`` seconds."""
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(POLL_S * 4 + CONNECT_TIMEOUT_S)

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                self._listen(resync=lost)
            except Exception as exc:  # the server went away: try again
                self._listening.clear()
                if not lost:
                    log.warning("change events from %s lost: %s", self.where, type(exc).__name__)
                lost = True
                self._stop.wait(RETRY_S)

    def _listen(self, *, resync: bool) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._listening.set()
            if resync:
                log.info("change events from %s back", self.where)
                self._send(Change("resync", (), True, self.host))
            while not self._stop.is_set():
                for note in conn.notifies(timeout=POLL_S):
                    change = parse_payload(note.payload)
                    if change is not None:
                        self._send(change)

    def _send(self, change: Change) -> None:
        try:
            self.callback(change)
        except Exception:  # a subscriber's fault must not stop the events
            log.exception("a change event's subscriber failed")
