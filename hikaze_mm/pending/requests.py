"""The typed requests the pending services take: promote one or many pending models,
hash a model file, start the migration.

Each is checked where it enters (``hikaze_mm.server.requests.migration`` parses the
API's JSON bodies into them): ids are integers, strategies among
``hikaze_mm.policy``'s, paths valid paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PromoteOne:
    """Promote a pending model; a conflict without ``conf_strategy`` is reported."""

    pending_id: int
    conf_strategy: str | None = None


@dataclass(frozen=True)
class PromoteMany:
    """Promote pending models in turn (duplicates dropped, order kept)."""

    ids: tuple[int, ...]
    conf_strategy: str | None = None


@dataclass(frozen=True)
class HashFile:
    """Hash an absolute file path; with ``promote``, a pending model's file is promoted."""

    path: Path
    promote: bool = False


@dataclass(frozen=True)
class MigrationStart:
    """Start Stage 2 (after Stage 1 from a legacy database, if one is named); the
    strategy is the library's default when None."""

    legacy_db_path: Path | None = None
    legacy_images_dir: Path | None = None
    conf_strategy: str | None = None
