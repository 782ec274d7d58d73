"""``ModelResolver``: from a model reference (hash, path, name) to a file to load.

The ComfyUI nodes use it at run time and at queue time; it needs no ComfyUI itself (the
lookup of a name in ComfyUI's model folders is passed in). The order:

1. the sha256 in the library: its path, when the file is there;
2. the library knows the hash but the file is gone: a **targeted relink** of that one
   model: only files of the same size under the roots are hashed (the hash cache makes a
   known file free), and the first with the same content becomes the model's path;
3. the library does not know the hash (or there is none): the path the node carries,
   then the name in ComfyUI's folder for the model's type (both logged);
4. otherwise a ``ResolveError`` naming the model and its short hash.

``check`` is the cheap queue-time version: it reads no file content.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hikaze_mm.config import ModelRoot
from hikaze_mm.database.interfaces import Library
from hikaze_mm.hashing import FileChangedError, HashService
from hikaze_mm.library.scan_walk import Walker

log = logging.getLogger(__name__)

# (ComfyUI folder key, name) -> the full path of that file, or None.
NameLookup = Callable[[str, str], "str | None"]


class ResolveError(LookupError):
    """No file for a model reference; the message names the model for the user."""


class Reference(Protocol):
    """What the resolver needs of a model reference (``workflow.payload.ModelRef`` fits)."""

    @property
    def sha256(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    def label(self) -> str: ...


@dataclass(frozen=True)
class Resolved:
    path: str
    sha256: str | None  # None when the file was found by path or name, not by hash
    how: str  # "library", "relinked", "path" or "name"


class ModelResolver:
    def __init__(
        self,
        db: Library,
        hashes: HashService,
        roots: Callable[[], Sequence[ModelRoot]],
        find_by_name: NameLookup,
        *,
        relink: bool = True,
    ) -> None:
        """``relink=False`` (a library another process writes): a moved model is found,
        but its new path is not recorded."""
        self.db = db
        self.hashes = hashes
        self.roots = roots
        self.find_by_name = find_by_name
        self.may_relink = relink

    def check(self, ref: Reference, folder: str) -> None:
        """Queue-time validation: the model can be resolved, judged without reading files."""
        if ref.sha256 and self.db.models.exists(ref.sha256):
            return  # a relink at run time finds it if it moved
        if self._fallback(ref, folder, quiet=True) is None:
            raise ResolveError(self._unknown(ref, folder))

    def resolve(self, ref: Reference, folder: str) -> Resolved:
        if ref.sha256:
            record = self.db.models.get(ref.sha256)
            if record is not None:
                # A model on a root this host does not mount (a studio's) is another
                # host's file: a copy found here is used, never recorded as its path.
                mounted = record.get("mounted", True)
                if mounted and os.path.isfile(record["path"]):
                    return Resolved(record["path"], record["sha256"], "library")
                found = self.relink(
                    record["sha256"], record.get("size_bytes"), record["path"], record=mounted
                )
                if found is None:
                    gone = (
                        f"its file is gone ({record['path']})"
                        if mounted
                        else f"its file is on root {record['location']['root']!r}, which "
                        "this host does not mount (HIKAZE_ROOT_NAMES),"
                    )
                    raise ResolveError(
                        f"{ref.label()}: {gone} and no file under the model roots has its content"
                    )
                return Resolved(found, record["sha256"], "relinked")
        resolved = self._fallback(ref, folder, quiet=False)
        if resolved is None:
            raise ResolveError(self._unknown(ref, folder))
        return resolved

    def _fallback(self, ref: Reference, folder: str, *, quiet: bool) -> Resolved | None:
        """The path the node carries, then the name in ComfyUI's folder for its type."""
        if ref.path and os.path.isfile(ref.path):
            if not quiet:
                log.info(
                    "hikaze: %s is not in the library; using its path %s", ref.label(), ref.path
                )
            return Resolved(ref.path, None, "path")
        if ref.name:
            path = self.find_by_name(folder, ref.name)
            if path:
                if not quiet:
                    log.info(
                        "hikaze: %s is not in the library; using %s/%s", ref.label(), folder, path
                    )
                return Resolved(path, None, "name")
        return None

    @staticmethod
    def _unknown(ref: Reference, folder: str) -> str:
        where = [f"no file at {ref.path}"] if ref.path else []
        if ref.name:
            where.append(f"no {folder} file named {ref.name!r}")
        tail = f" ({'; '.join(where)})" if where else ""
        return f"cannot find {ref.label()}: it is not in the Hikaze library{tail}"

    def relink(
        self, sha256: str, size: int | None, old_path: str | None = None, *, record: bool = True
    ) -> str | None:
        """Find a moved model by content: hash only the files of its size under the roots.

        The first match becomes the model's path (``missing`` cleared; not with
        ``record=False``); None if none.
        """
        if not size:
            return None
        candidates = [
            f.path for f in Walker(self.roots()).walk() if f.size == size and f.path != old_path
        ]
        for path in candidates:
            try:
                if self.hashes.hash_file(path).sha256 != sha256:
                    continue
            except (OSError, FileChangedError):
                continue
            if not (self.may_relink and record):
                return path
            if self.db.models.relink(sha256, path):
                log.info("hikaze: relinked %s to %s", sha256[:10], path)
                return path
        return None
