"""Stage 2 operations behind the HTTP API and the CLI (blocking: run them off the loop).

* ``promote_batch``: several pending ids, one result per id (a failure never stops the
  batch).
* ``list_pending``: a page of pending models with status and error.
* ``resolve_hash_path``: for ``POST /api/models/sha256``, which hashes only files under
  a configured model root or already known to the library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hikaze_mm.config import Config
from hikaze_mm.database import DatabaseManager
from hikaze_mm.database.schema import PENDING_STATUSES
from hikaze_mm.errors import (
    ForbiddenError,
    HikazeError,
    NotFoundError,
    UnprocessableError,
    ValidationError,
)
from hikaze_mm.hashing import FileChangedError, HashResult
from hikaze_mm.images import ImageStore
from hikaze_mm.pending.promotion import (
    API_STRATEGIES,
    Promoter,
    check_pending_id,
    check_strategy,
)

MAX_BATCH = 1000
MAX_PATH_CHARS = 4096
PAGE_LIMIT = 500


def check_ids(value: object) -> list[int]:
    """A JSON list of pending ids (duplicates dropped, order kept)."""
    if not isinstance(value, list) or not value:
        raise ValidationError("ids must be a non-empty list of pending ids")
    if len(value) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} ids per batch")
    return list(dict.fromkeys(check_pending_id(v) for v in value))


def promote_batch(
    promoter: Promoter, ids: list[int], conf_strategy: str | None
) -> list[dict[str, Any]]:
    """Promote each id in turn; each result is a success or ``{"status": "error", ...}``."""
    strategy = check_strategy(conf_strategy, API_STRATEGIES)
    results: list[dict[str, Any]] = []
    for pending_id in ids:
        try:
            results.append(promoter.promote(pending_id, strategy))
        except HikazeError as exc:  # a conflict's body carries both records
            results.append({"id": pending_id, "status": "error", "code": exc.status, **exc.body()})
    return results


def list_pending(
    db: DatabaseManager, images: ImageStore, *, status: str | None, offset: int, limit: int
) -> dict[str, Any]:
    """A page of pending models, each with the names of its original images."""
    if status is not None and status not in PENDING_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(PENDING_STATUSES)}")
    items = db.get_pending_imports(status=status, offset=offset, limit=limit)
    names = images.pending_image_names(item["id"] for item in items)
    for item in items:
        item["images"] = names[item["id"]]
    return {
        "items": items,
        "total": db.count_pending(status),
        "offset": offset,
        "limit": limit,
    }


def resolve_hash_path(config: Config, db: DatabaseManager, raw: object) -> Path:
    """The file a client may hash: under a model root or known to the DB, else 403."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError("path must be a non-empty string")
    if len(raw) > MAX_PATH_CHARS or "\x00" in raw:
        raise ValidationError("path is not a valid file path")
    path = Path(raw)
    if not path.is_absolute():
        raise ValidationError("path must be absolute")
    if (
        config.root_for(path) is None
        and db.get_model_by_path(raw) is None
        and db.get_pending_by_path(raw) is None
    ):
        raise ForbiddenError("path is outside the model roots and unknown to the library")
    if not path.exists():
        raise NotFoundError(f"no such file: {raw}")
    if not path.is_file():
        raise ValidationError(f"not a file: {raw}")
    return path


def pending_id_for(db: DatabaseManager, path: Path) -> int | None:
    """The pending model whose file is ``path`` (as stored, or with symlinks resolved)."""
    for candidate in dict.fromkeys((str(path), str(path.resolve()))):
        row = db.get_pending_by_path(candidate)
        if row is not None:
            return int(row["id"])
    return None


def hash_failure(path: Path, exc: OSError | FileChangedError) -> HikazeError:
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"no such file: {path}")
    if isinstance(exc, FileChangedError):
        return UnprocessableError(f"{exc}; try again")
    return UnprocessableError(f"cannot read {path}: {exc.strerror or exc}")


def hash_answer(result: HashResult) -> dict[str, Any]:
    return {
        "sha256": result.sha256,
        "autov2": result.short_hash,
        "cached": result.cached,
        "path": result.path,
    }
