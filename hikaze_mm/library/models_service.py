"""``ModelsService``: the library's models, listed, read, edited and deleted.

Every method blocks (SQLite, files): the HTTP layer runs it with ``run_sync``. Edits come
as typed requests (``hikaze_mm.library.requests``: ``ModelPatch``, ``BulkTags``,
``BulkDelete``), checked where they enter; a patch is applied inside one
``Library.transaction()``, so a rejected patch changes nothing.

A user's edit of ``base``, ``trigger_words``, ``preferred_weight`` or ``description``
(also through ``meta_json``) is recorded in ``meta.sources`` as ``"user"``: sidecars and
Civitai, which fill only empty fields, never fill one a user edited (a merge patch of
``{"sources": {"base": null}}`` gives such a field back to them). ``meta_json`` "merge"
is a JSON merge patch (RFC 7386): keys are set recursively and a null value removes its
key; "replace" stores it as the whole new meta.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from hikaze_mm.config import Config
from hikaze_mm.database import ModelQuery, normalize_sha256
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from hikaze_mm.hashing import short_hash
from hikaze_mm.images import ImageStore
from hikaze_mm.library.folders import folder_tree
from hikaze_mm.library.requests import KEEP, BulkDelete, BulkTags, ModelPatch, TagEdit
from hikaze_mm.meta import (
    SOURCE_USER,
    preferred_weight_of,
    sources_of,
    trigger_words_of,
)

# Fields whose user edits ``meta.sources`` records (``base`` is a column, the rest meta).
USER_FIELDS = ("base", "trigger_words", "preferred_weight", "description")
NSFW_TAG = "nsfw"


def is_nsfw(tags: list[dict[str, Any]], civitai_nsfw: Any) -> bool:
    """A model is NSFW when it has the tag "nsfw" (any case) or Civitai (or a sidecar of
    its data) says so."""
    return civitai_nsfw is True or any(t["name"].casefold() == NSFW_TAG for t in tags)


# ---------------------------------------------------------------- patch
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: returns a new value, inputs are not modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_patch_meta(meta: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
    """The model's new meta after ``patch``, user edits recorded in ``meta.sources``.
    ``meta`` is not modified."""
    edited: list[str] = []
    if patch.meta is not None:
        given = patch.meta.value
        meta = copy.deepcopy(given) if patch.meta.mode == "replace" else merge_patch(meta, given)
        edited += [f for f in USER_FIELDS if f in given]
    else:
        meta = copy.deepcopy(meta)
    for key, value in patch.meta_fields().items():
        if value is None or value == []:
            meta.pop(key, None)
        else:
            meta[key] = value
        edited.append(key)
    if patch.base is not KEEP:
        edited.append("base")
    if edited:
        sources = sources_of(meta)
        sources.update(dict.fromkeys(edited, SOURCE_USER))
        meta["sources"] = sources
    return meta


class ModelsService:
    """The library's models as clients see them: listing, facets, detail, edits, deletion."""

    def __init__(self, db: Library, images: ImageStore, config: Config) -> None:
        self.db = db
        self.images = images
        self.config = config

    # ------------------------------------------------------------ reading
    def list(self, query: ModelQuery) -> dict[str, Any]:
        """``{total, offset, limit, items}`` for one page of the library (``list_json``
        parsed)."""
        page: dict[str, Any] = json.loads(self.list_json(query))
        return page

    def list_json(self, query: ModelQuery) -> str:
        """``{total, offset, limit, items}`` for one page of the library, as JSON text.

        Each item is built by SQLite in the page's own statement (``page_json``: the
        columns, tags, trigger words, preferred weight, Civitai URL and NSFW flag); only
        ``image_count`` and ``cover_image`` (the image store's in-memory index) are added
        here, to the item's text. A fixed number of statements whatever the page's length.
        """
        total, rows = self.db.listing.page_json(query)
        images = self.images.counts_and_covers([sha for sha, _item in rows])
        items = []
        for sha, item in rows:
            count, cover = images[sha]
            # A cover's name is hex digits, digits, "_" and ".webp": JSON with no escape.
            cover_json = "null" if cover is None else f'"{cover}"'
            items.append(f'{item},"image_count":{count},"cover_image":{cover_json}}}')
        return (
            f'{{"total":{total},"offset":{query.offset},"limit":{query.limit},'
            f'"items":[{",".join(items)}]}}'
        )

    def type_counts(self, *, include_missing: bool = False) -> list[dict[str, Any]]:
        return self.db.listing.type_counts(include_missing=include_missing)

    def base_counts(self, *, include_missing: bool = False) -> list[dict[str, Any]]:
        return self.db.listing.base_counts(include_missing=include_missing)

    def stats(self) -> dict[str, Any]:
        """Totals for a dashboard: models, sizes, types, tags, pending imports, images."""
        totals = self.db.listing.totals()
        counts = self.images.image_counts(self.db.listing.all_sha256s())
        pending = {status: n for status, n in self.db.pending.counts().items() if n}
        tags = self.db.tags.count()
        return {
            "models": totals["models"],
            "missing": totals["missing"],
            "total_size_bytes": totals["size"],
            "used": totals["used"],
            "types": {t["type"]: t["count"] for t in self.type_counts()},
            "bases": {b["base"] or "unknown": b["count"] for b in self.base_counts()},
            "tags": tags["tags"],
            "tag_links": tags["links"],
            "images": sum(counts.values()),
            "models_with_images": sum(1 for n in counts.values() if n),
            "pending": sum(pending.values()),
            "pending_by_status": pending,
        }

    def detail(self, sha256: str) -> dict[str, Any]:
        """The full record: columns, meta, tags, the names of its images on disk, and
        ``trigger_words`` and ``preferred_weight`` (from meta; [] and null when unset)."""
        record = self.db.models.get(sha256)
        if record is None:
            raise NotFoundError(f"no model {normalize_sha256(sha256)}")
        names = self.images.image_names(record["sha256"])
        record["short_hash"] = short_hash(record["sha256"])
        record["trigger_words"] = trigger_words_of(record["meta"].get("trigger_words"))
        record["preferred_weight"] = preferred_weight_of(record["meta"].get("preferred_weight"))
        civitai = record["meta"].get("civitai")
        record["nsfw"] = is_nsfw(record["tags"], isinstance(civitai, dict) and civitai.get("nsfw"))
        record["images"] = names
        record["image_count"] = len(names)
        return record

    # ------------------------------------------------------------ writing
    def patch(self, sha256: str, patch: ModelPatch) -> dict[str, Any]:
        """Apply a patch atomically; return the updated full record."""
        sha = normalize_sha256(sha256)
        with self.db.transaction():
            record = self.db.models.get(sha)
            if record is None:
                raise NotFoundError(f"no model {sha}")
            columns: dict[str, Any] = patch.columns()
            if patch.changes_meta():
                columns["meta"] = apply_patch_meta(record["meta"], patch)
            if columns:
                self.db.models.update(sha, **columns)
            if patch.tags is not None:
                self._apply_tags(sha, patch.tags, record["tags"])
        return self.detail(sha)

    def _apply_tags(self, sha: str, edit: TagEdit, current: list[dict[str, Any]]) -> None:
        """Apply a tag edit (inside the caller's transaction): names are created when
        new, ids must exist, and removing a tag the model lacks is a no-op."""
        models, tags = self.db.models, self.db.tags
        given = edit.add if edit.set_to is None else edit.set_to
        try:
            wanted = tags.resolve(list(given), create=True)
        except NotFoundError as exc:
            raise ValidationError(exc.detail) from None
        if edit.set_to is not None:
            have = {int(t["id"]) for t in current}
            models.remove_tags(sha, sorted(have - set(wanted)))
        models.add_tags(sha, wanted)
        models.remove_tags(sha, list(edit.remove))

    def trigger_words(self, sha256: str) -> list[str]:
        """The model's trigger words (``meta.trigger_words``, strings only); [] if none."""
        words = self.db.models.meta_values([normalize_sha256(sha256)], "trigger_words")
        return trigger_words_of(next(iter(words.values()), None))

    def mark_used(self, sha256: str) -> dict[str, Any]:
        """A load of the model: ``last_used_at`` now and one more ``use_count``."""
        record = self.db.models.mark_used(sha256)
        return {
            "sha256": record["sha256"],
            "last_used_at": record["last_used_at"],
            "use_count": record["use_count"],
        }

    def delete(self, sha256: str, *, delete_file: bool = False) -> dict[str, Any]:
        """Remove a model's record, tags links and images; its file only with ``delete_file``.

        The file goes first (only if it lies under a configured model root), then the
        record, then the images: a crash in between leaves a state that the same request,
        retried, finishes (an absent file is not an error).
        """
        sha = normalize_sha256(sha256)
        record = self.db.models.get(sha)
        if record is None:
            raise NotFoundError(f"no model {sha}")
        file_deleted = False
        if delete_file:
            path = Path(record["path"])
            if not _under_root(self.config, path):
                raise ForbiddenError(
                    f"{path} is not under a configured model root; not deleting it"
                )
            file_deleted = _delete_file(path)
            self.db.hash_cache.forget(str(path))
        self.db.models.delete(sha)
        removed = self.images.delete_all(sha)
        return {
            "sha256": sha,
            "deleted": True,
            "file_deleted": file_deleted,
            "images_removed": removed,
        }

    # ------------------------------------------------------------ folders and bulk edits
    def folders(self) -> dict[str, Any]:
        """The subfolder tree of each model root with the present models under each."""
        paths = (path for path, _sha in self.db.models.paths(missing=False))
        return {"roots": folder_tree([r.path for r in self.config.model_roots], paths)}

    def bulk_tags(self, request: BulkTags) -> dict[str, Any]:
        """Add and remove tags on many models in one transaction (tags are created when
        new; unknown models are listed in ``not_found`` and skipped).
        ``{"updated": n, "not_found": [...]}``."""
        shas = list(request.sha256s)
        with self.db.transaction():
            known = set(self.db.models.sizes(shas))
            add = self.db.tags.resolve(list(request.add), create=True)
            # Removing a tag nobody has is a no-op, as in a patch.
            remove = self.db.tags.resolve(list(request.remove), create=False, missing_ok=True)
            self.db.models.retag([sha for sha in shas if sha in known], add=add, remove=remove)
        self.db.listing.tidy_search_index()
        return {"updated": len(known), "not_found": [s for s in shas if s not in known]}

    def bulk_delete(self, request: BulkDelete) -> dict[str, Any]:
        """Delete each model as ``delete`` does; one failing (unknown, or a file outside
        the roots) does not stop the rest.
        ``{"deleted": n, "files_deleted": n, "failed": [{sha256, error, detail}]}``."""
        deleted = files = 0
        failed: list[dict[str, str]] = []
        for sha in request.sha256s:
            try:
                result = self.delete(sha, delete_file=request.delete_file)
            except (NotFoundError, ForbiddenError) as exc:
                failed.append({"sha256": sha, "error": exc.error, "detail": exc.detail})
                continue
            deleted += 1
            files += bool(result["file_deleted"])
        return {"deleted": deleted, "files_deleted": files, "failed": failed}

    # ------------------------------------------------------------ duplicates
    def duplicates(self) -> list[dict[str, Any]]:
        """Models found at several paths: ``{sha256, name, size_bytes, paths, wasted_bytes}``,
        the largest waste first (the primary path first in each)."""
        return self.db.models.duplicates()

    def delete_copy(self, sha256: str, path: str | None, *, confirm: bool) -> dict[str, Any]:
        """Delete one extra copy of a model: ``path`` must be a recorded copy (404), under a
        model root (403), not the last copy on disk (409), and ``confirm`` given (400).
        When it was the primary path, the primary moves to a surviving copy."""
        sha = normalize_sha256(sha256)
        if not path:
            raise ValidationError("path is required")
        if not confirm:
            raise ValidationError("deleting a file needs confirm=true")
        record = self.db.models.get(sha)
        if record is None:
            raise NotFoundError(f"no model {sha}")
        paths = self.db.models.files([sha]).get(sha, [])
        if path not in paths:
            raise NotFoundError(f"{path} is not a known copy of the model {sha}")
        target = Path(path)
        if not _under_root(self.config, target):
            raise ForbiddenError(f"{path} is not under a configured model root; not deleting it")
        survivors = [p for p in paths if p != path and os.path.isfile(p)]
        if not survivors:
            raise ConflictError(f"{path} is the last copy of the model {sha}; not deleting it")
        deleted = _delete_file(target)
        self.db.hash_cache.forget(path)
        with self.db.transaction():
            self.db.models.remove_files([path])
            primary = record["path"]
            if primary == path:
                self.db.models.relink(sha, survivors[0])
                primary = survivors[0]
        return {
            "sha256": sha,
            "deleted": path,
            "file_deleted": deleted,
            "path": primary,
            "paths": self.db.models.files([sha]).get(sha, []),
        }


def _under_root(config: Config, path: Path) -> bool:
    """True when both the path as stored and its real target lie inside one model root."""
    if config.root_for(path) is None:
        return False
    lexical = Path(os.path.abspath(path))
    return any(lexical == r.path or lexical.is_relative_to(r.path) for r in config.model_roots)


def _delete_file(path: Path) -> bool:
    """Delete a model file; False when it is gone already. Errors as 403 or 409."""
    try:
        if path.is_dir() and not path.is_symlink():
            raise ConflictError(f"{path} is a directory; not deleting it")
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except PermissionError as exc:
        raise ForbiddenError(f"cannot delete {path}: {exc.strerror}") from None
    except OSError as exc:
        raise ConflictError(f"cannot delete {path}: {exc.strerror or exc}") from None
