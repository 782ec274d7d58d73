"""The one job model: every kind of background work is a ``BackgroundJob`` in a ``JobRegistry``.

The scan, the Stage 1 legacy import, Stage 2, the base probe, the Civitai lookup and the
search index each own one ``BackgroundJob``; ``Services`` puts them all in one
``JobRegistry``, which lists them (``GET /api/jobs``) and closes them (cancel all, then
wait for each).

A job

* starts a run in a thread of its own (``start``) or in the calling thread (``run``, for
  the CLI); a second start while a run is going raises ConflictError (HTTP 409);
* hands the run a ``JobControl``, so ``cancel`` (and, for those that support it, pause)
  reaches the work within one step (a hash chunk, a folder, a row);
* keeps the status of the current run, and the report or error of the last one, for
  ``status()`` and ``snapshot()`` (the same fields for every job);
* calls its hooks: ``after_run`` when a run ends, in the run's thread (the jobs that write
  models in bulk merge the text index there: ``tidy_search_index``), and ``release`` when
  a background run's thread ends (its database connection is closed, so a server that
  runs thousands of scans keeps a bounded number of connections open);
* waits for its run (``wait``), and refuses new runs once closed (``close``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from hikaze_mm.database.errors import HeldElsewhereError, StorageError
from hikaze_mm.database.holds import Hold
from hikaze_mm.database.values import now_ms
from hikaze_mm.errors import ConflictError, HikazeError, NotFoundError

log = logging.getLogger(__name__)

Hook = Callable[[], None]
RECENT_RUNS = 16  # the runs of a job ``snapshot(started_at)`` still finds


class JobCancelled(Exception):
    """A run stopped because its job was cancelled (work already done stays done)."""


class JobControl:
    """Pause, resume and cancel: shared by a job's owner and every step of its run (each
    hash job of a scan or a promotion looks at it between chunks)."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()

    def wait_until_running(self, timeout: float | None = None) -> bool:
        """Block while paused; True once running (or cancelled)."""
        return self._running.wait(timeout)

    def check(self) -> None:
        """Raise JobCancelled once cancelled (a step boundary of a run)."""
        if self._cancelled.is_set():
            raise JobCancelled("cancelled")


@dataclass(frozen=True)
class JobProgress:
    """How far a run is: ``done`` of ``total`` ``unit`` (items, files, models, bytes...),
    and the ``phase`` it is in when the job has phases."""

    done: int = 0
    total: int = 0
    unit: str = "items"
    phase: str | None = None


@dataclass
class JobRun:
    """One run of a job: its control, its times, and how it ended."""

    control: JobControl = field(default_factory=JobControl)
    started_at: int = field(default_factory=now_ms)
    finished_at: int | None = None
    error: str | None = None
    report: Any = None
    progress: JobProgress | None = None  # kept when the run ends

    @property
    def cancelled(self) -> bool:
        return self.control.cancelled


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HikazeError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _plain(report: Any) -> Any:
    """A report as JSON-ready values (reports that are objects have ``to_dict``)."""
    to_dict = getattr(report, "to_dict", None)
    return to_dict() if callable(to_dict) else report


def tidy_search_index(listing: Any) -> Hook:
    """The ``after_run`` hook of jobs that write models in bulk: merge the text index when
    the run left it fragmented (a fragmented index reads several times slower). A busy or
    read-only library is skipped: the next run tries again."""

    def hook() -> None:
        try:
            listing.tidy_search_index()
        except StorageError as exc:
            log.warning("could not merge the search index: %s", exc.detail)

    return hook


