"""The library's side of an image's credits: a model by hash or by file, never read.

``HikazeSaveImage`` credits each model an image used by its SHA-256. The plugin binds a
``LibraryCredits`` to the nodes' ``CONTEXT``: ``by_sha`` for our loaders' payloads, and
``by_path`` for a file that ComfyUI's own loaders named: the library's model at that path,
else the hash cache's entry for that exact file version (size, mtime, inode). Neither reads
a model file; a file the library does not know is ``None`` (the node leaves it out).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import HikazeError
from hikaze_mm.hashing import HashService


@dataclass(frozen=True)
class KnownModel:
    """A model of the library as an image's credits need it."""

    sha256: str
    name: str  # the file's stem (as A1111 names checkpoints, LoRAs and embeddings)
    civitai: dict[str, Any] | None  # meta.civitai when it has a model and a version id


def civitai_ids(meta: Any) -> dict[str, Any] | None:
    """``meta["civitai"]`` when it names a model and a version by positive integer ids."""
    civitai = meta.get("civitai") if isinstance(meta, dict) else None
    if not isinstance(civitai, dict):
        return None
    ids = [civitai.get("model_id"), civitai.get("version_id")]
    if all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        return dict(civitai)
    return None


def known(record: dict[str, Any] | None) -> KnownModel | None:
    if record is None:
        return None
    path = str(record.get("path") or "")
    name = Path(path.replace("\\", "/")).stem if path else str(record.get("name") or "")
    return KnownModel(
        record["sha256"], name or str(record.get("name") or ""), civitai_ids(record.get("meta"))
    )


class LibraryCredits:
    """Lookups for the save node: by hash, by path; no file content is ever read."""

    def __init__(self, db: Library, hashes: HashService) -> None:
        self.db = db
        self.hashes = hashes

    def by_sha(self, sha256: str) -> KnownModel | None:
        try:
            return known(self.db.models.get(sha256))
        except HikazeError:  # not a hash
            return None

    def by_path(self, path: str) -> KnownModel | None:
        """The library's model at ``path`` (its primary path), else the model whose hash the
        cache holds for this exact file; None for a file the library does not know."""
        absolute = str(Path(path).absolute())
        record = self.db.models.get_by_path(absolute)
        if record is None and absolute != os.path.realpath(absolute):
            record = self.db.models.get_by_path(os.path.realpath(absolute))
        if record is not None and not record.get("missing"):
            return known(record)
        try:
            cached = self.hashes.lookup_cache(absolute)
        except OSError:  # the file is gone
            return None
        return self.by_sha(cached.sha256) if cached is not None else None
