"""What the stores use of a sqlite3 connection, on a psycopg connection.

``PgConnection.execute(sql, params)`` takes the stores' SQL with ``?`` placeholders (turned
into psycopg's ``%s`` once per SQL text, literal ``%`` escaped) and returns psycopg's
cursor, whose rows (``Row``) are read by key and by index like ``sqlite3.Row``;
``executemany`` likewise (psycopg pipelines it). psycopg's errors leave it as storage
errors (``errors.storage_error``), so the stores above never see the driver's.
``jsonb`` values arrive as their JSON text, as SQLite's ``meta_json`` does.
"""

from __future__ import annotations

import re
import select
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from hikaze_mm.database.postgres.errors import storage_error

# A list of eight or more bound values (``prepare_of``).
_ROW_LIST = re.compile(r"\bIN \((\?, ?){7,}\?", re.IGNORECASE)
# Single-quoted literals (kept as they are but for ``%``) and everything between them.
_LITERAL = re.compile(r"('(?:[^']|'')*')")


@lru_cache(maxsize=4096)
def to_psycopg(sql: str) -> str:
    """``sql`` with ``?`` placeholders as ``%s`` and literal ``%`` as ``%%``."""
    parts = _LITERAL.split(sql)
    for i, part in enumerate(parts):
        part = part.replace("%", "%%")
        parts[i] = part if i % 2 else part.replace("?", "%s")
    return "".join(parts)


@lru_cache(maxsize=4096)
def prepare_of(sql: str) -> bool | None:
    """psycopg's ``prepare`` for ``sql``: None (prepared once it has run a few times), but
    False for a statement that names its rows by a long list of bound values (``IN (?,
    ?, ...)``, eight or more: a batch's): planned for its values each time, as a generic
    plan made while a table is small (a first scan fills it) keeps reading the whole
    table as it grows (measured: a 20,000-file first scan spent 23 s in two such
    lookups, 1 s planned each time)."""
    return False if _ROW_LIST.search(sql) else None


class Row:
    """One row, read by column name or by index (and sliced), as ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def row_factory(cursor: Any) -> Any:
    """psycopg's row factory for ``Row``."""
    description = cursor.description
    if description is None:
        return tuple
    index = {column.name: i for i, column in enumerate(description)}
    return lambda values: Row(values, index)


def configure(raw: Any, *, read_only: bool, host: str) -> None:
    """Set up a new connection of the pool: jsonb as text, ``Row`` rows, read-only, and
    the host its change events name (``hikaze.host``)."""
    from psycopg.types.string import TextLoader

    raw.adapters.register_loader("jsonb", TextLoader)
    raw.adapters.register_loader("json", TextLoader)
    raw.row_factory = row_factory
    raw.execute("SELECT set_config('hikaze.host', %s, false)", (host,))
    if read_only:
        raw.execute("SET default_transaction_read_only = on")


def alive(raw: Any) -> bool:
    """Whether an idle connection is still usable, without a round trip: not closed nor
    broken, and its socket quiet. A server that ends a session sends its reason, then
    closes: reading that (libpq reads the message, then finds the end) marks it bad."""
    if raw.closed or raw.broken:
        return False
    from psycopg.pq import ConnStatus

    try:
        for _ in range(3):
            readable, _, _ = select.select([raw.fileno()], [], [], 0)
            if not readable:
                return True
            raw.pgconn.consume_input()
            if raw.pgconn.status != ConnStatus.OK:
                return False
    except Exception:  # reading it failed: the server is gone
        return False
    return False  # still something to read after three reads: it is going away


class _NoRows:
    """The cursor of an ``executemany`` over no rows."""

    rowcount = 0


_NOTHING = _NoRows()


class PgConnection:
    """One pooled psycopg connection (autocommit: ``transaction()`` says BEGIN)."""

    def __init__(self, raw: Any, where: str) -> None:
        self.raw = raw
        self.where = where

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> Any:
        try:
            if params:
                return self.raw.execute(to_psycopg(sql), params, prepare=prepare_of(sql))
            return self.raw.execute(sql)
        except Exception as exc:
            raise self.error(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        """Run ``sql`` once per row (pipelined); ``rowcount`` is the rows changed in all."""
        rows = list(rows)
        if not rows:
            return _NOTHING
        cursor = self.raw.cursor()
        try:
            cursor.executemany(to_psycopg(sql), rows)
        except Exception as exc:
            raise self.error(exc) from exc
        return cursor

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        from psycopg.rows import tuple_row

        cursor = self.raw.cursor(row_factory=tuple_row)
        try:
            if params:
                cursor.execute(to_psycopg(sql), params, prepare=prepare_of(sql))
            else:
                cursor.execute(sql)
            return cursor.fetchall()
        except Exception as exc:
            raise self.error(exc) from exc

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def error(self, exc: Exception) -> Exception:
        """A storage error for a driver's ``exc`` (anything else as it is)."""
        import psycopg

        if isinstance(exc, psycopg.Error):
            return storage_error(exc, self.where)
        return exc
