"""DatabaseManager: connections, transactions and schema upgrades of one library file.

One instance per database file, passed to whoever needs it. It owns no table: the rows
live behind its stores (``db.models``, ``db.tags``, ``db.pending``, ``db.hash_cache``,
``db.sidecars``, ``db.state``, ``db.legacy_ledger``, ``db.listing``,
``db.generations``, ``db.downloads``), which share its
connections and transactions; ``hikaze_mm.database.interfaces`` is their contract.

Each thread gets its own SQLite connection (WAL, foreign keys on, busy timeout), so the
server's executor threads and the background workers can use one manager at once. A
thread that ends its work calls ``release_thread()``; background jobs do it for their
threads. ``transaction()`` nests with savepoints, so a service can compose several store
calls into one atomic change.

``DatabaseManager(path, read_only=True)`` opens the file with SQLite's ``mode=ro``: it
never creates, upgrades, recovers or writes anything (for ``hikaze-mm status`` and
``list`` beside the process that writes, or in a folder this process cannot write).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hikaze_mm.database.changes import (
    Change,
    ChangeCallback,
    PendingChanges,
    change_of,
    sqlite_triggers,
)
from hikaze_mm.database.dialect import SQLITE
from hikaze_mm.database.downloads import DownloadStore
from hikaze_mm.database.errors import StorageUnavailableError
from hikaze_mm.database.generations import GenerationStore
from hikaze_mm.database.hash_cache import HashCacheStore
from hikaze_mm.database.holds import NoHold
from hikaze_mm.database.image_seqs import ImageSeqStore
from hikaze_mm.database.legacy_ledger import LegacyLedgerStore
from hikaze_mm.database.listing import ListingStore
from hikaze_mm.database.locations import NO_NAMES
from hikaze_mm.database.models import ModelStore
from hikaze_mm.database.pending import PendingStore
from hikaze_mm.database.schema import (
    LATEST_REVISION,
    REVISIONS,
    split_statements,
    statements_up_to,
)
from hikaze_mm.database.sidecars import SidecarStore
from hikaze_mm.database.sqlite_errors import storage_error, translate_errors
from hikaze_mm.database.state import StateStore
from hikaze_mm.database.tags import TagStore
from hikaze_mm.database.values import natural_key

log = logging.getLogger(__name__)
MMAP_BYTES = 256 * 1024 * 1024


class SchemaTooNewError(StorageUnavailableError):
    """The database was written by a newer release than this one."""


class SchemaNotReadableError(StorageUnavailableError):
    """A read-only open found a database this release cannot read as it is: not a library
    (no schema), or one at an older revision (only a write open upgrades it)."""


@translate_errors(exclude=("transaction", "row_lock", "lock_key", "in_transaction", "retryable"))
class DatabaseManager:
    dialect = SQLITE
    head_revision = LATEST_REVISION
    # Whose rows of the hash and sidecar caches this process reads and writes: a library
    # file is one machine's, whatever its host name.
    cache_host = ""
    shared = False  # one machine's file: its images folder is its own

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 15_000, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.read_only = read_only
        self._immutable = False  # read-only, in a folder nobody here can write (see below)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.host_name = "localhost"  # what change events say (``open_library`` sets it)
        self.locations = NO_NAMES  # this host's root names (``open_library`` sets them)
        self._on_change: ChangeCallback | None = None
        self._release: str | None = None  # ``see_host``'s
        self.models = ModelStore(self)
        self.tags = TagStore(self)
        self.pending = PendingStore(self)
        self.hash_cache = HashCacheStore(self)
        self.sidecars = SidecarStore(self)
        self.image_seqs = ImageSeqStore(self)
        self.state = StateStore(self)
        self.legacy_ledger = LegacyLedgerStore(self)
        self.listing = ListingStore(self)
        self.generations = GenerationStore(self)
        self.downloads = DownloadStore(self)

    # ----------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            conn = self._connect_read_only()
        else:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # used by one thread; closed by close() from any
            )
        conn.row_factory = sqlite3.Row
        conn.create_function("natural_key", 1, natural_key, deterministic=True)
        conn.create_function("hikaze_changed", 2, self._changed)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Reads through a memory map: a listing looks up rows spread over the whole file
        # (each model row holds its meta), and mapped pages cost no read call each
        # (a page of 100 models over 50,000 reads in half the time).
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _open_uri(self, *, immutable: bool) -> sqlite3.Connection:
        uri = self.path.absolute().as_uri() + "?mode=ro" + ("&immutable=1" if immutable else "")
        return sqlite3.connect(
            uri,
            uri=True,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )

    def _connect_read_only(self) -> sqlite3.Connection:
        """A ``mode=ro`` connection (a missing file is an error, never created).

        A WAL database can be read so only where its ``-shm`` file exists or can be made.
        In a folder this process cannot write, with no ``-wal`` file (the last writer
        closed cleanly, so the main file holds everything), it is opened ``immutable``.
        """
        conn = self._open_uri(immutable=self._immutable)
        if not self._immutable:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                conn.close()
                folder = self.path.absolute().parent
                if os.access(folder, os.W_OK) or Path(f"{self.path}-wal").exists():
                    raise
                self._immutable = True
                conn = self._open_uri(immutable=True)
        conn.execute("PRAGMA query_only = ON")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit outside ``transaction()``)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.depth = 0
            self._local.watched = False
            self._local.changes = PendingChanges()
        if self._on_change is not None and not self._local.watched and not self.read_only:
            for statement in sqlite_triggers():  # this connection's own, once
                conn.execute(statement)
            self._local.watched = True
        return conn

    def see_host(self, release: str) -> None:
        """A library in a file has one host, this one: nothing to record."""
        self._release = release

    def hosts(self) -> list[dict[str, Any]]:
        """This host, while it has the library open (a file's library has no other)."""
        if self._release is None:
            return []
        seen = {"first_seen": None, "last_seen": None}
        return [{"name": self.host_name, "release": self._release, **seen}]

    def hold(self, name: str, *, record: bool = True) -> NoHold:
        """A catalog-wide hold (``database.holds``): on SQLite, always granted."""
        return NoHold()

    def held(self, name: str) -> bool:
        """Whether another session holds ``name``: on SQLite, holds are no locks (never)."""
        return False

    # ----------------------------------------------------------------- change events
    def watch_changes(self, callback: ChangeCallback | None) -> None:
        """Call ``callback`` with each change this process commits (``database.changes``);
        None stops."""
        self._on_change = callback

    def wait_listening(self, timeout: float) -> bool:
        """Whether changes reach the callback (in-process: at once)."""
        return self._on_change is not None

    def notify(self, kind: str, keys: Iterable[str]) -> None:
        """Send a change that is not a table's (a job's run began or ended)."""
        self._send([change_of(kind, keys, self.host_name)])

    def _changed(self, kind: str, key: object) -> None:
        """A tracked row changed (its temporary trigger): kept until the unit of work
        commits; a statement outside one commits on its own, so it is sent now."""
        if self._local.depth:
            self._local.changes.add(kind, key)
        else:
            self.notify(kind, [str(key)])

    def _send_changes(self) -> None:
        self._send(self._local.changes.take(self.host_name))

    def _send(self, changes: list[Change]) -> None:
        """Hand ``changes`` to the callback; its failure never fails the write that made
        them (inside a statement, SQLite would fail it)."""
        callback = self._on_change
        if callback is None:
            return
        for change in changes:
            try:
                callback(change)
            except Exception:
                log.exception("a change event's callback failed")

    def open_connections(self) -> int:
        """How many connections are open (one per thread that used the library)."""
        with self._all_lock:
            return len(self._all)

    def release_thread(self) -> None:
        """Close this thread's connection (a job's thread calls it when the job ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._all_lock:
            if conn in self._all:
                self._all.remove(conn)
        with suppress(sqlite3.Error):
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested calls become savepoints of the outer one."""
        try:
            conn = self.conn
            depth = self._local.depth
            savepoint = f"sp{depth}"
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        except sqlite3.Error as exc:  # busy: another writer holds the library
            raise storage_error(exc, self.path) from exc
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException:
            self._local.depth = depth
            self._undo(conn, depth, savepoint)
            raise
        self._local.depth = depth
        try:
            conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
        except sqlite3.Error as exc:
            self._undo(conn, depth, savepoint)
            raise storage_error(exc, self.path) from exc
        if depth == 0:
            self._send_changes()

    def _undo(self, conn: sqlite3.Connection, depth: int, savepoint: str) -> None:
        """Roll back what the failed unit did (its savepoint, or the whole transaction)."""
        try:
            if depth == 0:
                self._local.changes.take(self.host_name)  # nothing of it was committed
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from exc

    # What PostgreSQL needs for a read-modify-write, which SQLite's BEGIN IMMEDIATE gives
    # (one writer holds the whole library): nothing here.
    def row_lock(self) -> str:
        """The clause that locks the rows a SELECT reads to change them: none."""
        return ""

    def lock_key(self, name: str) -> None:
        """Hold ``name`` until the unit of work ends: the write lock holds everything."""

    def in_transaction(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def retryable(self, exc: BaseException) -> bool:
        """Whether a failed unit of work may simply run again: never on SQLite."""
        return False

    def after_explicit_ids(self, table: str) -> None:
        """Nothing: SQLite's next id is always above the largest (PostgreSQL restarts its
        identity here)."""

    def tuples(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query as plain tuples (much cheaper than ``sqlite3.Row`` in bulk)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close every connection; a writer first folds the WAL back into the database."""
        with self._all_lock:
            conns, self._all = self._all, []
        if conns and not self.read_only:
            with suppress(sqlite3.Error):  # busy: another process keeps the WAL going
                conns[0].execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # ----------------------------------------------------------------- schema
    def init_db(self) -> int:
        """Create the database or upgrade it to the latest revision; return that revision."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn.execute("PRAGMA journal_mode = WAL")
        return self.upgrade_to(LATEST_REVISION)

    def upgrade_to(self, target: int) -> int:
        """Bring the library to revision ``target``; return the revision it is at.

        A new library (revision 0) is created at ``target`` in one transaction: killed
        half way, it is still empty, and the next start creates it again (no backup).
        An existing library (revision 1 or later) is first copied to ``<db>.bak-r<N>``,
        N being its revision, with SQLite's backup API (a consistent copy even in WAL
        mode), so a failed or regretted upgrade can be undone by hand; then each missing
        revision is applied in its own transaction.
        """
        current = self.schema_version()
        if current > LATEST_REVISION:
            raise SchemaTooNewError(
                f"{self.path} has schema revision {current}; this release knows up to "
                f"{LATEST_REVISION}. Upgrade Hikaze Model Manager."
            )
        if current == 0 and target > 0:
            with self.transaction() as conn:
                for statement in statements_up_to(target):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(target)}")
            return self.schema_version()
        if current < target:
            self.backup(Path(f"{self.path}.bak-r{current}"))
        for revision in range(current + 1, target + 1):
            with self.transaction() as conn:
                for statement in split_statements(REVISIONS[revision - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {revision}")
        return self.schema_version()

    def backup(self, target: Path) -> None:
        """A consistent copy of the whole database at ``target`` (replaced if present)."""
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        dest = sqlite3.connect(partial)
        try:
            self.conn.backup(dest)
        finally:
            dest.close()
        partial.replace(target)

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def check_readable(self) -> int:
        """For a read-only manager: the revision, if this release reads the file as it is.

        Raises SchemaTooNewError, SchemaNotReadableError, or StorageUnavailableError (not
        a database, or unreadable).
        """
        current = self.schema_version()
        if current > LATEST_REVISION:
            raise SchemaTooNewError(
                f"{self.path} has schema revision {current}; this release knows up to "
                f"{LATEST_REVISION}. Upgrade Hikaze Model Manager."
            )
        if current == 0:
            raise SchemaNotReadableError(f"{self.path} is not a Hikaze library (no schema)")
        if current < LATEST_REVISION:
            raise SchemaNotReadableError(
                f"{self.path} has schema revision {current} and this release reads "
                f"{LATEST_REVISION}; a command that writes (scan, serve) upgrades it"
            )
        return current
