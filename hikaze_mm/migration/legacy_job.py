"""One Stage 1 import at a time, with progress another thread can read.

The HTTP route, the CLI and ``MigrationManager.start_full_migration`` all run Stage 1
through this object, so two imports never overlap and ``status()`` always tells.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from hikaze_mm.database import DatabaseManager
from hikaze_mm.errors import ConflictError
from hikaze_mm.images import ImageStore


class LegacyImportJob:
    def __init__(self, db: DatabaseManager, images: ImageStore, *, workers: int | None = None):
        self.db = db
        self.images = images
        self.workers = workers
        self._lock = threading.Lock()
        self._running = False
        self._progress: dict[str, Any] = {}
        self._last_report: dict[str, Any] | None = None
        self._error: str | None = None

    def status(self) -> dict[str, Any]:
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

    def run_blocking(
        self, legacy_db_path: str | Path, legacy_images_dir: str | Path | None = None
    ) -> dict[str, Any]:
        """Run Stage 1 in this thread; raise ConflictError if an import is running."""
        from hikaze_mm.migration.importer import import_legacy_data

        with self._lock:
            if self._running:
                raise ConflictError("a legacy import is already running")
            self._running = True
            self._progress = {"phase": "starting", "done": 0, "total": 0}
            self._error = None
        try:
            report = import_legacy_data(
                legacy_db_path,
                legacy_images_dir,
                db=self.db,
                images=self.images,
                progress=self._on_progress,
                workers=self.workers,
            )
            result = report.to_dict()
            with self._lock:
                self._last_report = result
            return result
        except BaseException as exc:
            with self._lock:
                self._error = str(exc)
            raise
        finally:
            with self._lock:
                self._running = False
