"""MigrationWorker: runs Stage 1 (if asked) and then Stage 2, in the manager's job thread.

Stage 2 works in passes. A pass takes every pending item still to do (status ``new``, or
``hashing`` when a killed run left it mid-file), skips the ids this run already tried and
the ids someone else is promoting right now, and hands them to ``workers`` threads that
hash several files at once (hashlib and file reads release the GIL, so this scales with
cores). A pass that finds nothing ends the run.

Pausing flips the shared ``JobControl``: a thread in the middle of a file stops within
one chunk and keeps its place; threads between items wait. Cancelling (shutdown) stops
the threads the same way and leaves the persisted state RUNNING or PAUSED, so the next
start of the process resumes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hikaze_mm.database import now_ms
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import LockedError, NotFoundError
from hikaze_mm.hashing import HashCancelled
from hikaze_mm.jobs import JobCancelled, JobControl
from hikaze_mm.pending.promotion import (
    PendingFileError,
    PendingFileMissing,
    Promoter,
    PromotionConflict,
)
from hikaze_mm.pending.state import StateTracker

log = logging.getLogger("hikaze_mm.worker")

# Stage 1 as the worker runs it first when asked: (legacy_db_path, legacy_images_dir).
LegacyImport = Callable[[str, "str | None"], object]

TODO_STATUSES = ("new", "hashing")


@dataclass(frozen=True)
class WorkItem:
    id: int
    path: str
    size: int


class MigrationWorker:
    def __init__(
        self,
        *,
        db: Library,
        promoter: Promoter,
        legacy_import: LegacyImport | None,
        tracker: StateTracker,
        workers: int,
        conf_strategy: str,
    ) -> None:
        self.db = db
        self.promoter = promoter
        self.legacy_import = legacy_import
        self.tracker = tracker
        self.control = JobControl()
        self.workers = max(1, workers)
        self.conf_strategy = conf_strategy
        self._attempted: set[int] = set()

    # ------------------------------------------------------------ the run
    def run(self, control: JobControl) -> None:
        """The whole run, in the calling thread (the manager's job); never raises (a
        cancelled run returns, its persisted state resumable)."""
        self.control = control
        try:
            state = self.tracker.snapshot()
            if state.phase == "legacy_import":
                assert state.legacy_db_path is not None and self.legacy_import is not None
                self.legacy_import(state.legacy_db_path, state.legacy_images_dir)
                self.tracker.update(phase="promotion")
            self._promote_all()
            if self.control.cancelled:
                return  # shutdown: the persisted state stays RUNNING/PAUSED for a resume
            self.tracker.update(status="COMPLETED", current={}, finished_at=now_ms())
        except JobCancelled:  # Stage 1 stopped between rows: it resumes with the run
            return
        except Exception as exc:
            log.exception("migration failed")
            self.tracker.update(status="ERROR", error=str(exc) or type(exc).__name__)

    def _promote_all(self) -> None:
        while not self.control.cancelled:
            items = self._todo()
            if not items:
                return
            self.tracker.set_remaining(len(items), sum(i.size for i in items))
            queue = deque(items)
            threads = [
                threading.Thread(target=self._drain, args=(queue,), name=f"hikaze-promote-{n}")
                for n in range(min(self.workers, len(items)))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    def _todo(self) -> list[WorkItem]:
        """Pending items this run has not tried yet, oldest id first."""
        busy = self.promoter.locks.ids.held()
        items = []
        for pid, path, size_bytes in self.db.pending.ids(TODO_STATUSES):
            if pid in self._attempted or pid in busy:
                continue
            try:
                size = os.stat(path).st_size
            except OSError:
                size = int(size_bytes or 0)
            items.append(WorkItem(pid, path, size))
        return items

    def _drain(self, queue: deque[WorkItem]) -> None:
        try:
            while True:
                self.control.wait_until_running()
                if self.control.cancelled:
                    return
                try:
                    item = queue.popleft()  # deque.popleft is atomic
                except IndexError:
                    return
                self._attempted.add(item.id)
                try:
                    self._one(item)
                except HashCancelled:
                    return
        finally:
            self.db.release_thread()  # each pass starts new threads

    # ------------------------------------------------------------ one item
    def _one(self, item: WorkItem) -> None:
        tracker = self.tracker
        tracker.item_started(item.id, item.path, item.size)
        try:
            self.promoter.promote(
                item.id,
                self.conf_strategy,
                control=self.control,
                progress=lambda done, total: tracker.item_progress(item.id, done, total),
                on_outcome=tracker.on_outcome,
            )
        except (PromotionConflict, PendingFileMissing, PendingFileError):
            pass  # recorded (row marked, counted) by the promoter through on_outcome
        except (LockedError, NotFoundError):  # the API is promoting it, or it is gone
            tracker.item_dropped(item.id, uncount=True)
        except HashCancelled:
            tracker.item_dropped(item.id, uncount=False)
            raise
        except Exception as exc:
            log.exception("promoting pending model %s failed", item.id)
            self._record_failure(item, f"{type(exc).__name__}: {exc}")

    def _record_failure(self, item: WorkItem, reason: str) -> None:
        try:
            with self.db.transaction():
                self.db.pending.update(item.id, status="error", error=reason)
                self.tracker.on_outcome("error", {"id": item.id, "path": item.path})
        except NotFoundError:
            self.tracker.item_dropped(item.id, uncount=True)