class BackgroundJob:
    def __init__(
        self,
        name: str,
        *,
        title: str | None = None,
        progress: Callable[[], JobProgress] | None = None,
        view: Callable[[Any], Any] = _plain,
        after_run: Hook | None = None,
        release: Hook | None = None,
        hold: Callable[[], Hold] | None = None,
    ) -> None:
        """``name`` names the job in ``GET /api/jobs/{name}``; ``title`` in messages ("a
        scan is already running"). ``progress`` reads the running run's progress from its
        owner, ``view`` turns a report into what ``snapshot()`` shows. ``hold``: what a run
        holds across the catalog while it runs (``Library.hold``), so that one run of the
        job goes at a time on all its hosts."""
        self.name = name
        self.title = title or name
        self._progress = progress
        self._view = view
        self._after_run = after_run
        self._release = release
        self._hold = hold
        self._held: Hold | None = None
        self._lock = threading.Lock()
        self._run: JobRun | None = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._recent: deque[JobRun] = deque(maxlen=RECENT_RUNS)
        # Told this job's name when a run begins or ends (``JobRegistry.watch``).
        self.announce: Callable[[str], None] | None = None

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
        """``{running, started_at, finished_at, error, last_report}`` of the current or last
        run; ``last_report`` as the run returned it."""
        with self._lock:
            run, running = self._run, self._running
        return {
            "running": running,
            "started_at": run.started_at if run else None,
            "finished_at": run.finished_at if run else None,
            "error": run.error if run else None,
            "last_report": run.report if run else None,
        }

    def snapshot(self, started_at: int | None = None) -> dict[str, Any]:
        """The fields every job shows (``GET /api/jobs``): ``{name, running, progress:
        {done, total, unit, phase}, started_at, finished_at, error, last_report}``, of the
        current or last run, or of the recent run that started at ``started_at`` (one of
        the last ``RECENT_RUNS``; NotFoundError for another), so a client follows its own
        run even when another one has started since."""
        with self._lock:
            run = self._run if started_at is None else self._recent_run(started_at)
            running = self._running and run is self._run
        progress = run.progress if run is not None else None  # kept when the run ended
        if progress is None:
            progress = self._progress() if self._progress is not None else JobProgress()
        return {
            "name": self.name,
            "running": running,
            "progress": asdict(progress),
            "started_at": run.started_at if run else None,
            "finished_at": run.finished_at if run else None,
            "error": run.error if run else None,
            "last_report": self._view(run.report) if run else None,
        }

    def _recent_run(self, started_at: int) -> JobRun:
        for run in reversed(self._recent):
            if run.started_at == started_at:
                return run
        raise NotFoundError(f"the {self.title} has no recent run that started at {started_at}")

    # ------------------------------------------------------------ running
    def begin(self) -> JobRun:
        """Claim the job for a new run (ConflictError while one runs); then pass it to
        ``run`` or ``start`` (or end it with ``abandon``)."""
        with self._lock:
            if self._closed:
                raise ConflictError(f"the {self.title} service is shut down")
            if self._running:
                raise ConflictError(f"a {self.title} is already running")
            self._running = True
            self._run = JobRun()
            self._recent.append(self._run)
            run = self._run
        if self._hold is not None:
            try:
                self._held = self._hold()
            except BaseException as exc:
                with self._lock:  # never begun: as if not claimed
                    self._recent.remove(run)
                    self._run = self._recent[-1] if self._recent else None
                    self._running = False
                if isinstance(exc, HeldElsewhereError):
                    where = exc.host or "another host"
                    raise ConflictError(f"a {self.title} is already running on {where}") from None
                raise
        self._announce()
        return run

    def _let_go(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release()

    def _announce(self) -> None:
        if self.announce is not None:
            self.announce(self.name)

    def _execute(self, run: JobRun, target: Callable[[JobRun], Any]) -> Any:
        """Run ``target(run)`` in this thread; keep its report (or error) for ``status()``."""
        try:
            run.report = target(run)
            return run.report
        except JobCancelled:
            run.error = "cancelled"
            raise
        except BaseException as exc:
            run.error = _reason(exc)
            raise
        finally:
            if self._after_run is not None:
                self._after_run()
            if self._progress is not None:
                run.progress = self._progress()  # as it ended: a later run changes it
            self._let_go()
            with self._lock:
                run.finished_at = now_ms()
                self._running = False
            self._announce()

    def abandon(self, run: JobRun, exc: BaseException) -> None:
        """End a run from ``begin`` that failed before its work started (records ``exc``)."""
        self._let_go()
        with self._lock:
            run.error = _reason(exc)
            run.finished_at = now_ms()
            self._running = False
        self._announce()

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
            except JobCancelled:
                pass
            except Exception:
                log.exception("%s failed", self.title)
            finally:
                if self._release is not None:
                    self._release()

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

    def shut(self) -> None:
        """Refuse new runs and cancel the running one (``close`` without the wait)."""
        with self._lock:
            self._closed = True
        self.cancel()

    def close(self, timeout: float | None = None) -> None:
        """Refuse new runs, cancel the running one and wait for it."""
        self.shut()
        self.wait(timeout)


class JobRegistry:
    """Every job of one running manager, by name."""

    def __init__(self, jobs: Iterable[BackgroundJob] = ()) -> None:
        self._jobs: dict[str, BackgroundJob] = {}
        self._announce: Callable[[str], None] | None = None
        for job in jobs:
            self.add(job)

    def add(self, job: BackgroundJob) -> BackgroundJob:
        if job.name in self._jobs:
            raise ValueError(f"two jobs named {job.name!r}")
        self._jobs[job.name] = job
        job.announce = self._announce
        return job

    def watch(self, announce: Callable[[str], None]) -> None:
        """Tell ``announce`` a job's name whenever one of its runs begins or ends."""
        self._announce = announce
        for job in self._jobs.values():
            job.announce = announce

    def get(self, name: str) -> BackgroundJob:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs))
            raise NotFoundError(f"no job named {name!r:.80} (the jobs: {known})") from None

    def __iter__(self) -> Iterator[BackgroundJob]:
        return iter(list(self._jobs.values()))

    def snapshot(self, name: str, started_at: int | None = None) -> dict[str, Any]:
        """The ``snapshot()`` of the job ``name``, of its run that started at ``started_at``
        if given (NotFoundError for another name or an unknown run)."""
        return self.get(name).snapshot(started_at)

    def snapshots(self) -> list[dict[str, Any]]:
        """Every job's ``snapshot()``, in the order they were added."""
        return [job.snapshot() for job in self]

    def close(self, timeout: float = 30.0) -> list[str]:
        """Refuse new runs and cancel every running run at once, then wait for each (all
        within ``timeout`` seconds); returns the names of jobs still running after it."""
        jobs = list(self)
        for job in jobs:
            job.shut()
        deadline = time.monotonic() + timeout
        for job in jobs:
            job.wait(max(0.0, deadline - time.monotonic()))
        return [job.name for job in jobs if job.running]
