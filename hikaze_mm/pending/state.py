"""The persistent state of Stage 2 (``MigrationState``) and the tracker that keeps it.

The state lives in the DB (``migration_state`` key ``stage2``), so a restarted process
reports it and can resume. Every change to it is written inside a DB transaction, and an
item's outcome is counted inside the very transaction that promotes the item (the
promoter's ``on_outcome`` hook): after a kill, the counters match the library exactly,
and no finished item is counted or done twice.

Lock order: the SQLite write lock first, then the tracker's lock, never the other way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hikaze_mm.database import now_ms
from hikaze_mm.database.interfaces import Library

STATE_KEY = "stage2"
STATUSES = ("IDLE", "RUNNING", "PAUSED", "COMPLETED", "ERROR")
COUNTERS = ("promoted", "merged", "overridden", "deleted", "conflicts", "errors")
# Outcome reported by the promoter -> counter it increments.
OUTCOME_COUNTER = {
    "created": "promoted",
    "merged": "merged",
    "overridden": "overridden",
    "deleted": "deleted",
    "conflict": "conflicts",
    "error": "errors",
}


@dataclass
class MigrationState:
    status: str = "IDLE"
    # "legacy_import" (Stage 1 runs first) or "promotion" (Stage 2); None when idle.
    phase: str | None = None
    conf_strategy: str = "merge"
    legacy_db_path: str | None = None
    legacy_images_dir: str | None = None
    total_items: int = 0
    processed_items: int = 0
    total_bytes: int = 0
    done_bytes: int = 0  # sizes of the finished items
    bytes_read: int = 0  # bytes actually read by the hasher in this run
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    # Items being hashed now: str(id) -> {id, path, bytes_done, bytes_total, started_at}.
    current: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: int | None = None
    updated_at: int | None = None
    finished_at: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MigrationState:
        state = cls()
        if not data:
            return state
        if "policy" in data:  # the field's name before it was conf_strategy
            data = {"conf_strategy": data["policy"], **data}
        for key, value in data.items():
            if hasattr(state, key):
                setattr(state, key, value)
        if state.status not in STATUSES:
            state.status = "ERROR"
        state.counts = {**dict.fromkeys(COUNTERS, 0), **(state.counts or {})}
        state.current = dict(state.current or {})
        return state

    def progress(self) -> float:
        """0-100: finished items plus the hashed fraction of the ones in flight."""
        if self.status == "COMPLETED":
            return 100.0
        if self.total_items <= 0:
            return 0.0
        partial = sum(
            min(1.0, item["bytes_done"] / item["bytes_total"]) if item.get("bytes_total") else 0.0
            for item in self.current.values()
        )
        return round(min(100.0, 100.0 * (self.processed_items + partial) / self.total_items), 2)


def state_key(db: Library) -> str:
    """Where the run state lives: one per library, one per host in a shared catalog (two
    hosts each running Stage 2 share the rows through claims, not a run's counters)."""
    return f"{STATE_KEY}@{db.host_name}" if db.shared else STATE_KEY


class StateTracker:
    """The in-memory state of this process's run, written through to the DB."""

    def __init__(self, db: Library, *, save_interval: float = 1.0) -> None:
        self.db = db
        self.key = state_key(db)
        self.save_interval = save_interval
        self._lock = threading.Lock()
        self._last_save = 0.0
        self.state = MigrationState.from_dict(db.state.get(self.key))

    # ------------------------------------------------------------ reading
    def snapshot(self) -> MigrationState:
        with self._lock:
            return MigrationState.from_dict(self.state.to_dict())

    def reload(self) -> None:
        """Read the state another process may have written."""
        data = self.db.state.get(self.key)
        with self._lock:
            self.state = MigrationState.from_dict(data)

    # ------------------------------------------------------------ writing
    def change(self, mutate: Callable[[MigrationState], None] | None = None) -> None:
        """Apply ``mutate`` and persist, in one transaction (nests in the caller's). The
        state is held first, so that two threads' changes persist in the order they
        were made (otherwise an earlier count could be written last, and stay)."""
        with self.db.transaction():
            self.db.state.hold(self.key)
            with self._lock:
                if mutate is not None:
                    mutate(self.state)
                self.state.updated_at = now_ms()
                data = self.state.to_dict()
                self._last_save = time.monotonic()
            self.db.state.set(self.key, data)

    def update(self, **fields: Any) -> None:
        def mutate(state: MigrationState) -> None:
            for key, value in fields.items():
                setattr(state, key, value)

        self.change(mutate)

    def begin_run(
        self, *, conf_strategy: str, legacy_db: str | None, legacy_images: str | None
    ) -> None:
        def mutate(state: MigrationState) -> None:
            fresh = MigrationState(
                status="RUNNING",
                phase="legacy_import" if legacy_db else "promotion",
                conf_strategy=conf_strategy,
                legacy_db_path=legacy_db,
                legacy_images_dir=legacy_images,
                started_at=now_ms(),
            )
            for key, value in fresh.to_dict().items():
                setattr(state, key, value)

        self.change(mutate)

    def set_remaining(self, items: int, size: int) -> None:
        """Nothing in flight: the run's total is what is done plus ``items`` still to do."""

        def mutate(state: MigrationState) -> None:
            state.current = {}
            state.total_items = state.processed_items + items
            state.total_bytes = state.done_bytes + size

        self.change(mutate)

    # ------------------------------------------------------------ per item (worker threads)
    def item_started(self, pending_id: int, path: str, size: int) -> None:
        with self._lock:
            self.state.current[str(pending_id)] = {
                "id": pending_id,
                "path": path,
                "bytes_done": 0,
                "bytes_total": size,
                "started_at": now_ms(),
            }
        self._maybe_save()

    def item_progress(self, pending_id: int, done: int, total: int) -> None:
        with self._lock:
            item = self.state.current.get(str(pending_id))
            if item is None:
                return
            last = item["bytes_done"]
            # A job continues from its offset; a new job (a restart of this file) starts at 0.
            self.state.bytes_read += done - last if done >= last else done
            item["bytes_done"] = done
            item["bytes_total"] = total
        self._maybe_save()

    def _maybe_save(self) -> None:
        if time.monotonic() - self._last_save >= self.save_interval:
            self.change()

    def on_outcome(self, action: str, info: dict[str, Any]) -> None:
        """The promoter's hook: runs inside the transaction that records the outcome."""

        def mutate(state: MigrationState) -> None:
            item = state.current.pop(str(info["id"]), None)
            counter = OUTCOME_COUNTER.get(action)
            if counter:
                state.counts[counter] = state.counts.get(counter, 0) + 1
            state.processed_items += 1
            if item is not None:
                state.done_bytes += int(item.get("bytes_total") or 0)

        self.change(mutate)

    def item_dropped(self, pending_id: int, *, uncount: bool) -> None:
        """The item ended without an outcome; ``uncount`` removes it from the total."""

        def mutate(state: MigrationState) -> None:
            item = state.current.pop(str(pending_id), None)
            if uncount:
                state.total_items = max(state.processed_items, state.total_items - 1)
                if item is not None:
                    state.total_bytes -= int(item.get("bytes_total") or 0)

        self.change(mutate)
