"""Scanning the model roots: new files queued, moves and renames relinked, losses flagged.

One scan, in order (steps 1-5 are ``scan_plan``'s, which decide and write nothing):

1. **Walk** the scope (``scan_walk``): the roots, or for an incremental scan
   (``scan_folders``, the watcher's) some folders below them. One ``stat`` per model file,
   kept as a ``file_key`` (size:mtime_ns:inode:path). Meanwhile a thread asks SQLite, in
   one statement, for the keys of the files that are their model's file and for how many
   present models the scope holds (``hash_cache.model_file_keys``).
2. **Sort** the files: a *hit* (its key is in the set: unchanged, at its model's path,
   known by its hash without being read), pending (left to Stage 2), or the rest. When the
   hits are as many as the present models and the rest are known by their cache rows, the
   snapshot is partial: a few narrow queries (the rest's rows, the models flagged missing
   or named by the rest, those outside the roots). Otherwise the whole cache below the
   scope and every model's path are loaded, in bulk.
3. **Settle** each model: it is *present* if a known file at its path has its hash.
   Models not present are *vanished*, unless their folder could not be read this time, or
   their file is still being written (unknown: left alone), or they lie outside the scope
   (a full scan checks those files; an incremental scan looks only at models flagged
   missing, and at models of a new file's size whose file is gone).
4. **Hash candidates**: only files the cache does not know whose size equals a vanished
   model's size (a move, a rename, or a file touched in place). Nothing else is read.
5. **Resolve** every file with a hash: at its model's path, the model is present (a
   missing one is restored); elsewhere, a vanished model is relinked to it (moved or
   renamed: the row, its tags, meta and images stay, only ``path`` changes), and a
   present one makes it a duplicate (recorded in ``model_files``, not queued). Files with
   no model become pending imports (status ``new``, source ``scan``; name, type, size
   and the probed base, ``meta.sources.base = "probe"``, filled in) for Stage 2 to hash.
   A vanished model with another recorded copy still on disk is relinked to that copy
   instead of being flagged missing; recorded copies the walk did not find are forgotten.
6. **Write** in batches, one transaction each: relinks (each new file's header probed
   for the base), missing flags (set and cleared), copies found and lost, new pending
   rows, and removal of the scan's own pending rows whose files are gone.
7. **Sidecars** (``sidecars``): the walk kept the name, size and mtime of each sidecar
   file next to a model file (from the folder listing it made anyway); those whose
   (size, mtime) differ from ``sidecar_files`` are read into the model at that path
   (moved or renamed models included), the others are not even opened. A pending file's
   sidecars wait for its promotion, which reads them.
8. Optionally **promote** the new rows at once (immediate hashing); each promotion reads
   the sidecars the walk found next to its file, so no folder is listed once per model.

A rescan of an unchanged library therefore reads no file content (sidecars included)
and writes nothing.
Unreadable folders, broken symlinks and files vanishing mid-scan are reported in the
result and never stop the scan. One scan runs at a time (``ConflictError`` otherwise);
``start`` runs it in a background thread and ``status`` reports live progress, and
``watch``, how the library follows its roots between scans (``watcher``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError, Future, as_completed
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, TypeVar

from hikaze_mm.config import ModelRoot
from hikaze_mm.database import now_ms
from hikaze_mm.database.errors import HeldElsewhereError, StorageUnavailableError
from hikaze_mm.database.holds import Hold
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.locations import root_of
from hikaze_mm.errors import ConflictError, LockedError, NotFoundError, ValidationError
from hikaze_mm.hashing import FileChangedError, HashCancelled, HashService
from hikaze_mm.images import ImageStore, StoreSnapshot
from hikaze_mm.jobs import (
    BackgroundJob,
    JobCancelled,
    JobProgress,
    JobRun,
    tidy_search_index,
)
from hikaze_mm.library.scan_plan import (
    ModelLocation,
    Plan,
    Prefetch,
    Snapshot,
    below,
    lost_copies,
    move_candidates,
    outermost,
    prefixes,
    resolve,
    settle,
    sort_files,
    walk,
)
from hikaze_mm.library.scan_walk import ROOT_LEVEL_TYPE, SeenFile, Walker, WalkProblem
from hikaze_mm.library.sidecars import Item, SidecarIndex, SidecarReader
from hikaze_mm.params import check_strategy
from hikaze_mm.pending.group_promotion import promote_new
from hikaze_mm.pending.promotion import (
    PendingFileError,
    PendingFileMissing,
    Promoter,
    PromotionDeferred,
    SidecarHook,
)
from hikaze_mm.policy import API_STRATEGIES
from hikaze_mm.probe import ProbeResult, probe_file

log = logging.getLogger(__name__)

PROBE_SOURCE = "probe"  # ``meta.sources.base`` of a base read from the file's header

BATCH_SIZE = 500
# Immediate hashing promotes new files in groups: this many hashed ahead, then promoted in
# write transactions of at most this long (a group holds the library's write lock).
PROMOTE_GROUP = 64
PROMOTE_GROUP_SECONDS = 0.25
# Lists in reports and status are capped; the counts are always complete.
MAX_LISTED = 1000
# The state document of the studio's last scan of each named root: ``{name: {host,
# finished_at}}``.
ROOT_SCANS_KEY = "root_scans"
# A file at least this large is claimed alone, just before it is hashed, so that the hosts
# of a studio share a folder of large files evenly; smaller ones are claimed by group.
LARGE_FILE = 64 * 1024 * 1024
# How often a host helping another's scan looks for rows again: soon after it found some,
# less often (up to the longest) while it finds none, as the queue is read whole.
HELP_POLL_S, HELP_POLL_MAX_S = 0.05, 0.25
STATUS_PROBLEMS = 50

T = TypeVar("T")


class ScanCancelled(JobCancelled):
    """The scan was stopped (service shutdown); batches already written stay written."""


@dataclass
class ScanCounts:
    """Progress and result counters of one scan."""

    files_seen: int = 0  # model files found under the roots
    unchanged: int = 0  # known by their hash-cache row: content not read
    pending: int = 0  # already waiting in pending_import
    new: int = 0  # queued as new pending imports
    moved: int = 0  # relinked to a file in another folder
    renamed: int = 0  # relinked to another name in the same folder
    missing: int = 0  # models whose file was not found
    restored: int = 0  # models flagged missing whose file is back
    duplicates: int = 0  # extra copies of a model that is present
    to_hash: int = 0  # candidates for a move that had to be hashed
    hashed: int = 0
    promoted: int = 0  # immediate hashing: promoted into the library
    conflicts: int = 0  # immediate hashing: left pending, content already a model
    pending_removed: int = 0  # the scan's own pending rows whose file is gone
    deferred: int = 0  # files still being written, left for a later scan (watcher)
    sidecars: int = 0  # sidecar files read (new or changed since they were last read)
    errors: int = 0  # problems reported (unreadable folders, vanished files...)


@dataclass
class ScanReport:
    """The result of one scan: counts, plus capped lists of what changed.

    ``relinked`` holds ``{sha256, from, to, kind}`` (kind ``moved`` or ``renamed``);
    ``missing`` the ``{sha256, path}`` of models whose file was not found; ``problems``
    the ``{path, kind, detail}`` of everything that could not be read.
    """

    counts: ScanCounts
    started_at: int
    finished_at: int
    roots: list[dict[str, str | None]]
    relinked: list[dict[str, str]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    new_pending_ids: list[int] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    immediate_hashing: bool = False
    # An incremental scan's folders (each with everything below it); None: the roots.
    scope: list[str] | None = None
    deferred_paths: list[str] = field(default_factory=list)  # files still being written
    # Named roots of a studio this scan left alone: ``{root, reason}`` (another host scans
    # it now, or did a moment ago).
    skipped_roots: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_ms"] = self.finished_at - self.started_at
        return data


def _returned(outcome: dict[str, Any] | Exception) -> dict[str, Any]:
    """A promotion's result, or what it raised raised again."""
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Run:
    """The live state of one scan, shared with ``status()`` readers under a lock."""

    def __init__(
        self,
        roots: Sequence[ModelRoot],
        immediate: bool,
        conf_strategy: str | None,
        on_progress: Callable[[dict[str, Any]], None] | None,
        job: JobRun,
        scope: list[str] | None = None,
        settled: Callable[[SeenFile], bool] | None = None,
    ) -> None:
        self.roots = list(roots)
        self.scope = scope
        self.settled = settled
        self.immediate = immediate
        self.conf_strategy = conf_strategy
        self.on_progress = on_progress
        self.counts = ScanCounts()
        self.phase = "starting"
        self.current: str | None = None
        self.started_at = job.started_at  # the job's run's: one run, one start time
        self.finished_at: int | None = None
        self.problems: list[WalkProblem] = []
        self.error: str | None = None
        self.deferred: set[str] = set()  # unsettled files this scan left alone
        self.skipped_roots: list[dict[str, str]] = []
        self.busy_roots: list[str] = []  # of those, the ones another host scans now
        self.skip_recent_ms: int | None = None  # skip a named root scanned this recently
        self.control = job.control
        self._last_notify = 0.0

    def cancelled(self) -> bool:
        return self.control.cancelled

    def check_cancelled(self) -> None:
        if self.control.cancelled:
            raise ScanCancelled("scan cancelled")

    def problem(self, problem: WalkProblem) -> None:
        self.problems.append(problem)
        if problem.is_error:
            self.counts.errors += 1

    def root_dicts(self) -> list[dict[str, str | None]]:
        return [{"path": str(r.path), "type": r.type_key} for r in self.roots]

    def snapshot(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "immediate_hashing": self.immediate,
            "conflict_strategy": self.conf_strategy,
            "roots": self.root_dicts(),
            "scope": self.scope,
            "counts": asdict(self.counts),
            "current": self.current,
            "problems": [p.to_dict() for p in self.problems[:STATUS_PROBLEMS]],
            "error": self.error,
        }

    def notify(self, *, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_notify >= 0.1:
            self._last_notify = now
            self.on_progress(self.snapshot())


@dataclass
class WatchState:
    """How the library follows its roots between scans (the watcher writes it):
    ``mode`` ``watching`` (file-system events), ``polling`` (a rescan every ``interval``
    seconds, for roots that cannot be watched) or ``off``; ``reason`` says why."""

    mode: str = "off"
    reason: str | None = "not started"
    interval: float | None = None
    polled: list[str] = field(default_factory=list)  # roots rescanned by the clock
    incremental_scans: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scanner:
    """Scans model roots into the library; one scan at a time (a ``BackgroundJob``)."""

    def __init__(
        self,
        db: Library,
        hashes: HashService,
        *,
        roots: Callable[[], Sequence[ModelRoot]],
        images: ImageStore | None = None,
        promoter: Promoter | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        """``roots`` supplies the roots of each scan (the config's, or ComfyUI's)."""
        self.db = db
        self.hashes = hashes
        self.roots = roots
        self.images = images
        self.promoter = promoter
        self.sidecars = SidecarReader(db, images)
        self.batch_size = batch_size
        self.job = BackgroundJob(
            "scan",
            progress=self._progress,
            after_run=tidy_search_index(db.listing),
            release=db.release_thread,
        )
        self._lock = threading.Lock()  # guards the live _Run's phase and current file
        self._run: _Run | None = None
        self._last_report: dict[str, Any] | None = None
        self.watch = WatchState()
        # Receives the progress of every scan that names no receiver of its own (inside
        # ComfyUI: its websocket), so scans started over the API are reported too.
        self.listener: Callable[[dict[str, Any]], None] | None = None

    # ------------------------------------------------------------------ control
    def _progress(self) -> JobProgress:
        """Files hashed of those to hash while hashing, else the files seen."""
        with self._lock:
            run = self._run
            if run is None:
                return JobProgress(unit="files")
            counts, phase = run.counts, run.phase
            if phase == "hashing" and counts.to_hash:
                return JobProgress(counts.hashed, counts.to_hash, "files", phase)
            return JobProgress(counts.files_seen, counts.files_seen, "files", phase)

    def status(self) -> dict[str, Any]:
        """Live progress of the running scan, or the result of the last one."""
        running = self.job.running
        with self._lock:
            run = self._run
            data: dict[str, Any] = {"running": running}
            if run is None:
                data.update(phase="idle", counts=asdict(ScanCounts()), problems=[], error=None)
            else:
                data.update(run.snapshot())
            data["last_report"] = self._last_report
            data["watch"] = self.watch.to_dict()
        return data

    def _begin(
        self,
        roots: Sequence[ModelRoot] | None,
        immediate_hashing: bool,
        conf_strategy: str | None,
        on_progress: Callable[[dict[str, Any]], None] | None,
        scope: list[str] | None = None,
        settled: Callable[[SeenFile], bool] | None = None,
    ) -> tuple[JobRun, _Run]:
        conf_strategy = check_strategy(conf_strategy, API_STRATEGIES)
        chosen = list(self.roots() if roots is None else roots)
        if not chosen:
            raise ValidationError(
                "no model roots configured (set --models-root or $HIKAZE_MODEL_ROOTS)"
            )
        if immediate_hashing and self.promoter is None:
            raise ValidationError("immediate hashing needs the promotion service")
        job_run = self.job.begin()
        run = _Run(
            chosen,
            immediate_hashing,
            conf_strategy,
            on_progress or self.listener,
            job_run,
            scope=scope,
            settled=settled,
        )
        with self._lock:
            self._run = run
        return job_run, run

    def scan(
        self,
        *,
        roots: Sequence[ModelRoot] | None = None,
        immediate_hashing: bool = False,
        conf_strategy: str | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> ScanReport:
        """Scan in this thread and return the report; ConflictError if a scan is running.

        ``on_progress`` receives status snapshots (throttled, and at every phase change).
        """
        job_run, run = self._begin(roots, immediate_hashing, conf_strategy, on_progress)
        return self.job.run(claimed=job_run, target=lambda _: self._execute(run))

    def scan_folders(
        self,
        folders: Iterable[str],
        *,
        immediate_hashing: bool = False,
        conf_strategy: str | None = None,
        settled: Callable[[SeenFile], bool] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        skip_recent_s: float | None = None,
    ) -> ScanReport:
        """An incremental scan of ``folders`` (each with everything below it; each below
        a root) in this thread: for the models and pending rows there, the library ends
        as a full scan would leave it (new files queued, and promoted at once with
        ``immediate_hashing``; moves and renames relinked, a model flagged missing
        anywhere included; missing flags set and cleared; stale scan rows removed).

        ``settled(file)``: False for an unknown file still being written; it is left
        alone (``deferred_paths``), as is whatever the library has at its path.
        ConflictError while another scan runs. ``skip_recent_s``: a named root of a studio
        that another host finished scanning this recently is left alone (a poll).
        """
        scope = outermost(os.fspath(f) for f in folders)
        if not scope:
            raise ValidationError("no folders to scan")
        job_run, run = self._begin(
            None, immediate_hashing, conf_strategy, on_progress, scope=scope, settled=settled
        )
        if skip_recent_s is not None:
            run.skip_recent_ms = int(skip_recent_s * 1000)
        return self.job.run(claimed=job_run, target=lambda _: self._execute(run))

    def start(
        self,
        *,
        roots: Sequence[ModelRoot] | None = None,
        immediate_hashing: bool = False,
        conf_strategy: str | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Start a scan in a background thread; returns the status. ConflictError if busy.

        ``on_progress`` receives status snapshots from the scan's thread (throttled)."""
        job_run, run = self._begin(roots, immediate_hashing, conf_strategy, on_progress)
        status = self.status()  # as started: a small scan may be over before we return
        self.job.start(lambda _: self._execute(run), job_run)
        return status

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background scan; True when none is running."""
        return self.job.wait(timeout)

    def cancel(self) -> None:
        """Ask a running scan to stop (at the next folder or hash chunk)."""
        self.job.cancel()

    def close(self) -> None:
        """Stop a running scan (at the next folder or hash chunk) and wait for it."""
        self.job.close()

    # ------------------------------------------------------------------ the scan
    def _execute(self, run: _Run) -> ScanReport:
        report: ScanReport | None = None
        holds: list[tuple[str, Hold]] = []
        try:
            self._hold_named_roots(run, holds)
            report = self._scan(run) if run.roots and run.scope != [] else self._empty(run)
            report.skipped_roots = run.skipped_roots
            if run.immediate and run.busy_roots:
                self._help(run, run.busy_roots)
                report.finished_at = now_ms()
            self._record_root_scans(run, [name for name, _hold in holds])
            return report
        except ScanCancelled:
            run.error = "cancelled"
            raise
        except Exception as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            for _name, hold in holds:
                hold.release()
            with self._lock:
                run.finished_at = now_ms()
                if report is not None:
                    run.phase = "done"
                    self._last_report = report.to_dict()
                else:
                    run.phase = "cancelled" if run.error == "cancelled" else "failed"
                run.current = None
            run.notify(force=True)

    # ------------------------------------------------------------ a studio's roots
    def _hold_named_roots(self, run: _Run, holds: list[tuple[str, Hold]]) -> None:
        """Hold each named root the scan covers (``scan:<name>``, across the catalog; added
        to ``holds`` as taken), so one host at a time scans a root of the studio; the
        roots another host scans now, or (``run.skip_recent_ms``) finished scanning that
        recently, leave the scan."""
        covered: dict[str, list[str]] = {}
        for path in run.scope if run.scope is not None else [str(r.path) for r in run.roots]:
            name = root_of(self.db.locations.stored(path))
            if name is not None:
                covered.setdefault(name, []).append(path)
        for name, paths in covered.items():
            reason = self._recent_scan(name, run.skip_recent_ms)
            if reason is None:
                try:
                    holds.append((name, self.db.hold(f"scan:{name}")))
                    continue
                except HeldElsewhereError as exc:
                    reason = f"being scanned on {exc.host or 'another host'}"
                    run.busy_roots.append(name)
            run.skipped_roots.append({"root": name, "reason": reason})
            if run.scope is not None:
                run.scope = [folder for folder in run.scope if folder not in paths]
            else:
                run.roots = [r for r in run.roots if str(r.path) not in paths]

    def _recent_scan(self, name: str, within_ms: int | None) -> str | None:
        """Why a scan of root ``name`` is not needed now: another host finished one within
        ``within_ms``; None when it is."""
        if within_ms is None:
            return None
        last = (self.db.state.get(ROOT_SCANS_KEY) or {}).get(name) or {}
        finished = last.get("finished_at")
        if last.get("host") == self.db.host_name or not isinstance(finished, int):
            return None
        if now_ms() - finished >= within_ms:
            return None
        return f"scanned on {last.get('host')} {max(0, (now_ms() - finished) // 1000)} s ago"

    def _record_root_scans(self, run: _Run, names: list[str]) -> None:
        """Note, for the hosts of a studio, that this host has scanned these whole roots."""
        whole = [
            name
            for name in names
            if run.scope is None or self.db.locations.folders.get(name) in run.scope
        ]
        if not whole:
            return
        finished = {"host": self.db.host_name, "finished_at": now_ms()}
        with self.db.transaction():  # the read holds the document until the write
            scans = dict(self.db.state.get(ROOT_SCANS_KEY) or {})
            scans.update(dict.fromkeys(whole, finished))
            self.db.state.set(ROOT_SCANS_KEY, scans)

    def _help(self, run: _Run, names: list[str]) -> None:
        """While other hosts scan these named roots, promote the files they queued there
        that nobody has claimed (large ones one at a time), until their scans end and
        nothing is left: two hosts hash a folder of the studio in about half the time."""
        folders = prefixes(
            folder for name in names if (folder := self.db.locations.folders.get(name))
        )
        assert self.promoter is not None
        promoter, claims = self.promoter, self.promoter.claims
        self._set_phase(run, "promoting")

        def promote(pid: int, path: str) -> bool:
            return self._count_outcome(
                run,
                pid,
                path,
                lambda: promoter.promote(pid, run.conf_strategy, control=run.control),
            )

        idle = HELP_POLL_S
        while not run.cancelled():
            rows = [row for row in self.db.pending.ids(("new",)) if below(row[1], folders)]
            small = {pid: path for pid, path, size in rows if (size or 0) < LARGE_FILE}
            done = 0
            with claims.holding(list(small)) as claimed:
                for pid in claimed:
                    done += promote(pid, small[pid])
            for pid, path, size in rows:
                if (size or 0) >= LARGE_FILE:
                    with claims.holding([pid]) as claimed:
                        done += bool(claimed) and promote(pid, path)
            if done:
                idle = HELP_POLL_S
            else:
                if not any(self.db.held(f"scan:{name}") for name in names):
                    return
                time.sleep(idle)
                idle = min(2 * idle, HELP_POLL_MAX_S)
        run.check_cancelled()

    def _empty(self, run: _Run) -> ScanReport:
        """The report of a scan left with nothing to walk (another host scans it all)."""
        return ScanReport(
            counts=run.counts,
            started_at=run.started_at,
            finished_at=now_ms(),
            roots=run.root_dicts(),
            immediate_hashing=run.immediate,
            scope=run.scope,
        )

    def _set_phase(self, run: _Run, phase: str) -> None:
        with self._lock:
            run.phase = phase
            run.current = None
        run.notify(force=True)

    def _scan(self, run: _Run) -> ScanReport:
        plan = self._plan(run)
        run.check_cancelled()

        # -- probe the new files (header only) before any write transaction opens.
        self._set_phase(run, "probing")
        new_rows = self._describe_new(run, plan.new_files)
        relinked_bases = {model.sha256: probe_file(f.path).base for model, f in plan.relinks}

        # -- write, one transaction per batch.
        self._set_phase(run, "writing")
        counts = run.counts
        report = ScanReport(
            counts=counts,
            started_at=run.started_at,
            finished_at=run.started_at,
            roots=run.root_dicts(),
            immediate_hashing=run.immediate,
            scope=run.scope,
            deferred_paths=sorted(run.deferred)[:MAX_LISTED],
        )
        self._write_relinks(run, plan.relinks, report, relinked_bases)
        self.db.models.remove_files(plan.lost_copies)
        for copies in _chunks(plan.copies, self.batch_size):
            self.db.models.add_files(copies)
        newly_missing = [m.sha256 for m in plan.still_missing if not m.missing]
        gone = plan.still_missing
        self.db.models.remove_files([m.path for m in gone], sha256s=[m.sha256 for m in gone])
        for batch in _chunks(newly_missing, self.batch_size):
            self.db.models.set_missing(batch, True)
        for batch in _chunks(plan.restore, self.batch_size):
            self.db.models.set_missing(batch, False)
        counts.restored += len(plan.restore)
        report.missing = [
            {"sha256": m.sha256, "path": m.path} for m in plan.still_missing[:MAX_LISTED]
        ]
        new_ids = self._write_pending(run, new_rows)
        report.new_pending_ids = [pid for pid, _ in new_ids[:MAX_LISTED]]
        stale = plan.stale_pending
        if stale and self.images is not None:
            with_images = self.images.pending_image_names(stale)
            stale = [pid for pid in stale if not with_images[pid]]
        counts.pending_removed = len(self.db.pending.remove_stale_scan_rows(stale))
        self._read_sidecars(run, plan, run.scope or [os.fspath(r.path) for r in run.roots])

        if run.immediate and (new_ids or plan.waiting):  # (none: no image folder listed)
            types = {row["path"]: row.get("type") for row in new_rows}
            sizes = {row["path"]: row.get("size_bytes") or 0 for row in new_rows}
            waiting = self.db.pending.get_many([pid for pid, _ in plan.waiting])
            for pid, path in plan.waiting:  # what an interrupted scan left queued
                types[path] = waiting[pid].get("type") if pid in waiting else None
                sizes[path] = (waiting[pid].get("size_bytes") or 0) if pid in waiting else 0
            self._promote(run, plan.waiting + new_ids, types, SidecarIndex(plan.sidecars), sizes)
        report.problems = [p.to_dict() for p in run.problems[:MAX_LISTED]]
        report.finished_at = now_ms()
        return report

    def _plan(self, run: _Run) -> Plan:
        """Walk, settle every model, hash the move candidates, and decide (no writes)."""
        counts = run.counts
        self._set_phase(run, "walking")
        scope = run.scope or [os.fspath(r.path) for r in run.roots]
        # The quick check's keys come from SQLite in a thread while this one walks.
        prefetch = Prefetch(self.db, partial(self.db.hash_cache.model_file_keys, scope))

        def on_count(seen: int) -> None:
            counts.files_seen = seen
            run.notify()

        walker = Walker(run.roots, cancelled=run.cancelled, scope=run.scope)
        walked = walk(walker, on_count)
        keys, expected, outside = prefetch.result()
        run.check_cancelled()
        self._set_phase(run, "loading")
        pending = self.db.pending.locations()
        sort_files(walked, keys, pending)
        del keys
        snap = Snapshot.load(
            self.db,
            scope,
            walked,
            expected,
            pending,
            partial=run.scope is not None,
            outside=outside,
        )
        walked.resolve_rest(snap)
        if run.settled is not None:
            walked.defer_unsettled(run.settled)
            run.deferred = walked.skipped
        snap.look_elsewhere(walked, self.db.models.with_sizes)
        counts.files_seen = walked.seen
        counts.pending = len(walked.seen_pending)
        counts.deferred = len(walked.skipped)
        counts.unchanged = (
            walked.seen - len(walked.seen_pending) - len(walked.unresolved) - len(walked.skipped)
        )
        for problem in walked.problems:
            run.problem(problem)
        settled = settle(snap, walked, self.db.models.sizes)
        candidates = move_candidates(walked, settled)
        hashed = self._hash_candidates(run, candidates)
        plan = resolve(snap, walked, settled, candidates, hashed)
        plan.lost_copies = lost_copies(self.db.models.copies_below(scope), walked)
        plan.sidecars, plan.unreadable = walked.sidecars, walked.unreadable
        self._keep_copies(plan)
        counts.duplicates += plan.duplicates
        counts.missing = len(plan.still_missing)
        found = (pending.get(path) for path in walked.seen_pending)
        plan.waiting = sorted(
            (p.id, p.path) for p in found if p and p.source == "scan" and p.status == "new"
        )
        return plan

    def _keep_copies(self, plan: Plan) -> None:
        """A vanished model with another recorded copy still on disk moves its primary
        path there instead of being flagged missing (a relink, like a move)."""
        if not plan.still_missing:
            return
        lost = set(plan.lost_copies)
        files = self.db.models.files([m.sha256 for m in plan.still_missing])
        still: list[ModelLocation] = []
        for model in plan.still_missing:
            survivor = None
            for path in files.get(model.sha256, []):
                if path == model.path or path in lost:
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if st.st_size == model.size or model.size is None:
                    survivor = SeenFile(path, st.st_size, st.st_mtime_ns, st.st_ino, "")
                    break
            if survivor is None:
                still.append(model)
            else:
                plan.relinks.append((model, survivor))
        plan.still_missing = still

    def _hash_candidates(self, run: _Run, candidates: list[SeenFile]) -> list[tuple[SeenFile, str]]:
        """Hash the candidates on the hashing pool; failures are reported, not raised."""
        if not candidates:
            return []
        self._set_phase(run, "hashing")
        run.counts.to_hash = len(candidates)
        # A file another host of the studio hashed at a location is not read again.
        adopted = self.db.hash_cache.adopt(
            {f.path: (f.size, f.mtime_ns, f.inode) for f in candidates}
        )
        results: list[tuple[SeenFile, str]] = [
            (f, adopted[f.path][0]) for f in candidates if f.path in adopted
        ]
        futures: dict[Future[Any], SeenFile] = {}
        for f in candidates:
            if f.path in adopted:
                continue
            job = partial(self.hashes.hash_file, f.path, control=run.control, use_cache=False)
            futures[self.hashes.submit(job)] = f
        try:
            for future in as_completed(futures):
                f = futures[future]
                try:
                    result = future.result()
                except (HashCancelled, CancelledError) as exc:
                    raise ScanCancelled("scan cancelled while hashing") from exc
                except FileChangedError as exc:
                    run.problem(WalkProblem(f.path, "vanished", str(exc)))
                    continue
                except OSError as exc:
                    run.problem(WalkProblem.from_error(f.path, exc))
                    continue
                run.counts.hashed += 1
                run.current = f.path
                results.append((f, result.sha256))
                run.notify()
        finally:
            for future in futures:
                future.cancel()
        # Keep walk order, so which copy of a moved model wins does not depend on timing.
        order = {f.path: i for i, f in enumerate(candidates)}
        results.sort(key=lambda item: order[item[0].path])
        return results

    def _describe_new(self, run: _Run, new_files: list[SeenFile]) -> list[dict[str, Any]]:
        """The pending rows for new files: name, type, size and the probed base."""
        rows: list[dict[str, Any]] = []
        for i, f in enumerate(new_files):
            if not i & 63:
                run.check_cancelled()
                run.notify()
            probed: ProbeResult = probe_file(f.path)
            file_type = f.type
            if file_type == ROOT_LEVEL_TYPE and probed.suggested_type:
                file_type = probed.suggested_type
            row: dict[str, Any] = {
                "path": f.path,
                "name": os.path.splitext(os.path.basename(f.path))[0],
                "type": file_type,
                "base": probed.base,
                "size_bytes": f.size,
                "source": "scan",
                "status": "new",
            }
            if probed.base:
                row["meta"] = {"sources": {"base": PROBE_SOURCE}}
            rows.append(row)
        return rows

    def _write_relinks(
        self,
        run: _Run,
        relinks: list[tuple[ModelLocation, SeenFile]],
        report: ScanReport,
        bases: dict[str, str | None],
    ) -> None:
        for batch in _chunks(relinks, self.batch_size):
            with self.db.transaction():
                for model, f in batch:
                    if not self.db.models.relink(model.sha256, f.path):
                        continue  # deleted while we scanned
                    self.db.models.set_probed_base(model.sha256, bases.get(model.sha256))
                    same_folder = os.path.dirname(model.path) == os.path.dirname(f.path)
                    kind = "renamed" if same_folder else "moved"
                    if same_folder:
                        run.counts.renamed += 1
                    else:
                        run.counts.moved += 1
                    if model.missing:
                        run.counts.restored += 1
                    if len(report.relinked) < MAX_LISTED:
                        report.relinked.append(
                            {
                                "sha256": model.sha256,
                                "from": model.path,
                                "to": f.path,
                                "kind": kind,
                            }
                        )
            run.notify()

    def _write_pending(self, run: _Run, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """Queue the new files; returns ``(pending id, path)`` of each row created."""
        ids: list[tuple[int, str]] = []
        for batch in _chunks(rows, self.batch_size):
            run.check_cancelled()
            with self.db.transaction():
                added = self.db.pending.add_many(batch)
            ids += added
            run.counts.new += len(added)
            run.counts.pending += len(batch) - len(added)  # queued by someone else meanwhile
            run.notify()
        return ids

    def _read_sidecars(self, run: _Run, plan: Plan, scope: Sequence[str]) -> None:
        """Read the sidecars whose (size, mtime) changed into the model at their model
        file's path; forget those gone (one query each when nothing changed)."""
        known = self.db.sidecars.below(scope)
        changed: dict[str, list[Item]] = {}  # model file path -> its changed sidecars
        found: set[str] = set()
        for model_path, path, kind, size, mtime_ns in plan.sidecars:
            found.add(path)
            if known.get(path) != (size, mtime_ns):
                changed.setdefault(model_path, []).append((path, kind, size, mtime_ns))
        gone = [p for p in known if p not in found and not below(p, plan.unreadable)]
        if gone:
            self.db.sidecars.forget(gone)
        if not changed:
            return
        self._set_phase(run, "sidecars")
        for path, sha, missing in self.db.models.locate(paths=list(changed)):
            items = changed.get(path)
            if missing or items is None:
                continue  # a pending file's sidecars wait for its promotion
            run.check_cancelled()
            with self._lock:
                run.current = path
            for problem in self.sidecars.apply(sha, items):
                run.problem(problem)
            run.counts.sidecars += len(items)
            run.notify()

    def _promote(
        self,
        run: _Run,
        pending: list[tuple[int, str]],
        types: dict[str, str | None],
        found: SidecarIndex,
        sizes: dict[str, int],
    ) -> None:
        """Immediate hashing: promote each new pending row now, through Stage 2's rules;
        each one reads the sidecars the walk ``found`` next to it, and the image folders
        are listed once for the batch (no folder is listed once per model).

        The rows go in groups: each group's files are hashed first, outside any
        transaction (the cache asked and written once a group); its new models are then
        promoted together (``promote_new``: a few statements for the group), and the rest
        (copies of a model, rows with images...) one by one in write transactions
        (``Promoter.group``) of at most ``PROMOTE_GROUP_SECONDS``; a promotion such a
        transaction defers runs alone after it."""
        assert self.promoter is not None
        self._set_phase(run, "promoting")
        read_sidecars = self.sidecars.reader_of(found)
        batch = self.promoter.snapshot(pid for pid, _ in pending)  # the image folders, once

        def promote(pid: int, path: str) -> bool:
            return self._promote_one(run, pid, path, read_sidecars, batch)

        def reading(path: str) -> None:
            with self._lock:
                run.current = path

        claims = self.promoter.claims
        for group in _chunks(pending, PROMOTE_GROUP):
            run.check_cancelled()
            large = [(pid, path) for pid, path in group if sizes.get(path, 0) >= LARGE_FILE]
            group = [(pid, path) for pid, path in group if sizes.get(path, 0) < LARGE_FILE]
            # The rows another process holds (another host of a studio hashing them)
            # are left to it; a large file is claimed alone, as its hashing begins.
            for pid, path in large:
                run.check_cancelled()
                with claims.holding([pid]) as claimed:
                    if claimed:
                        promote(pid, path)
            with claims.holding([pid for pid, _path in group]) as claimed:
                ours = set(claimed)
                mine = [(pid, path) for pid, path in group if pid in ours]
                files = [(path, types.get(path)) for _pid, path in mine]
                try:
                    self.promoter.hash_ahead_many(
                        files, run.control, on_file=reading, progress=claims.beating(claimed)
                    )
                except HashCancelled as exc:
                    raise ScanCancelled("scan cancelled while hashing") from exc
                rest = self._promote_new(run, mine, read_sidecars, batch)
                for pid, path in self._promote_group(run, rest, promote):
                    run.check_cancelled()
                    promote(pid, path)
        run.check_cancelled()

    def _promote_new(
        self,
        run: _Run,
        group: list[tuple[int, str]],
        read_sidecars: SidecarHook,
        batch: StoreSnapshot,
    ) -> list[tuple[int, str]]:
        """Promote the group's new models together (``promote_new``); returns the rows
        left to promote one by one."""
        assert self.promoter is not None
        paths = dict(group)
        outcomes, rest = promote_new(
            self.promoter, list(paths), read_sidecars=read_sidecars, batch=batch
        )
        for pid, outcome in outcomes:
            self._count_outcome(run, pid, paths[pid], lambda o=outcome: _returned(o))
        return [(pid, paths[pid]) for pid in rest]

    def _promote_group(
        self, run: _Run, group: list[tuple[int, str]], promote: Callable[[int, str], bool]
    ) -> list[tuple[int, str]]:
        """Promote ``group`` in write transactions of at most ``PROMOTE_GROUP_SECONDS``
        each; returns the rows deferred to a promotion alone."""
        assert self.promoter is not None
        deferred: list[tuple[int, str]] = []
        rest = group[::-1]
        while rest and not run.cancelled():
            started = time.monotonic()
            with self.promoter.group():
                while rest and not run.cancelled():
                    pid, path = rest.pop()
                    if not promote(pid, path):
                        deferred.append((pid, path))
                    if time.monotonic() - started > PROMOTE_GROUP_SECONDS:
                        break
        return deferred

    def _promote_one(
        self,
        run: _Run,
        pid: int,
        path: str,
        read_sidecars: SidecarHook,
        batch: StoreSnapshot,
    ) -> bool:
        """Promote one row, counting its outcome in ``run``; False if a group deferred it."""
        assert self.promoter is not None
        promoter = self.promoter
        with self._lock:
            run.current = str(pid)
        return self._count_outcome(
            run,
            pid,
            path,
            lambda: promoter.promote(
                pid,
                run.conf_strategy,
                control=run.control,
                read_sidecars=read_sidecars,
                batch=batch,
            ),
        )

    def _count_outcome(
        self, run: _Run, pid: int, path: str, promote: Callable[[], dict[str, Any]]
    ) -> bool:
        """Count the outcome of ``promote`` (one row's promotion) in ``run``; False if a
        group deferred it."""
        try:
            result = promote()
        except PromotionDeferred:
            return False
        except HashCancelled as exc:
            raise ScanCancelled("scan cancelled while promoting") from exc
        except ConflictError:
            run.counts.conflicts += 1  # left pending for review
        except PendingFileMissing as exc:
            run.problem(WalkProblem(path, "vanished", str(exc)))
        except (LockedError, NotFoundError):
            pass  # the background worker has it, or it is gone already
        except PendingFileError as exc:
            run.problem(WalkProblem(path, "error", str(exc)))
        except StorageUnavailableError:
            raise  # the library is gone (a lost server): the scan fails, the next resumes
        except Exception as exc:  # one bad file must not stop the others
            log.exception("scan: promoting pending model %s failed", pid)
            run.problem(WalkProblem(path, "error", f"promotion failed: {exc}"))
        else:
            run.counts.promoted += 1
            for problem in result.get("sidecar_problems", ()):
                run.problem(WalkProblem(**problem))
        run.notify()
        return True
