"""PostgresLibrary: one library in a PostgreSQL database, behind the storage contract.

The same stores as SQLite's ``DatabaseManager`` (``models``, ``tags``, ...), given this
library: they take connections, units of work and their dialect's SQL from it.

* **Connections.** A bounded ``psycopg_pool.ConnectionPool``, opened on first use (after
  one plain connect, so an unreachable server is one ``StorageUnavailableError`` with the
  reason and no password; a server that does not answer at all is given
  ``CONNECT_TIMEOUT_S``). A thread checks a connection out on its first call and keeps
  it until ``release_thread()``; ``close()`` closes the pool.
* **Lost connections.** A statement on a connection the server ended (a restart,
  ``pg_terminate_backend``) fails with ``StorageUnavailableError``, and so does the unit
  of work around it: the server rolls back what it had not committed, and the job fails.
  Outside a unit of work, a thread's connection found dead (``connection.alive``) is
  given back, and the pool, which drops dead connections and checks idle ones before it
  lends them, gives the thread another: the next request or job works again.
* **Units of work.** ``transaction()`` at depth 0 is ``BEGIN`` (READ COMMITTED), nested
  calls are savepoints; outside one, each statement commits by itself.
* **Schema.** ``init_db`` builds it at head (``schema.SCHEMA``) or upgrades it, under a
  transaction-scoped advisory lock, so one process builds while the others wait; a
  catalog of a newer release is refused (``SchemaTooNewError``).
* **Read-only** libraries open their sessions with ``default_transaction_read_only``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from hikaze_mm.database.changes import CHANNEL, ChangeCallback, change_of
from hikaze_mm.database.downloads import DownloadStore
from hikaze_mm.database.errors import HeldElsewhereError
from hikaze_mm.database.generations import GenerationStore
from hikaze_mm.database.hash_cache import HashCacheStore
from hikaze_mm.database.image_seqs import ImageSeqStore
from hikaze_mm.database.legacy_ledger import LegacyLedgerStore
from hikaze_mm.database.listing import ListingStore
from hikaze_mm.database.locations import NO_NAMES
from hikaze_mm.database.manager import SchemaNotReadableError, SchemaTooNewError
from hikaze_mm.database.models import ModelStore
from hikaze_mm.database.pending import PendingStore
from hikaze_mm.database.postgres.connection import PgConnection, alive, configure
from hikaze_mm.database.postgres.dialect import POSTGRES
from hikaze_mm.database.postgres.errors import is_retryable, redact_url, storage_error
from hikaze_mm.database.postgres.listener import Listener
from hikaze_mm.database.postgres.schema import (
    EXPLICIT_ID_TABLES,
    PG_REVISION,
    SCHEMA,
    SCHEMA_LOCK_KEY,
    UPGRADES,
)
from hikaze_mm.database.sidecars import SidecarStore
from hikaze_mm.database.state import StateStore
from hikaze_mm.database.tags import TagStore
from hikaze_mm.database.values import now_ms

# The first key of the holds' advisory locks (the second: the hold's name, hashed).
HOLD_LOCK_SPACE = 0x484B4D4D


class AdvisoryHold:
    """A hold: its session's advisory lock, released with the session."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def release(self) -> None:
        with suppress(Exception):  # a session already gone has let go
            self.raw.close()


MAX_CONNECTIONS = 40  # the server's executor threads (up to 32) and the jobs'
CONNECT_TIMEOUT_S = 10


