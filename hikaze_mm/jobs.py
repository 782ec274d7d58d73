"""``BackgroundJob``: one kind of background work, one run at a time.

The scan, the Stage 1 legacy import and the Stage 2 worker each own one. A job

* starts a run in a thread of its own (``start``) or in the calling thread (``run``, for
  the CLI); a second start while a run is going raises ConflictError (HTTP 409);
* hands the run a ``HashControl``, so ``cancel`` (and, for those that support it, pause)
  reaches the work within one chunk;
* keeps the status of the current run, and the report or error of the last one, for
  ``status()``;
* waits for its run (``wait``), and refuses new runs once closed (``close``);
* merges the text index when a run leaves it fragmented (``tidy_search_index``: the
  jobs write models in bulk, and a fragmented index reads several times slower);
* releases the database connection of its thread when a run ends, so a server that runs
  thousands of scans keeps a bounded number of connections open.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hikaze_mm.database import DatabaseManager, now_ms
from hikaze_mm.errors import ConflictError, HikazeError
from hikaze_mm.hashing import HashCancelled, HashControl

log = logging.getLogger(__name__)


@dataclass
class JobRun:
    """One run of a job: its control, its times, and how it ended."""

    control: HashControl = field(default_factory=HashControl)
    started_at: int = field(default_factory=now_ms)
    finished_at: int | None = None
    error: str | None = None
    report: Any = None

    @property
    def cancelled(self) -> bool:
        return self.control.cancelled


class JobCancelled(Exception):
    """A run stopped because its job was cancelled (work already done stays done)."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HikazeError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class BackgroundJob:
    def __init__(self, name: str, db: DatabaseManager | None = None) -> None:
        self.name = name
        self.db = db
        self._lock = threading.Lock()
        self._run: JobRun | None = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------ reading
    @property
    def running(self) -> bool:
        with self._lock:
            return self._running

    @property
    def current(self) -> JobRun | None:
        """The running run, or the last one (None before the first)."""
        with self._lock:
            return self._run

    def status(self) -> dict[str, Any]:
        """``{running, started_at, finished_at, error, last_report}`` of the current or last run."""
        with self._lock:
            run, running = self._run, self._running
        return {
            "running": running,
            "started_at": run.started_at if run else None,
            "finished_at": run.finished_at if run else None,
            "error": run.error if run else None,
            "last_report": run.report if run else None,
        }

    # ------------------------------------------------------------ running
    def begin(self) -> JobRun:
        """Claim the job for a new run (ConflictError while one runs); then pass it to
        ``run`` or ``start`` (or end it with ``abandon``)."""
        with self._lock:
            if self._closed:
                raise ConflictError(f"the {self.name} service is shut down")
            if self._running:
                raise ConflictError(f"a {self.name} is already running")
            self._running = True
            self._run = JobRun()
            return self._run

    def _execute(self, run: JobRun, target: Callable[[JobRun], Any]) -> Any:
        """Run ``target(run)`` in this thread; keep its report (or error) for ``status()``."""
        try:
            run.report = target(run)
            return run.report
        except (JobCancelled, HashCancelled):
            run.error = "cancelled"
            raise
        except BaseException as exc:
            run.error = _reason(exc)
            raise
        finally:
            self._tidy()
            with self._lock:
                run.finished_at = now_ms()
                self._running = False

    def _tidy(self) -> None:
        if self.db is None:
            return
        try:
            self.db.listing.tidy_search_index()
        except sqlite3.Error as exc:  # busy or read-only: the next run tries again
            log.warning("could not merge the search index: %s", exc)

    def abandon(self, run: JobRun, exc: BaseException) -> None:
        """End a run from ``begin`` that failed before its work started (records ``exc``)."""
        with self._lock:
            run.error = _reason(exc)
            run.finished_at = now_ms()
            self._running = False

    def run(self, target: Callable[[JobRun], Any], claimed: JobRun | None = None) -> Any:
        """Run ``target`` in the calling thread and return its report (exceptions propagate);
        on a run claimed with ``begin``, or a new one (ConflictError while one runs)."""
        return self._execute(claimed or self.begin(), target)

    def start(self, target: Callable[[JobRun], Any], claimed: JobRun | None = None) -> JobRun:
        """Run ``target`` in a new thread, on a run claimed with ``begin`` or a new one."""
        run = claimed or self.begin()

        def main() -> None:
            try:
                self._execute(run, target)
            except (JobCancelled, HashCancelled):
                pass
            except Exception:
                log.exception("%s failed", self.name)
            finally:
                if self.db is not None:
                    self.db.release_thread()

        thread = threading.Thread(target=main, name=f"hikaze-{self.name}", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()
        return run

    def cancel(self) -> None:
        """Ask the running run to stop (within one chunk of hashing, or one step)."""
        with self._lock:
            run = self._run if self._running else None
        if run is not None:
            run.control.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background run; True when none is running."""
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return not self.running

    def close(self, timeout: float | None = None) -> None:
        """Refuse new runs, cancel the running one and wait for it."""
        with self._lock:
            self._closed = True
        self.cancel()
        self.wait(timeout)
