"""MigrationManager: one per process; starts, pauses, resumes and reports Stage 2.

The HTTP API, the CLI and the server's startup hook all go through it. It owns at most
one ``MigrationWorker`` thread and the ``StateTracker`` whose state lives in the DB:

* ``start_full_migration(legacy_db_path=None, legacy_images_dir=None)``: a new run. With
  a legacy DB, Stage 1 runs first (the ``legacy_import`` callable that ``Services``
  passes in: this package never imports the legacy one), then Stage 2; without one,
  every pending item not processed yet is queued.
* ``pause_processing()``: hashing stops within one chunk, mid-file.
* ``resume_processing()``: in this process, the paused files continue from their byte
  offset; after a restart (state RUNNING, PAUSED or ERROR with no worker here) the run
  continues with its counters, redoing no finished item.
* ``recover()``: at server start, an interrupted RUNNING run resumes by itself.
* ``get_status()``: the state, with progress 0-100 and the file being hashed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from hikaze_mm.database import now_ms
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError, NotFoundError, ValidationError
from hikaze_mm.jobs import BackgroundJob, JobControl, JobProgress, JobRun, tidy_search_index
from hikaze_mm.params import check_strategy, parse_path
from hikaze_mm.pending.promotion import Promoter
from hikaze_mm.pending.state import MigrationState, StateTracker
from hikaze_mm.pending.worker import LegacyImport, MigrationWorker
from hikaze_mm.policy import DEFAULT_WORKER_STRATEGY, WORKER_STRATEGIES

RESUMABLE = ("RUNNING", "PAUSED", "ERROR")


class MigrationManager:
    def __init__(
        self,
        db: Library,
        promoter: Promoter,
        legacy_import: LegacyImport | None = None,
        *,
        workers: int = 2,
        conf_strategy: str = DEFAULT_WORKER_STRATEGY,
        save_interval: float = 1.0,
    ) -> None:
        self.db = db
        self.promoter = promoter
        self.legacy_import = legacy_import
        self.workers = workers
        self.default_conf_strategy = (
            check_strategy(conf_strategy, name="conflict_policy") or DEFAULT_WORKER_STRATEGY
        )
        self.tracker = StateTracker(db, save_interval=save_interval)
        self._lock = threading.Lock()
        self.job = BackgroundJob(
            "migration",
            progress=self._job_progress,
            after_run=tidy_search_index(db.listing),
            release=db.release_thread,
        )

    # ------------------------------------------------------------ queries
    @property
    def active(self) -> bool:
        """Whether this process runs a worker now (running or paused)."""
        return self.job.running

    def get_status(self) -> dict[str, Any]:
        if not self.active:
            self.tracker.reload()  # another process (the CLI, the server) may run it
        state = self.tracker.snapshot()
        return status_dict(state, active=self.active)

    def _job_progress(self) -> JobProgress:
        """The bytes promoted of the bytes to promote (as the status counts them)."""
        stats = status_dict(self.tracker.snapshot(), active=self.active)
        return JobProgress(
            stats["stats"]["done_bytes"], stats["stats"]["total_bytes"], "bytes", stats["phase"]
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker ends; False if it still runs after ``timeout`` seconds."""
        return self.job.wait(timeout)

    # ------------------------------------------------------------ control
    def start_full_migration(
        self,
        legacy_db_path: str | Path | None = None,
        legacy_images_dir: str | Path | None = None,
        *,
        conf_strategy: str | None = None,
    ) -> dict[str, Any]:
        chosen = check_strategy(conf_strategy, name="conflict_policy") or self.default_conf_strategy
        legacy_db = _existing_path(legacy_db_path, "legacy_db_path", folder=False)
        legacy_images = _existing_path(legacy_images_dir, "legacy_images_dir", folder=True)
        if legacy_images and not legacy_db:
            raise ValidationError("legacy_images_dir needs legacy_db_path")
        if legacy_db and self.legacy_import is None:
            raise ValidationError("this library cannot import a legacy database")
        with self._lock:
            if self.active:
                raise ConflictError("a migration is already running; pause or resume it")
            self.tracker.begin_run(
                conf_strategy=chosen, legacy_db=legacy_db, legacy_images=legacy_images
            )
            self._start_worker(chosen)
        return self.get_status()

    def pause_processing(self) -> dict[str, Any]:
        with self._lock:
            status = self.tracker.snapshot().status
            if self.active:
                self._control().pause()
                if status == "RUNNING":
                    self.tracker.update(status="PAUSED")
            elif status == "RUNNING":  # interrupted run: keep it paused until resumed
                self.tracker.update(status="PAUSED")
            elif status != "PAUSED":
                raise ConflictError(f"no migration to pause (status {status})")
        return self.get_status()

    def resume_processing(self) -> dict[str, Any]:
        with self._lock:
            if not self.active:
                self.tracker.reload()
            state = self.tracker.snapshot()
            if self.active:
                self._control().resume()
                if state.status == "PAUSED":
                    self.tracker.update(status="RUNNING")
            elif state.status in RESUMABLE:
                self.tracker.update(status="RUNNING", error=None)
                self._start_worker(
                    state.conf_strategy if state.conf_strategy in WORKER_STRATEGIES else None
                )
            else:
                raise ConflictError(
                    f"no migration to resume (status {state.status}); start one instead"
                )
        return self.get_status()

    def recover(self, *, auto_resume: bool = True) -> dict[str, Any]:
        """After a restart (server startup): tidy what a killed process left behind.

        Rows left ``hashing`` by a dead promotion go back to ``new`` (ids promoted in this
        process right now are kept), and a run that was RUNNING resumes.
        """
        self.db.pending.reset_status("hashing", "new", keep=self.promoter.locks.ids.held())
        if auto_resume and not self.active and self.tracker.snapshot().status == "RUNNING":
            with contextlib.suppress(ConflictError):  # another caller resumed it first
                self.resume_processing()
        return self.get_status()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the worker (within a chunk); the persisted state stays resumable."""
        self.job.close(timeout)

    def _control(self) -> JobControl:
        run = self.job.current
        assert run is not None
        return run.control

    def _start_worker(self, conf_strategy: str | None) -> None:
        worker = MigrationWorker(
            db=self.db,
            promoter=self.promoter,
            legacy_import=self.legacy_import,
            tracker=self.tracker,
            workers=self.workers,
            conf_strategy=conf_strategy or self.default_conf_strategy,
        )

        def target(run: JobRun) -> dict[str, Any]:
            worker.run(run.control)
            run.control.check()  # a cancelled run ends cancelled
            return status_dict(self.tracker.snapshot(), active=False)

        self.job.start(target)


def status_dict(state: MigrationState, *, active: bool) -> dict[str, Any]:
    """The public shape of the state (``GET /api/migration/status``, ``hikaze-mm status``)."""
    current = sorted(state.current.values(), key=lambda item: item["id"])
    in_flight = sum(int(item.get("bytes_done") or 0) for item in current)
    return {
        "status": state.status,
        "phase": state.phase,
        "progress": state.progress(),
        "current_file": current[0]["path"] if current else None,
        "current_item": current[0] if current else None,
        "current_items": current,
        "stats": {
            "total_items": state.total_items,
            "processed_items": state.processed_items,
            **state.counts,
            "total_bytes": state.total_bytes,
            "done_bytes": state.done_bytes + in_flight,
            "bytes_read": state.bytes_read,
        },
        "policy": state.conf_strategy,
        "started_at": state.started_at,
        "updated_at": state.updated_at,
        "finished_at": state.finished_at,
        "error": state.error,
        "active": active,
        "now": now_ms(),
    }


def _existing_path(value: str | Path | None, name: str, *, folder: bool) -> str | None:
    """The resolved path of an existing file (or folder), None when not given."""
    if value is None or value == "":
        return None
    path = parse_path(os.fspath(value) if isinstance(value, Path) else value, name)
    try:
        found = path.is_dir() if folder else path.is_file()
    except OSError as exc:
        raise ValidationError(f"{name}: {exc.strerror or exc}") from None
    if not found:
        raise NotFoundError(f"{name}: no such {'folder' if folder else 'file'}: {path}")
    return str(path.resolve())
