"""``open_library(config)``: the one way to get a library; the configuration picks its backend.

The default backend is SQLite, a file at ``config.db_path``. ``config.database_url``
(``HIKAZE_DB_URL``, ``--db-url``) names another by the scheme of its URL:
``postgresql://`` (or ``postgres://``) is a PostgreSQL server (``database/postgres``,
imported only then). A backend is added by
implementing ``interfaces.Library`` and registering an opener under its scheme in
``BACKENDS``; nothing above ``database/`` changes. A URL whose scheme no backend serves is
a ``StorageUnavailableError`` that says which ones this release has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hikaze_mm.config import Config
from hikaze_mm.database.errors import StorageUnavailableError
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.locations import Locations
from hikaze_mm.database.manager import DatabaseManager

# An opener: (where, as the URL names it; read only?) -> a library, not prepared yet.
Opener = Callable[[str, bool], Library]


def _open_sqlite(location: str, read_only: bool) -> Library:
    return DatabaseManager(Path(location), read_only=read_only)


def _open_postgres(url: str, read_only: bool) -> Library:
    """A library on a PostgreSQL server (the ``postgres`` extra: psycopg, psycopg-pool)."""
    from hikaze_mm.database.postgres.errors import redact_url

    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise StorageUnavailableError(
            f"cannot open the library at {redact_url(url)}: PostgreSQL support is not "
            'installed (pip install "hikaze-mm[postgres]")'
        ) from None
    from hikaze_mm.database.postgres.library import PostgresLibrary

    return PostgresLibrary(url, read_only=read_only)  # type: ignore[return-value]


BACKENDS: dict[str, Opener] = {
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def backend_of(config: Config) -> tuple[str, str]:
    """``(scheme, location)`` of the library ``config`` names: ``("sqlite", <db_path>)``
    without a database URL; a ``sqlite:///path`` URL names a file too."""
    url = config.database_url
    if not url:
        return "sqlite", str(config.db_path)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in BACKENDS:
        known = ", ".join(f"{name}://" for name in BACKENDS)
        shown = f"{scheme}://" if scheme else repr(url)
        raise StorageUnavailableError(
            f"cannot open the library at {shown}...: this release stores libraries in "
            f"{known} only (or a file named by the database path)"
        )
    if scheme == "sqlite":
        return scheme, unquote(parts.path)
    return scheme, url


def shown_location(config: Config) -> str:
    """Where the library is, as logs and messages may show it: its file, or its URL with
    any password replaced."""
    from hikaze_mm.database.postgres.errors import redact_url

    scheme, location = backend_of(config)
    return location if scheme == "sqlite" else redact_url(location)


def open_library(config: Config, *, read_only: bool = False, prepare: bool = True) -> Library:
    """The library ``config`` names, from the backend its configuration picks.

    A writer (``read_only=False``) that is ``prepare``\\ d creates the library or upgrades
    it to the latest schema; a reader never creates, upgrades or writes anything, and when
    ``prepare``\\ d checks that this release reads it as it is (``check_readable``).
    ``prepare=False`` only opens it (to look at its revision first). Failures are storage
    errors (``StorageUnavailableError``: not a library, too new, unreadable...), and
    nothing stays open after one.
    """
    scheme, location = backend_of(config)
    library = BACKENDS[scheme](location, read_only)
    library.host_name = config.host_name
    library.locations = Locations(config.root_names)
    if not prepare:
        return library
    try:
        if read_only:
            library.check_readable()
        else:
            library.init_db()
    except BaseException:
        library.close()
        raise
    return library
