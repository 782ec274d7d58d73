"""Reading a legacy (schema v2) database without ever writing it.

The legacy app ran its SQLite file in WAL mode, so the file may have a ``-wal`` beside it
holding committed rows that were never checkpointed, and it may sit in a folder the user
cannot write. Opening it in place is unsafe either way: a normal open may checkpoint
(writing the file), ``mode=ro`` fails without a ``-shm`` in a read-only folder, and
``immutable=1`` silently ignores the ``-wal`` (losing rows). So ``LegacySnapshot`` copies
the file and its journal (``-wal`` or ``-journal``) into a private folder and reads the
copy; the originals are only ever read.

The copy (it can be hundreds of MB) never outlives its run. It lives in a folder the
library owns, ``<library db>.legacy-snapshots/<pid>-<random>/`` (``snapshot_root``), and
is deleted when the snapshot closes. A process killed meanwhile leaves it behind, so
``remove_stale_snapshots(root)`` deletes every folder whose owner is gone: it runs when a
snapshot is opened and when the library is opened. The owner is told by an ``flock`` the
owning process holds on ``owner.lock`` inside the folder for as long as the snapshot is
open (the kernel drops it when the process dies, and a restarted process that got the
same pid does not hold it); where the OS has no ``flock`` (Windows), or before the lock
file exists, by the pid in the folder's name.

``LegacySnapshot.open`` also checks the copy before anything is imported: a path that
does not exist is a ``ValidationError`` (400); a file that is not SQLite, is corrupt, or
lacks the v2 tables is a ``LegacyDatabaseError`` (422). Rows are then streamed.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from hikaze_mm.errors import UnprocessableError, ValidationError
from hikaze_mm.params import parse_path
from hikaze_mm.process_lock import pid_alive

try:
    import fcntl
except ImportError:  # Windows: no flock; a snapshot's owner is told by its pid alone
    fcntl = None  # type: ignore[assignment]

# Columns the importer reads; a table lacking one of them is not a v2 database.
REQUIRED_COLUMNS: dict[str, frozenset[str]] = {
    "models": frozenset(
        {
            "id",
            "path",
            "name",
            "type",
            "size_bytes",
            "hash_hex",
            "created_at",
            "meta_json",
            "extra_json",
        }
    ),
    "tags": frozenset({"id", "name", "color", "created_at"}),
    "model_tags": frozenset({"model_id", "tag_id"}),
}
SUPPORTED_VERSION = 2
SQLITE_HEADER = b"SQLite format 3\x00"
_JOURNAL_SUFFIXES = ("-wal", "-journal")
_FETCH = 256
SNAPSHOT_ROOT_SUFFIX = ".legacy-snapshots"
_OWNER_LOCK = "owner.lock"
_FOLDER_NAME = re.compile(r"(\d+)-\w+")  # <owner pid>-<random>, as mkdtemp names it
# This process's open snapshot folders (names): a folder named with our own pid that is
# not here was left by an earlier process that had the same pid (a restarted container).
_OPEN_FOLDERS: set[str] = set()
_OPEN_LOCK = threading.Lock()


class LegacyDatabaseError(UnprocessableError):
    """The file is not a usable legacy v2 database (not SQLite, corrupt, other schema)."""

    error = "Not a legacy database"


@dataclass(frozen=True)
class LegacyTag:
    id: int
    name: object  # as stored: usually str, but v2 did not check
    color: object
    created_at: object


@dataclass(frozen=True)
class LegacyModel:
    id: int
    path: object
    name: object
    type: object
    size_bytes: object
    hash_hex: object
    created_at: object
    meta_json: object
    extra_json: object
    tag_ids: tuple[int, ...]


def _check_source(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValidationError(f"legacy database not found: {path}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(f"legacy database is not a file: {path}")
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not a SQLite database"
        raise LegacyDatabaseError(f"{path.name} is {what} (expected a legacy v2 database)")


def snapshot_root(db_path: str | Path) -> Path:
    """The folder that holds the legacy snapshots of the library at ``db_path``."""
    return Path(f"{db_path}{SNAPSHOT_ROOT_SUFFIX}")


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


class LegacySnapshot:
    """A private, checked copy of a legacy database, read through one connection.

    Use as a context manager (``with LegacySnapshot.open(path, root=...) as legacy``); the
    copy is deleted on exit. One thread at a time may read it.
    """

    def __init__(self, source: Path, folder: _Folder, conn: sqlite3.Connection) -> None:
        self.source = source
        self._folder = folder
        self.conn = conn

    @property
    def folder(self) -> Path:
        """The private folder holding the copy (deleted by ``close``)."""
        return self._folder.path

    @classmethod
    def open(cls, path: str | Path, *, root: str | Path) -> LegacySnapshot:
        """Check ``path`` and copy it into a new folder under ``root`` (``snapshot_root`` of
        the library), after deleting the stale folders a killed process left there.
        ``root`` is created as needed and removed when ``close`` leaves it empty."""
        source = parse_path(os.fspath(path), "legacy database path")
        _check_source(source)
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
            # Opened in one thread (a request's, for its 400/422) and read in another (the
            # import's); never by two at once.
            conn = sqlite3.connect(copy, isolation_level=None, check_same_thread=False)
            snapshot = cls(source, folder, conn)
            try:
                snapshot._check()
            except BaseException:
                conn.close()
                raise
            return snapshot
        except BaseException:
            folder.remove()
            raise

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self.conn.close()
        self._folder.remove()

    def __enter__(self) -> LegacySnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ checks
    def _check(self) -> None:
        name = self.source.name
        try:
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{name} is not a readable SQLite database ({exc})") from None
        if problems != ["ok"]:
            detail = "; ".join(" ".join(str(p).split()) for p in problems)
            raise LegacyDatabaseError(f"{name} is corrupt: {detail}")
        try:
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            missing = sorted(set(REQUIRED_COLUMNS) - tables)
            if missing:
                raise LegacyDatabaseError(
                    f"{name} is not a Hikaze Model Manager v2 database: it has no "
                    f"{', '.join(missing)} table{'s' if len(missing) > 1 else ''}"
                )
            for table, needed in REQUIRED_COLUMNS.items():
                columns = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                lacking = sorted(needed - columns)
                if lacking:
                    raise LegacyDatabaseError(
                        f"{name} is not a Hikaze Model Manager v2 database: table {table} "
                        f"lacks {', '.join(lacking)}"
                    )
            if "schema_version" in tables:
                row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                version = row[0] if row else None
                if version is not None and version != SUPPORTED_VERSION:
                    raise LegacyDatabaseError(
                        f"{name} has legacy schema version {version}; only version "
                        f"{SUPPORTED_VERSION} can be imported"
                    )
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{name} cannot be read: {exc}") from None

    # ------------------------------------------------------------------ reading
    def _query(self, sql: str) -> Iterator[tuple]:
        try:
            cursor = self.conn.execute(sql)
            while rows := cursor.fetchmany(_FETCH):
                yield from rows
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{self.source.name} cannot be read: {exc}") from None

    def _scalar(self, sql: str) -> int:
        try:
            return int(self.conn.execute(sql).fetchone()[0] or 0)
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{self.source.name} cannot be read: {exc}") from None

    def count_models(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM models")

    def count_orphan_links(self) -> int:
        """Links to a model id or tag id that does not exist (foreign keys were often off)."""
        return self._scalar(
            "SELECT COUNT(*) FROM model_tags WHERE model_id NOT IN (SELECT id FROM models) "
            "OR tag_id NOT IN (SELECT id FROM tags)"
        )

    def max_model_id(self) -> int:
        return self._scalar("SELECT MAX(id) FROM models")

    def iter_tags(self) -> Iterator[LegacyTag]:
        for row in self._query("SELECT id, name, color, created_at FROM tags ORDER BY id"):
            yield LegacyTag(*row)

    def iter_models(self) -> Iterator[LegacyModel]:
        """Every model in id order, each with the ids of the existing tags linked to it."""
        sql = (
            "SELECT m.id, m.path, m.name, m.type, m.size_bytes, m.hash_hex, m.created_at, "
            "m.meta_json, m.extra_json, (SELECT group_concat(l.tag_id) FROM model_tags l "
            "JOIN tags t ON t.id = l.tag_id WHERE l.model_id = m.id) "
            "FROM models m ORDER BY m.id"
        )
        for row in self._query(sql):
            raw_tags = row[9]
            tag_ids = tuple(sorted({int(t) for t in str(raw_tags).split(",")})) if raw_tags else ()
            yield LegacyModel(*row[:9], tag_ids=tag_ids)  # type: ignore[arg-type]
