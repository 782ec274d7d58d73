"""Moving a library between SQLite and a PostgreSQL server (``hikaze-mm catalog``).

``push(config, url)`` copies the library ``config`` names (its SQLite file) into the
PostgreSQL catalog at ``url``, which must be empty; ``pull(config, url)`` writes a new
SQLite library at ``config.db_path`` from that catalog. Both copy every table as it is
(``database.transfer``) in one transaction, and answer a report: the rows of each table
and where they went (the URL without its password). The images stay in the data folder.
Combining libraries (``push --merge``) is not built yet.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hikaze_mm.config import Config
from hikaze_mm.database import open_library
from hikaze_mm.database.open import shown_location
from hikaze_mm.database.transfer import copy_library, is_empty
from hikaze_mm.errors import ConflictError, NotFoundError, ValidationError
from hikaze_mm.process_lock import ProcessLock


def _server(config: Config, url: str) -> Config:
    if not url.lower().startswith(("postgresql://", "postgres://")):
        raise ValidationError(f"a catalog is named by a postgresql:// URL, not {url[:40]!r}")
    return replace(config, database_url=url)


def _report(direction: str, counts: dict[str, int], source: str, target: str) -> dict[str, Any]:
    return {"direction": direction, "from": source, "to": target, "rows": counts}


def push(config: Config, url: str) -> dict[str, Any]:
    """Copy the local SQLite library into the empty catalog at ``url``."""
    local = replace(config, database_url=None)
    if not local.db_path.is_file():
        raise NotFoundError(f"no library at {local.db_path} to push")
    server = _server(config, url)
    source = open_library(local, read_only=True)
    try:
        target = open_library(server)
        try:
            if not is_empty(target):
                raise ConflictError(
                    f"the catalog at {shown_location(server)} is not empty "
                    "(combining libraries, --merge, is not built yet)"
                )
            counts = copy_library(source, target)
        finally:
            target.close()
    finally:
        source.close()
    return _report("push", counts, str(local.db_path), shown_location(server))


def pull(config: Config, url: str) -> dict[str, Any]:
    """Write a new SQLite library at ``config.db_path`` from the catalog at ``url``."""
    local = replace(config, database_url=None)
    if local.db_path.exists():
        raise ConflictError(f"a library exists at {local.db_path} already (pull writes a new one)")
    server = _server(config, url)
    lock = ProcessLock(local.lock_path)
    local.ensure_dirs()
    if not lock.try_acquire():
        raise ConflictError(f"the library in {local.data_dir} is in use by another process")
    try:
        source = open_library(server, read_only=True)
        try:
            target = open_library(local)
            try:
                counts = copy_library(source, target)
            finally:
                target.close()
        finally:
            source.close()
    finally:
        lock.release()
    return _report("pull", counts, shown_location(server), str(local.db_path))