class PostgresLibrary:
    dialect = POSTGRES
    head_revision = PG_REVISION
    shared = True  # hosts of a studio share it, and may share one images folder

    def __init__(
        self, url: str, *, read_only: bool = False, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        self.url = url
        self.where = redact_url(url)
        self.path = self.where  # what error messages name (as SQLite's file path)
        self.read_only = read_only
        self.max_connections = max_connections
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        self._held: set[PgConnection] = set()
        self.host_name = "localhost"  # what change events say (``open_library`` sets it)
        self.locations = NO_NAMES  # this host's root names (``open_library`` sets them)
        self._listener: Listener | None = None
        self.models = ModelStore(self)  # type: ignore[arg-type]
        self.tags = TagStore(self)  # type: ignore[arg-type]
        self.pending = PendingStore(self)  # type: ignore[arg-type]
        self.hash_cache = HashCacheStore(self)  # type: ignore[arg-type]
        self.sidecars = SidecarStore(self)  # type: ignore[arg-type]
        self.image_seqs = ImageSeqStore(self)  # type: ignore[arg-type]
        self.state = StateStore(self)  # type: ignore[arg-type]
        self.legacy_ledger = LegacyLedgerStore(self)  # type: ignore[arg-type]
        self.listing = ListingStore(self)  # type: ignore[arg-type]
        self.generations = GenerationStore(self)  # type: ignore[arg-type]
        self.downloads = DownloadStore(self)  # type: ignore[arg-type]

    @property
    def cache_host(self) -> str:
        """Whose rows of the hash and sidecar caches this process reads and writes: each
        host of a shared catalog keeps its own."""
        return self.host_name

    # ----------------------------------------------------------------- connections
    def _open_pool(self) -> Any:
        with self._pool_lock:
            if self._pool is not None:
                return self._pool
            import psycopg
            from psycopg_pool import ConnectionPool

            try:  # one plain connect first: its error says why (the pool's would not)
                psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S).close()
            except psycopg.Error as exc:
                raise storage_error(exc, self.where) from None
            read_only, host = self.read_only, self.host_name
            self._pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=self.max_connections,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                configure=lambda raw: configure(raw, read_only=read_only, host=host),
                check=ConnectionPool.check_connection,  # an idle one the server dropped
                timeout=CONNECT_TIMEOUT_S,  # getconn: a server gone since, every one held
                name="hikaze-mm",
                open=True,
            )
            return self._pool

    @property
    def conn(self) -> PgConnection:
        """This thread's connection (autocommit outside ``transaction()``). One the server
        dropped (restarted, or ended the session) is found between units of work
        (``connection.alive``, no round trip) and replaced, so the next call runs on a new
        connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self.in_transaction() and not alive(conn.raw):
            self.release_thread()  # lost (the server restarted, or ended it): the pool
            conn = None  # drops it and this thread takes another
        if conn is None:
            pool = self._open_pool()
            try:
                raw = pool.getconn()
            except Exception as exc:  # PoolTimeout: every connection is held
                raise storage_error(exc, self.where) from exc
            conn = self._local.conn = PgConnection(raw, self.where)
            self._local.depth = 0
            self._held.add(conn)
        return conn

    def open_connections(self) -> int:
        """How many connections threads hold now."""
        return len(self._held)

    def release_thread(self) -> None:
        """Give this thread's connection back to the pool (a job's thread, when it ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        self._held.discard(conn)
        if self._pool is not None:
            with suppress(Exception):
                self._pool.putconn(conn.raw)

    def tuples(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query as plain tuples."""
        return self.conn.tuples(sql, args)

    # ----------------------------------------------------------------- holds
    def hold(self, name: str, *, record: bool = True) -> AdvisoryHold:
        """Hold ``name`` across the catalog (``database.holds``): a session advisory lock
        on a connection of its own; ``HeldElsewhereError`` (naming the host that took it)
        while another session holds it. ``record=False``: ``catalog_holds`` does not name
        this host (a process's own liveness hold, which nobody asks about by name)."""
        import psycopg

        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise storage_error(exc, self.where) from None
        try:
            got = raw.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (HOLD_LOCK_SPACE, name)
            ).fetchone()[0]
            if not got:
                row = raw.execute(
                    "SELECT host FROM catalog_holds WHERE name = %s", (name,)
                ).fetchone()
                raise HeldElsewhereError(name, row[0] if row else None)
            if record:
                raw.execute(
                    "INSERT INTO catalog_holds (name, host, since) VALUES (%s, %s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET host = excluded.host, "
                    "since = excluded.since",
                    (name, self.host_name, now_ms()),
                )
        except psycopg.Error as exc:
            raw.close()
            raise storage_error(exc, self.where) from None
        except BaseException:
            raw.close()
            raise
        return AdvisoryHold(raw)

    def held(self, name: str) -> bool:
        """Whether a session holds ``name`` now (``hold``): so the process that holds it
        is alive, on whichever host, since the server ends a dead host's session."""
        args = (HOLD_LOCK_SPACE, name)
        if not self.conn.execute("SELECT pg_try_advisory_lock(?, hashtext(?))", args).fetchone()[0]:
            return True
        self.conn.execute("SELECT pg_advisory_unlock(?, hashtext(?))", args)
        return False

    # ----------------------------------------------------------------- hosts
    def see_host(self, release: str) -> None:
        """Say this host is here, running ``release`` (``hosts``: its last_seen now)."""
        now = now_ms()
        self.conn.execute(
            "INSERT INTO hosts (name, release, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET release = excluded.release, "
            "last_seen = excluded.last_seen",
            (self.host_name, release, now, now),
        )

    def hosts(self) -> list[dict[str, Any]]:
        """The hosts the catalog has seen, the last seen first."""
        rows = self.conn.execute(
            "SELECT name, release, first_seen, last_seen FROM hosts ORDER BY last_seen DESC, name"
        ).fetchall()
        return [dict(zip(row.keys(), row, strict=True)) for row in rows]

    # ----------------------------------------------------------------- change events
    def watch_changes(self, callback: ChangeCallback | None) -> None:
        """Call ``callback`` with each change any process commits to the catalog, from a
        listener thread (``postgres.listener``); None stops."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        if callback is not None:
            self._listener = Listener(self.url, self.where, self.host_name, callback)

    def wait_listening(self, timeout: float) -> bool:
        """Whether the change events' listener is on its channel within ``timeout``."""
        return self._listener is not None and self._listener.wait_listening(timeout)

    def notify(self, kind: str, keys: Iterable[str]) -> None:
        """Send a change that is not a table's (a job's run began or ended)."""
        change = change_of(kind, keys, self.host_name)
        self.conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, change.payload()))

    def close(self) -> None:
        """Stop the change events; close the pool (and every connection in it)."""
        self.watch_changes(None)
        with self._pool_lock:
            pool, self._pool = self._pool, None
        self._held.clear()
        self._local = threading.local()
        if pool is not None:
            with suppress(Exception):
                pool.close()

    # ----------------------------------------------------------------- units of work
    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """One atomic unit of work; nested calls become savepoints of the outer one."""
        conn = self.conn
        depth = self._local.depth
        savepoint = f"sp{depth}"
        conn.execute("BEGIN" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException:
            self._local.depth = depth
            self._undo(conn, depth, savepoint)
            raise
        self._local.depth = depth
        try:
            conn.execute("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT {savepoint}")
        except BaseException:
            self._undo(conn, depth, savepoint)
            raise

    def _undo(self, conn: PgConnection, depth: int, savepoint: str) -> None:
        """Roll back what the failed unit did (its savepoint, or the whole transaction);
        a connection lost meanwhile has nothing left to roll back."""
        if conn.raw.closed:
            return
        if depth == 0:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        else:
            conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            conn.execute(f"RELEASE SAVEPOINT {savepoint}")

    def in_transaction(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def row_lock(self) -> str:
        """Inside a unit of work, a row read is read to change it (as under SQLite's write
        lock): ``FOR UPDATE`` makes a concurrent read-modify-write wait for this one. A
        reader changes nothing, and locks nothing."""
        return " FOR UPDATE" if self.in_transaction() and not self.read_only else ""

    def lock_key(self, name: str) -> None:
        """Inside a unit of work, hold ``name`` (a row that may not exist yet, such as a
        state document) until it ends: an advisory lock of the transaction."""
        if self.in_transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    def retryable(self, exc: BaseException) -> bool:
        """A deadlock or a serialization failure: the unit of work may run again."""
        return is_retryable(exc)

    def after_explicit_ids(self, table: str) -> None:
        """Restart ``table``'s identity above its largest id (after an insert that gave
        the id), so the next generated one is free."""
        assert table in EXPLICIT_ID_TABLES
        self.conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )

    # ----------------------------------------------------------------- schema
    def schema_version(self) -> int:
        row = self.conn.execute("SELECT to_regclass('schema_revision') IS NOT NULL").fetchone()
        if not row[0]:
            return 0
        found = self.conn.execute("SELECT MAX(revision) FROM schema_revision").fetchone()
        return int(found[0] or 0)

    def init_db(self) -> int:
        """Build the schema at head, or upgrade it, under the advisory lock; the revision."""
        return self.upgrade_to(PG_REVISION)

    def upgrade_to(self, target: int) -> int:
        """Bring the catalog to ``target`` (one transaction, while holding the lock: a
        second process waits, then finds it done)."""
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK_KEY,))
            current = self._refuse_too_new()
            if current == 0:
                for statement in SCHEMA:
                    conn.execute(statement)
                return self.schema_version()
            for revision in range(current + 1, target + 1):
                for statement in UPGRADES[revision]:
                    conn.execute(statement)
                conn.execute("UPDATE schema_revision SET revision = ?", (revision,))
        return self.schema_version()

    def _refuse_too_new(self) -> int:
        current = self.schema_version()
        if current > PG_REVISION:
            raise SchemaTooNewError(
                f"{self.where} has schema revision {current}; this release knows up to "
                f"{PG_REVISION}. Upgrade Hikaze Model Manager."
            )
        return current

    def check_readable(self) -> int:
        """For a read-only library: the revision, if this release reads it as it is."""
        current = self._refuse_too_new()
        if current == 0:
            raise SchemaNotReadableError(
                f"{self.where} is not a Hikaze library (no schema); a command that writes "
                "(scan, serve, catalog push) creates it"
            )
        if current < PG_REVISION:
            raise SchemaNotReadableError(
                f"{self.where} has schema revision {current} and this release reads "
                f"{PG_REVISION}; a command that writes (scan, serve) upgrades it"
            )
        return current
