"""All SQL of the project: the library's stores, its schema, and the legacy v2 reader.

``open_library(config)`` opens a library (``DatabaseManager``, the SQLite backend, or
``postgres.PostgresLibrary`` for a ``postgresql://`` URL) and hands out its stores;
``interfaces`` documents the contract (``Library`` and each store's).
"""

from hikaze_mm.database.listing import ModelQuery
from hikaze_mm.database.manager import DatabaseManager, SchemaTooNewError
from hikaze_mm.database.open import open_library
from hikaze_mm.database.schema import LATEST_REVISION, PENDING_STATUSES
from hikaze_mm.database.values import (
    TagRef,
    normalize_color,
    normalize_sha256,
    normalize_tag_name,
    now_ms,
)

__all__ = [
    "LATEST_REVISION",
    "PENDING_STATUSES",
    "DatabaseManager",
    "ModelQuery",
    "SchemaTooNewError",
    "TagRef",
    "normalize_color",
    "normalize_sha256",
    "normalize_tag_name",
    "now_ms",
    "open_library",
]
