"""SQLite's exceptions as the project's storage errors, at the edge of ``database/``.

``translate_errors`` wraps each public method of a SQLite store (and of
``DatabaseManager``) once, so a ``sqlite3`` exception never leaves this package: an
integrity clash is a ``StorageConflictError``, a locked database a ``StorageBusyError``,
a file that cannot be opened, read or written (or is no database) a
``StorageUnavailableError``, anything else a ``StorageError``. The driver's exception
stays chained as the cause. It costs one call per store call, nothing per row.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from hikaze_mm.database.errors import (
    StorageBusyError,
    StorageConflictError,
    StorageError,
    StorageUnavailableError,
)

C = TypeVar("C", bound=type)
_BUSY_WORDS = ("database is locked", "database table is locked", "busy")


def storage_error(exc: sqlite3.Error, path: str | Path | None = None) -> StorageError:
    """The storage error that stands for ``exc`` (raised on the library at ``path``)."""
    message = str(exc) or type(exc).__name__
    where = f" {path}" if path is not None else " the library"
    if isinstance(exc, sqlite3.IntegrityError):
        return StorageConflictError(f"conflict in{where}: {message}")
    if isinstance(exc, sqlite3.OperationalError):
        if any(word in message for word in _BUSY_WORDS):
            return StorageBusyError(f"{where.strip()} is busy (another writer holds it): {message}")
        return StorageUnavailableError(f"cannot read{where}: {message}")
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)
    ):
        return StorageUnavailableError(f"{where.strip()} is not a library database ({message})")
    return StorageError(f"storage failure in{where}: {message}")


def _path_of(owner: Any) -> Path | None:
    """The library file a store (``owner.db.path``) or the manager (``owner.path``) uses."""
    return getattr(getattr(owner, "db", owner), "path", None)


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise storage_error(exc, _path_of(self)) from exc

    return call


def translate_errors(exclude: Iterable[str] = ()) -> Callable[[C], C]:
    """Class decorator: every public method defined on the class raises storage errors."""
    skipped = frozenset(exclude)

    def decorate(cls: C) -> C:
        for name, value in list(vars(cls).items()):
            if name.startswith("_") or name in skipped or not callable(value):
                continue
            if isinstance(value, (staticmethod, classmethod, type)):
                continue
            setattr(cls, name, _translating(value))
        return cls

    return decorate
