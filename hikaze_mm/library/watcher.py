"""``LibraryWatcher``: the library follows its model roots as files come and go.

With ``watchdog``, the operating system reports each change (inotify on Linux, FSEvents on
macOS, ReadDirectoryChangesW on Windows): nothing is walked until something changes, and
then only the folders that changed, within about a second. Polling would have to walk
every root on every tick to find the same change, and still see it only a tick later.

* **Events become folders.** A file event marks its folder dirty (both folders for a
  move), a folder event the folder itself; each folder is scanned with everything below
  it. Only model files (by extension) and folders count; previews and partial downloads
  do not.
* **Coalescing.** Dirty folders wait until no event has come for ``window`` seconds (or
  ``max_delay`` has passed since the first, under a steady stream), then one incremental
  scan (``Scanner.scan_folders``) covers them all. Copying a thousand files runs a few
  scans, not a thousand.
* **Files still being written** are left alone (``settled``): a file whose mtime is less
  than ``window`` old, or whose size or mtime changed since the last look, is deferred
  and its folder scanned again after the next window. It is hashed once it has settled.
* **Where watching cannot work**, the root is rescanned every ``interval`` seconds
  instead: a network or shared file system (another machine's changes raise no local
  event), or a root the watcher cannot schedule (inotify's watch limit reached: watchdog
  raises OSError). The log says so once, and ``GET /api/scan/status`` shows it under
  ``watch``: ``{"mode": "watching" | "polling" | "off", "reason", ...}``.
* One scan runs at a time: while another scan (a client's full scan) runs, dirty folders
  wait for the next window. ``close`` stops the observer and the worker thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hikaze_mm.config import ModelRoot
from hikaze_mm.errors import ConflictError, HikazeError
from hikaze_mm.jobs import JobCancelled
from hikaze_mm.library.scan_walk import MODEL_EXTENSIONS, SeenFile
from hikaze_mm.library.scanner import Scanner

log = logging.getLogger(__name__)

WATCH_MODES = ("on", "off", "poll")
DEFAULT_WINDOW = 0.5
DEFAULT_MAX_DELAY = 3.0
# File systems whose changes on other machines raise no local event.
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "virtiofs",
        "vboxsf",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.glusterfs",
        "fuse.cephfs",
        "fuse.vmhgfs-fuse",
    }
)


def network_fs(path: str, mounts_file: str = "/proc/self/mounts") -> str | None:
    """The type of the network (or VM-shared) file system that holds ``path``, or None."""
    if os.name == "nt":
        drive = os.path.splitdrive(os.path.realpath(path))[0]
        return "network share" if drive.startswith(("\\\\", "//")) else None
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None  # not Linux: nothing to tell
    real = os.path.realpath(path)
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, best_type = mount, fields[2]
    return best_type if best_type in NETWORK_FS else None


def _is_model(path: str) -> bool:
    return path.lower().endswith(MODEL_EXTENSIONS)


class LibraryWatcher:
    """Follows the model roots (see the module's docstring); ``start`` once, ``close``."""

    def __init__(
        self,
        scanner: Scanner,
        roots: Callable[[], Sequence[ModelRoot]],
        *,
        mode: str = "on",
        interval: float = 300.0,
        window: float = DEFAULT_WINDOW,
        max_delay: float = DEFAULT_MAX_DELAY,
    ) -> None:
        if mode not in WATCH_MODES:
            raise ValueError(f"watch mode must be one of {', '.join(WATCH_MODES)}")
        self.scanner = scanner
        self.roots = roots
        self.mode = mode
        self.interval = interval
        self.window = window
        self.max_delay = max_delay
        self.immediate_hashing = False
        self.conf_strategy: str | None = None
        self.state = scanner.watch
        self._cond = threading.Condition()
        self._dirty: dict[str, None] = {}  # folders to scan, in the order they came
        self._first_event = 0.0
        self._last_event = 0.0
        self._observed: dict[str, tuple[int, int]] = {}  # deferred file -> (size, mtime)
        self._polled: list[str] = []
        self._polling = False  # the batch being scanned is a poll of the roots
        self._next_poll = 0.0
        self._stop = False
        self._observer: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ control
    def start(self, *, immediate_hashing: bool = False, conf_strategy: str | None = None) -> None:
        """Watch the roots (or poll those that cannot be watched); returns at once."""
        if self._thread is not None:
            return
        self.immediate_hashing = immediate_hashing
        self.conf_strategy = conf_strategy
        roots = [os.fspath(r.path) for r in self.roots()]
        state = self.state
        state.interval = self.interval
        if self.mode == "off":
            state.mode, state.reason = "off", "turned off (--no-watch or HIKAZE_WATCH=0)"
            log.info("watching the model roots is off")
            return
        if not roots:
            state.mode, state.reason = "off", "no model roots"
            return
        reasons: list[str] = []
        if self.mode == "poll":
            self._polled = roots
            reasons.append("polling chosen (HIKAZE_WATCH=poll)")
        else:
            self._polled, reasons = self._schedule(roots)
        state.polled = list(self._polled)
        if self._polled:
            state.mode = "polling"
            state.reason = "; ".join(reasons)
            log.warning(
                "watching cannot follow %s: rescanning every %gs instead (%s)",
                ", ".join(self._polled),
                self.interval,
                state.reason,
            )
        else:
            state.mode, state.reason = "watching", None
            log.info("watching %d model root(s) for changes", len(roots))
        self._next_poll = time.monotonic() + self.interval
        self._thread = threading.Thread(target=self._work, name="hikaze-watch", daemon=True)
        self._thread.start()

    def _schedule(self, roots: list[str]) -> tuple[list[str], list[str]]:
        """Watch each root; returns the roots to poll instead, and why."""
        polled: list[str] = []
        reasons: list[str] = []
        watchable = []
        for root in roots:
            fs = network_fs(root)
            if fs is not None:
                polled.append(root)
                reasons.append(f"{root} is on a network file system ({fs})")
            else:
                watchable.append(root)
        if not watchable:
            return polled, reasons
        try:
            from watchdog.observers import Observer
        except ImportError as exc:  # pragma: no cover - a dependency, installed with us
            return roots, [f"watchdog is not installed ({exc})"]
        observer = Observer()
        observer.daemon = True
        observer.start()
        handler = _Handler(self)
        for root in watchable:
            try:
                observer.schedule(handler, root, recursive=True)
            except OSError as exc:  # inotify's watch limit, a missing root...
                polled.append(root)
                reasons.append(f"{root} cannot be watched ({exc.strerror or exc})")
        self._observer = observer
        return polled, reasons

    def close(self) -> None:
        """Stop watching and polling; a running incremental scan is cancelled."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
        thread = self._thread
        if thread is not None and thread.is_alive():
            self.scanner.cancel()
            thread.join()
        if observer is not None:
            observer.join()
        if self.state.mode != "off" or self.state.reason == "not started":
            self.state.mode, self.state.reason = "off", "stopped"

    # ------------------------------------------------------------ events
    def mark(self, folders: Iterable[str]) -> None:
        """Mark folders dirty (from events, or a test); scanned after the next window."""
        now = time.monotonic()
        with self._cond:
            if not self._dirty:
                self._first_event = now
            for folder in folders:
                self._dirty[folder] = None
            self._last_event = now
            self._cond.notify_all()

    # ------------------------------------------------------------ the worker
    def _work(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                self._scan(batch)
        finally:
            self.scanner.db.release_thread()

    def _next_batch(self) -> list[str] | None:
        """Wait until dirty folders are due (quiet for a window, or late) or a poll is."""
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                due = float("inf")
                if self._dirty:
                    due = min(self._last_event + self.window, self._first_event + self.max_delay)
                    if now >= due:
                        batch = list(self._dirty)
                        self._dirty.clear()
                        return batch
                if self._polled:
                    if now >= self._next_poll:
                        self._next_poll = now + self.interval
                        self._polling = True
                        return list(self._polled)
                    due = min(due, self._next_poll)
                self._cond.wait(None if due == float("inf") else due - now)
            return None

    def _scan(self, folders: list[str]) -> None:
        # A poll of a studio's root that another host has just scanned is not needed.
        polling, self._polling = self._polling, False
        try:
            report = self.scanner.scan_folders(
                folders,
                immediate_hashing=self.immediate_hashing,
                conf_strategy=self.conf_strategy,
                settled=self.settled,
                skip_recent_s=self.interval if polling else None,
            )
        except ConflictError:  # another scan runs (or we are closing): after a window
            if not self._stop:
                self.mark(folders)
            return
        except (JobCancelled, HikazeError) as exc:
            log.info("incremental scan stopped: %s", exc)
            return
        except Exception:
            log.exception("incremental scan of %s failed", ", ".join(folders))
            return
        self.state.incremental_scans += 1
        counts = report.counts
        # Forget what was seen of files these folders no longer defer (settled or gone).
        deferred = set(report.deferred_paths)
        scanned = tuple(f.rstrip(os.sep) + os.sep for f in report.scope or folders)
        self._observed = {
            path: seen
            for path, seen in self._observed.items()
            if path in deferred or not path.startswith(scanned)
        }
        if counts.deferred:
            listed = report.deferred_paths
            again = {os.path.dirname(p) for p in listed}
            if counts.deferred > len(listed):
                again.update(folders)
            self.mark(sorted(again))
        changed = counts.new + counts.moved + counts.renamed + counts.restored + counts.missing
        if changed or counts.pending_removed or counts.promoted:
            log.info(
                "library updated: %d new, %d moved, %d renamed, %d restored, %d missing",
                counts.new,
                counts.moved,
                counts.renamed,
                counts.restored,
                counts.missing,
            )

    def settled(self, f: SeenFile) -> bool:
        """Whether a new or changed file is done being written: its size and mtime are
        the same as a window ago, or (first look) its mtime is at least a window old."""
        key = (f.size, f.mtime_ns)
        previous = self._observed.pop(f.path, None)
        if previous == key:
            return True
        if previous is None and time.time_ns() - f.mtime_ns >= self.window * 1e9:
            return True
        self._observed[f.path] = key
        return False

    def status(self) -> dict[str, Any]:
        return self.state.to_dict()


class _Handler:
    """watchdog's event handler: events become dirty folders."""

    def __init__(self, watcher: LibraryWatcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        paths = [os.fsdecode(event.src_path)]
        if kind == "moved":
            paths.append(os.fsdecode(event.dest_path))
        if event.is_directory:
            if kind == "modified" or kind == "attrib":
                return  # a file inside changed: its own event says which
            folders = paths
        else:
            folders = [os.path.dirname(p) for p in paths if _is_model(p)]
        if folders:
            self.watcher.mark(folders)
