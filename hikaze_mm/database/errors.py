"""The storage errors every backend raises, so nothing above ``database/`` names a driver.

A store translates its driver's exceptions (``sqlite3.IntegrityError``, a busy database,
a file that is not a library...) into these, and code above ``database/`` catches only
these. Each is also a ``HikazeError``, so the HTTP layer answers it like any other.
"""

from __future__ import annotations

from hikaze_mm.errors import ConflictError, HikazeError, NotFoundError


class StorageError(HikazeError):
    """Base class of the storage errors: the library's storage failed."""

    status = 500
    error = "Storage error"


class StorageConflictError(ConflictError, StorageError):
    """A write would break a uniqueness or reference rule (the row exists, is in use...);
    a 409, as ``ConflictError`` says."""


class StorageNotFoundError(NotFoundError, StorageError):
    """The row a write names does not exist; a 404, as ``NotFoundError`` says."""


class StorageBusyError(StorageError):
    """The storage is locked by another writer for longer than the wait allows; retry."""

    status = 503
    error = "Library busy"


class StorageUnavailableError(StorageError):
    """The storage cannot be reached or read: a missing, unreadable or foreign file, a
    server that is down, a read-only library asked to write."""

    status = 503
    error = "Library unavailable"


class HeldElsewhereError(StorageConflictError):
    """Another process of the catalog holds what was asked for (``Library.hold``): a 409
    naming its host."""

    def __init__(self, name: str, host: str | None) -> None:
        self.host = host
        super().__init__(f"{name} is held by {host or 'another host'} of the catalog")
