"""psycopg's exceptions as the project's storage errors, and URLs with no password in them.

Nothing here imports psycopg: errors are told apart by their SQLSTATE (``exc.sqlstate``),
so ``open_library`` can name a PostgreSQL URL (redacted) without the driver installed.
"""

from __future__ import annotations

import re

from hikaze_mm.database.errors import (
    StorageBusyError,
    StorageConflictError,
    StorageError,
    StorageUnavailableError,
)

# ``scheme://user:password@host`` and ``password=...`` (a key/value DSN, or a URL's query).
_URL_PASSWORD = re.compile(r"(://[^:/?#@\s]*):[^@/?#\s]*@")
_KEY_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)
REDACTED = "***"

# SQLSTATEs a whole transaction may be run again after: serialization failure, deadlock.
RETRY_STATES = frozenset({"40001", "40P01"})
_BUSY_STATES = RETRY_STATES | {"55P03", "57014"}  # lock not available, statement timeout
_UNAVAILABLE_CLASSES = ("08", "28", "3D", "53", "57")  # connection, auth, no db, resources
_READ_ONLY = "25006"
_NOT_ALLOWED = "42501"  # insufficient privilege: the account may not write this


def redact_url(text: str) -> str:
    """``text`` (a URL, a DSN, or a message quoting one) with every password replaced."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    return _KEY_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None)


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` (a storage error or the driver's) asks for the transaction again."""
    cause = exc if sqlstate(exc) else exc.__cause__
    return sqlstate(cause) in RETRY_STATES if cause is not None else False


def storage_error(exc: Exception, where: str) -> StorageError:
    """The storage error that stands for a psycopg error ``exc`` on the library ``where``
    (a redacted URL); the message never holds a password."""
    message = redact_url(" ".join(str(exc).split()) or type(exc).__name__)  # one line
    state = sqlstate(exc) or ""
    if state.startswith("23"):
        return StorageConflictError(f"conflict in {where}: {message}")
    if state in _BUSY_STATES:
        return StorageBusyError(f"{where} is busy (another writer holds it): {message}")
    if state == _READ_ONLY:
        return StorageUnavailableError(f"{where} is open read-only: {message}")
    if state == _NOT_ALLOWED:
        return StorageUnavailableError(f"{where} does not allow this account to: {message}")
    if state[:2] in _UNAVAILABLE_CLASSES or (not state and _is_operational(exc)):
        return StorageUnavailableError(f"cannot reach the library at {where}: {message}")
    return StorageError(f"storage failure in {where}: {message}")


def _is_operational(exc: Exception) -> bool:
    """A failure without a SQLSTATE that is the connection's (psycopg.OperationalError,
    or the pool's timeout): the server cannot be reached."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"OperationalError", "PoolTimeout", "InterfaceError"})
