"""Moving a library between this host's SQLite file and a PostgreSQL catalog.

``push(local, url, merge=...)`` copies the local library (``local``, this host's SQLite
library, held by the caller) into the catalog at ``url``; ``pull(local, url, merge=...)``
copies the catalog into the local library. Either refuses a target that already holds a
library unless ``merge`` (see ``database.catalog_copy`` for both ways of copying), and
returns a report: the target (its URL without the password) and, per table, the rows
read, added, merged and skipped. Images stay files in this host's data folder.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from hikaze_mm.config import Config
from hikaze_mm.database import open_library
from hikaze_mm.database.catalog_copy import copy_library, is_empty
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.postgres.errors import redact_url
from hikaze_mm.errors import ConflictError, ValidationError

SCHEMES = ("postgresql", "postgres")


def check_url(url: str) -> str:
    """``url`` when it names a PostgreSQL catalog; else a ValidationError."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise ValidationError(f"a catalog is named by a postgresql:// URL, not {redact_url(url)!r}")
    return url


def push(config: Config, local: Library, url: str, *, merge: bool = False) -> dict[str, Any]:
    """Copy ``local`` into the catalog at ``url`` (created or upgraded to head)."""
    remote = open_library(replace(config, database_url=check_url(url)))
    try:
        return _copy(local, remote, merge, names=("the local library", redact_url(url)))
    finally:
        remote.close()


def pull(config: Config, local: Library, url: str, *, merge: bool = False) -> dict[str, Any]:
    """Copy the catalog at ``url`` into ``local``; the catalog is only read."""
    remote = open_library(replace(config, database_url=check_url(url)), read_only=True)
    try:
        return _copy(remote, local, merge, names=(redact_url(url), "the local library"))
    finally:
        remote.close()


def _copy(
    source: Library, target: Library, merge: bool, *, names: tuple[str, str]
) -> dict[str, Any]:
    if not merge and not is_empty(target):
        raise ConflictError(f"{names[1]} already holds a library: add --merge to combine the two")
    tables = copy_library(source, target, merge=merge)
    return {"source": names[0], "target": names[1], "merge": merge, "tables": tables}
