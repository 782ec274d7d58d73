"""One Stage 1 import at a time, with progress another thread can read.

The HTTP route (``start``: checks the input, then imports in the background), the CLI and
Stage 2's full migration (``run_blocking``) all go through this object, so two imports
never overlap and ``status()`` always tells. Within a process a ``BackgroundJob`` guards
it; across processes (the CLI while a server runs on the same data dir) an advisory lock
file beside the library does, where the OS offers ``fcntl``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hikaze_mm.database.errors import StorageError
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError
from hikaze_mm.images import ImageStore
from hikaze_mm.jobs import BackgroundJob, JobProgress, JobRun, tidy_search_index
from hikaze_mm.legacy.importer import STATE_KEY, ProgressFn, check_images_dir, import_snapshot
from hikaze_mm.legacy.snapshots import LegacySnapshot
from hikaze_mm.process_lock import ProcessLock


class LegacyImportJob:
    def __init__(
        self,
        db: Library,
        images: ImageStore,
        *,
        work_dir: Path,
        lock_path: Path,
        workers: int | None = None,
    ) -> None:
        """``work_dir`` holds the private copies of legacy databases; ``lock_path`` is the
        lock one import at a time holds across processes (both from the configuration)."""
        self.db = db
        self.images = images
        self.work_dir = work_dir
        self.lock_path = lock_path
        self.workers = workers
        self.job = BackgroundJob(
            "legacy-import",
            title="legacy import",
            progress=self._job_progress,
            after_run=tidy_search_index(db.listing),
            release=db.release_thread,
        )
        self._lock = threading.Lock()
        self._progress: dict[str, Any] = {}
        # The last report survives restarts (kept in migration_state by the importer).
        try:
            self._last_report: dict[str, Any] | None = db.state.get(STATE_KEY)
        except StorageError:
            self._last_report = None

    def status(self) -> dict[str, Any]:
        """``{running, progress: {phase, done, total, updated_at}, last_report, error,
        started_at, finished_at}``; ``last_report`` is the last import that finished."""
        job = self.job.status()
        with self._lock:
            return {
                "running": job["running"],
                "progress": dict(self._progress),
                "last_report": self._last_report,
                "error": job["error"],
                "started_at": job["started_at"],
                "finished_at": job["finished_at"],
            }

    def _job_progress(self) -> JobProgress:
        with self._lock:
            progress = dict(self._progress)
        phase = progress.get("phase")
        unit = "tags" if phase == "tags" else "models"
        return JobProgress(progress.get("done", 0), progress.get("total", 0), unit, phase)

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
        """Hold the import's lock file exclusively, or raise ConflictError."""
        lock = ProcessLock(self.lock_path)
        if not lock.try_acquire():
            raise ConflictError("a legacy import is already running in another process")
        try:
            yield
        finally:
            lock.release()

    def _open(
        self, legacy_db_path: str | Path, legacy_images_dir: str | Path | None
    ) -> tuple[contextlib.ExitStack, LegacySnapshot, Path | None]:
        """Check the input and take the process lock: ``(held, snapshot, images dir)``.

        ``held`` releases the lock and deletes the snapshot when closed. Raises 400, 422
        or 409 (another process imports) and then holds nothing.
        """
        with self._lock:
            self._progress = {"phase": "starting", "done": 0, "total": 0}
        held = contextlib.ExitStack()
        try:
            images_dir = check_images_dir(legacy_images_dir)
            held.enter_context(self._process_lock())
            self._on_progress("reading", 0, 0)
            snapshot = held.enter_context(LegacySnapshot.open(legacy_db_path, root=self.work_dir))
        except BaseException:
            held.close()
            raise
        return held, snapshot, images_dir

    def _importer(
        self,
        held: contextlib.ExitStack,
        snapshot: LegacySnapshot,
        images_dir: Path | None,
        progress: ProgressFn | None,
    ):
        def on_progress(phase: str, done: int, total: int) -> None:
            self._on_progress(phase, done, total)
            if progress is not None:
                progress(phase, done, total)

        def target(run: JobRun) -> dict[str, Any]:
            with held:
                report = import_snapshot(
                    snapshot,
                    images_dir,
                    db=self.db,
                    images=self.images,
                    progress=on_progress,
                    workers=self.workers,
                    control=run.control,
                )
            result = report.to_dict()
            with self._lock:
                self._last_report = result
            return result

        return target

    def start(
        self, legacy_db_path: str | Path, legacy_images_dir: str | Path | None = None
    ) -> dict[str, Any]:
        """Check the input here (400, 422; 409 while an import runs), then import in the
        background; returns the status. Progress and the report: ``status()``."""
        run = self.job.begin()
        try:
            held, snapshot, images_dir = self._open(legacy_db_path, legacy_images_dir)
        except BaseException as exc:
            self.job.abandon(run, exc)
            raise
        self.job.start(self._importer(held, snapshot, images_dir, None), run)
        return self.status()

    def run_blocking(
        self,
        legacy_db_path: str | Path,
        legacy_images_dir: str | Path | None = None,
        *,
        progress: ProgressFn | None = None,
    ) -> dict[str, Any]:
        """Run Stage 1 in this thread and return the report as a dict.

        Raises ConflictError if an import is running (here or in another process), and
        whatever the importer raises for bad input. ``progress`` is called as well as
        the status this object keeps.
        """

        def target(job_run: JobRun) -> dict[str, Any]:
            held, snapshot, images_dir = self._open(legacy_db_path, legacy_images_dir)
            return self._importer(held, snapshot, images_dir, progress)(job_run)

        return self.job.run(target)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background import; True when none is running."""
        return self.job.wait(timeout)
