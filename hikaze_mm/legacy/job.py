"""One Stage 1 import at a time, with progress another thread can read.

The HTTP route, the CLI and ``MigrationManager.start_full_migration`` all run Stage 1
through this object, so two imports never overlap and ``status()`` always tells. Within a
process a flag guards it; across processes (the CLI while a server runs on the same data
dir) an advisory lock file beside the library does, where the OS offers ``fcntl``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hikaze_mm.database import DatabaseManager
from hikaze_mm.errors import ConflictError, HikazeError
from hikaze_mm.images import ImageStore
from hikaze_mm.legacy.importer import STATE_KEY, ProgressFn, import_legacy_data
from hikaze_mm.process_lock import ProcessLock


class LegacyImportJob:
    def __init__(self, db: DatabaseManager, images: ImageStore, *, workers: int | None = None):
        self.db = db
        self.images = images
        self.workers = workers
        self._lock = threading.Lock()
        self._running = False
        self._progress: dict[str, Any] = {}
        self._error: str | None = None
        # The last report survives restarts (kept in migration_state by the importer).
        try:
            self._last_report: dict[str, Any] | None = db.state.get(STATE_KEY)
        except sqlite3.Error:
            self._last_report = None

    def status(self) -> dict[str, Any]:
        """``{running, progress: {phase, done, total, updated_at}, last_report, error}``."""
        with self._lock:
            return {
                "running": self._running,
                "progress": dict(self._progress),
                "last_report": self._last_report,
                "error": self._error,
            }

    def _on_progress(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self._progress = {
                "phase": phase,
                "done": done,
                "total": total,
                "updated_at": time.time(),
            }

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Hold ``<library>.legacy-import.lock`` exclusively, or raise ConflictError."""
        lock = ProcessLock(Path(f"{self.db.path}.legacy-import.lock"))
        if not lock.try_acquire():
            raise ConflictError("a legacy import is already running in another process")
        try:
            yield
        finally:
            lock.release()

    def run_blocking(
        self,
        legacy_db_path: str | Path,
        legacy_images_dir: str | Path | None = None,
        *,
        progress: ProgressFn | None = None,
    ) -> dict[str, Any]:
        """Run Stage 1 in this thread and return the report as a dict.

        Raises ConflictError if an import is running (here or in another process), and
        whatever ``import_legacy_data`` raises for bad input. ``progress`` is called as
        well as the status this object keeps.
        """
        with self._lock:
            if self._running:
                raise ConflictError("a legacy import is already running")
            self._running = True
            self._progress = {"phase": "starting", "done": 0, "total": 0}
            self._error = None

        def on_progress(phase: str, done: int, total: int) -> None:
            self._on_progress(phase, done, total)
            if progress is not None:
                progress(phase, done, total)

        try:
            with self._process_lock():
                report = import_legacy_data(
                    legacy_db_path,
                    legacy_images_dir,
                    db=self.db,
                    images=self.images,
                    progress=on_progress,
                    workers=self.workers,
                )
            result = report.to_dict()
            with self._lock:
                self._last_report = result
            return result
        except BaseException as exc:
            with self._lock:
                self._error = exc.detail if isinstance(exc, HikazeError) else str(exc)
            raise
        finally:
            with self._lock:
                self._running = False
