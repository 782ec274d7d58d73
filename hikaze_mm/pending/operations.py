"""``PendingService``: the pending models as the API and the CLI see them.

Listing, detail, promotion of one or many, and hashing a model file on request
(``POST /api/models/sha256``, which hashes only files under a configured model root or
already known to the library, and with ``pending`` promotes the file's pending model).
Requests come typed (``hikaze_mm.pending.requests``), checked where they enter. Every
method blocks (SQLite, files): handlers run them with ``run_sync``.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from hikaze_mm.config import Config
from hikaze_mm.database import PENDING_STATUSES
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import (
    ForbiddenError,
    HikazeError,
    NotFoundError,
    UnprocessableError,
    ValidationError,
)
from hikaze_mm.hashing import FileChangedError, HashService
from hikaze_mm.images import ImageStore
from hikaze_mm.pending.promotion import Promoter
from hikaze_mm.pending.requests import HashFile, PromoteMany, PromoteOne


class PendingService:
    def __init__(
        self,
        db: Library,
        images: ImageStore,
        hashes: HashService,
        promoter: Promoter,
        config: Config,
    ) -> None:
        self.db = db
        self.images = images
        self.hashes = hashes
        self.promoter = promoter
        self.config = config

    def list(self, *, status: str | None, offset: int, limit: int) -> dict[str, Any]:
        """A page of pending models, each with the names of its original images."""
        if status is not None and status not in PENDING_STATUSES:
            raise ValidationError(f"status must be one of {', '.join(PENDING_STATUSES)}")
        items = self.db.pending.list(status=status, offset=offset, limit=limit)
        names = self.images.pending_image_names(item["id"] for item in items)
        for item in items:
            item["images"] = names[item["id"]]
        return {
            "items": items,
            "total": self.db.pending.count(status),
            "offset": offset,
            "limit": limit,
        }

    def detail(self, pending_id: int) -> dict[str, Any]:
        return self.promoter.pending_view(pending_id)

    def promote(self, request: PromoteOne) -> dict[str, Any]:
        """Promote one pending model; a conflict without a conf_strategy is a 409."""
        return self.promoter.promote(request.pending_id, request.conf_strategy)

    def promote_many(self, request: PromoteMany) -> dict[str, Any]:
        """Promote each id in turn; a failure never stops the batch.

        ``{results, succeeded, failed}``; each result is a success or
        ``{"id", "status": "error", "code", "error", "detail", ...}``.
        """
        results: list[dict[str, Any]] = []
        for pending_id in request.ids:
            try:
                results.append(self.promoter.promote(pending_id, request.conf_strategy))
            except HikazeError as exc:  # a conflict's body carries both records
                results.append(
                    {"id": pending_id, "status": "error", "code": exc.status, **exc.body()}
                )
        succeeded = sum(1 for r in results if r["status"] == "success")
        return {
            "results": results,
            "succeeded": succeeded,
            "failed": len(request.ids) - succeeded,
        }

    def hash_model_file(self, request: HashFile) -> dict[str, Any]:
        """Hash a model file (cached). With ``promote``, a file that is a pending model is
        promoted instead: ``{"sha256", "promoted": <result>}``."""
        path = self._hashable_path(request.path)
        if request.promote:
            pending_id = self._pending_id_for(path)
            if pending_id is not None:
                result = self.promoter.promote(pending_id, None)
                return {"sha256": result["sha256"], "promoted": result}
        try:
            result = self.hashes.hash_file(path)
        except FileNotFoundError:
            raise NotFoundError(f"no such file: {path}") from None
        except FileChangedError as exc:
            raise UnprocessableError(f"{exc}; try again") from None
        except OSError as exc:
            raise UnprocessableError(f"cannot read {path}: {exc.strerror or exc}") from None
        return {
            "sha256": result.sha256,
            "autov2": result.short_hash,
            "cached": result.cached,
            "path": result.path,
        }

    def _hashable_path(self, path: Path) -> Path:
        """The file a client may hash: under a model root or known to the DB, else 403."""
        text = str(path)
        if (
            self.config.root_for(path) is None
            and self.db.models.get_by_path(text) is None
            and self.db.pending.get_by_path(text) is None
        ):
            raise ForbiddenError("path is outside the model roots and unknown to the library")
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFoundError(f"no such file: {text}") from None
        except OSError as exc:
            raise ValidationError(f"cannot use {text}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ValidationError(f"not a file: {text}")
        return path

    def _pending_id_for(self, path: Path) -> int | None:
        """The pending model whose file is ``path`` (as stored, or with symlinks resolved)."""
        for candidate in dict.fromkeys((str(path), str(path.resolve()))):
            row = self.db.pending.get_by_path(candidate)
            if row is not None:
                return int(row["id"])
        return None
