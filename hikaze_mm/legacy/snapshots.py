"""The private copies Stage 1 reads legacy databases from, and their folders' lifecycle.

The legacy app ran its SQLite file in WAL mode, so the file may have a ``-wal`` beside it
holding committed rows that were never checkpointed, and it may sit in a folder the user
cannot write. Opening it in place is unsafe either way: a normal open may checkpoint
(writing the file), ``mode=ro`` fails without a ``-shm`` in a read-only folder, and
``immutable=1`` silently ignores the ``-wal`` (losing rows). So ``LegacySnapshot`` copies
the file and its journal (``-wal`` or ``-journal``) into a private folder and reads the
copy (``database.legacy_v2.LegacyReader``); the originals are only ever read.

The copy (it can be hundreds of MB) never outlives its run. It lives in Stage 1's work
folder, ``Config.legacy_work_dir`` (``<library db>.legacy-snapshots/``), in a folder
``<pid>-<random>/`` of its own, and is deleted when the snapshot closes. A process killed
meanwhile leaves it behind, so ``remove_stale_snapshots(root)`` deletes every folder whose
owner is gone: it runs when a snapshot is opened and when the library is opened. The owner
is told by an ``flock`` the owning process holds on ``owner.lock`` inside the folder for
as long as the snapshot is open (the kernel drops it when the process dies, and a restarted
process that got the same pid does not hold it); where the OS has no ``flock`` (Windows),
or before the lock file exists, by the pid in the folder's name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from contextlib import suppress
from pathlib import Path

from hikaze_mm.database.legacy_v2 import LegacyReader, check_legacy_file
from hikaze_mm.errors import ValidationError
from hikaze_mm.params import parse_path
from hikaze_mm.process_lock import pid_alive

try:
    import fcntl
except ImportError:  # Windows: no flock; a snapshot's owner is told by its pid alone
    fcntl = None  # type: ignore[assignment]

_JOURNAL_SUFFIXES = ("-wal", "-journal")
_OWNER_LOCK = "owner.lock"
_FOLDER_NAME = re.compile(r"(\d+)-\w+")  # <owner pid>-<random>, as mkdtemp names it
# This process's open snapshot folders (names): a folder named with our own pid that is
# not here was left by an earlier process that had the same pid (a restarted container).
_OPEN_FOLDERS: set[str] = set()
_OPEN_LOCK = threading.Lock()


def _owner_alive(folder: Path, pid: int) -> bool:
    """Whether the process that made a snapshot folder still has it open (see module doc)."""
    if pid == os.getpid():
        return folder.name in _OPEN_FOLDERS  # caller holds _OPEN_LOCK
    if fcntl is None:
        return pid_alive(pid)
    try:
        fd = os.open(folder / _OWNER_LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return pid_alive(pid)  # its owner is making it (or died before locking it)
    except OSError:
        return True  # cannot tell: keep it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True  # the owner holds the lock
    finally:
        os.close(fd)  # also drops our lock
    return False


def _remove_root_if_empty(root: Path) -> None:
    with suppress(OSError):
        root.rmdir()  # only succeeds when empty


def remove_stale_snapshots(root: str | Path) -> int:
    """Delete the snapshot folders under ``root`` whose owning process is gone; return
    how many were deleted. Folders of live processes (this one's too) are kept, and so is
    anything in ``root`` that is not a snapshot folder; ``root`` itself goes when empty.
    Safe to call at any time, from any process (it does not need the library lock)."""
    root = Path(root)
    removed = 0
    with _OPEN_LOCK:
        try:
            with os.scandir(root) as entries:
                candidates = [
                    (Path(e.path), int(m.group(1)))
                    for e in entries
                    if (m := _FOLDER_NAME.fullmatch(e.name)) and e.is_dir(follow_symlinks=False)
                ]
        except OSError:  # no root (nothing was ever copied), or unreadable
            return 0
        for folder, pid in candidates:
            if _owner_alive(folder, pid):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed += not os.path.lexists(folder)
        _remove_root_if_empty(root)
    return removed


class _Folder:
    """A fresh snapshot folder under ``root``, owned by this process until ``remove``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock_fd: int | None = None
        with _OPEN_LOCK:
            for attempt in range(3):
                root.mkdir(parents=True, exist_ok=True)
                try:
                    self.path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
                    break
                except FileNotFoundError:  # root removed by a cleanup just now
                    if attempt == 2:
                        raise
            _OPEN_FOLDERS.add(self.path.name)
        try:
            if fcntl is not None:
                # Locked before it gets its name, so a cleanup never sees it unlocked.
                tmp = self.path / f".{_OWNER_LOCK}.tmp"
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                self._lock_fd = fd
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.replace(tmp, self.path / _OWNER_LOCK)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the folder (while still holding its lock), then let go of it."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            with suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None
        with _OPEN_LOCK:
            _OPEN_FOLDERS.discard(self.path.name)
            _remove_root_if_empty(self.root)


class LegacySnapshot(LegacyReader):
    """A private, checked copy of a legacy database, read through one connection.

    Use as a context manager (``with LegacySnapshot.open(path, root=...) as legacy``); the
    copy is deleted on exit. One thread at a time may read it.
    """

    _folder: _Folder

    @property
    def folder(self) -> Path:
        """The private folder holding the copy (deleted by ``close``)."""
        return self._folder.path

    @classmethod
    def open(cls, path: str | Path, *, root: str | Path) -> LegacySnapshot:
        """Check ``path`` and copy it into a new folder under ``root`` (Stage 1's work
        folder), after deleting the stale folders a killed process left there. ``root`` is
        created as needed and removed when ``close`` leaves it empty."""
        source = parse_path(os.fspath(path), "legacy database path")
        check_legacy_file(source)
        root = Path(root)
        remove_stale_snapshots(root)
        folder = _Folder(root)
        try:
            copy = folder.path / "legacy.sqlite3"
            try:
                shutil.copyfile(source, copy)
                for suffix in _JOURNAL_SUFFIXES:
                    journal = Path(f"{source}{suffix}")
                    if journal.is_file():
                        shutil.copyfile(journal, Path(f"{copy}{suffix}"))
            except OSError as exc:
                raise ValidationError(f"cannot read {source}: {exc.strerror or exc}") from None
            snapshot = cls.open_checked(copy, source)
        except BaseException:
            folder.remove()
            raise
        snapshot._folder = folder
        return snapshot

    def close(self) -> None:
        super().close()
        self._folder.remove()

    def __enter__(self) -> LegacySnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
