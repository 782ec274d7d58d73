"""Reading and editing one model: detail, patch, delete, "used" stamp.

Every function is blocking (SQLite, files): the HTTP layer runs it with ``run_sync``.
A patch is validated completely before anything is written, then applied inside one
``DatabaseManager.transaction()``, so a rejected patch changes nothing.

Patch body (every field optional, at least one required)::

    {"name": "My LoRA", "type": "loras", "base": "SDXL" | null,
     "meta_json": {...}, "meta_mode": "merge" | "replace",
     "tags": {"add": ["style", 3], "remove": ["nsfw"]} | {"set": ["style"]}}

``meta_mode`` "merge" (the default) applies ``meta_json`` as a JSON merge patch
(RFC 7386): keys are set recursively and a null value removes its key. "replace" stores
``meta_json`` as the whole new meta. Tags are given by name (created if new, any case
matches an existing tag) or by id (which must exist).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

from hikaze_mm.config import Config
from hikaze_mm.database import DatabaseManager, normalize_sha256, normalize_tag_name, now_ms
from hikaze_mm.database.manager import TagRef
from hikaze_mm.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from hikaze_mm.hashing import short_hash
from hikaze_mm.images import ImageStore
from hikaze_mm.library.validation import check_keys, text_field
from hikaze_mm.model_types import canonical_type

PATCH_FIELDS = ("name", "type", "base", "meta_json", "meta_mode", "tags")
TAG_OPS = ("add", "remove", "set")
MAX_TAGS_PER_PATCH = 500

TYPE_RE = re.compile(r"[a-z0-9][a-z0-9_\-]*")


def model_detail(db: DatabaseManager, images: ImageStore, sha256: str) -> dict[str, Any]:
    """The full record: columns, meta, tags, and the names of its images on disk."""
    record = db.get_model(sha256)
    if record is None:
        raise NotFoundError(f"no model {normalize_sha256(sha256)}")
    names = images.image_names(record["sha256"])
    record["short_hash"] = short_hash(record["sha256"])
    record["images"] = names
    record["image_count"] = len(names)
    return record


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


def _meta_value(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # a client may send the column's JSON text as is
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ValidationError(f"meta_json is not valid JSON: {exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("meta_json must be a JSON object")
    return value


def _tag_refs(value: Any, op: str) -> list[TagRef]:
    if not isinstance(value, list):
        raise ValidationError(f"tags.{op} must be a list of tag names or ids")
    if len(value) > MAX_TAGS_PER_PATCH:
        raise ValidationError(f"tags.{op} holds at most {MAX_TAGS_PER_PATCH} tags")
    refs: list[TagRef] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ValidationError(f"tags.{op} items must be tag names or ids, not {item!r}")
        refs.append(normalize_tag_name(item) if isinstance(item, str) else item)
    return refs


def _ref_key(ref: TagRef) -> TagRef:
    return ref.casefold() if isinstance(ref, str) else ref


def _parse_tags(value: Any) -> dict[str, list[TagRef]]:
    if not isinstance(value, dict):
        raise ValidationError('tags must be {"add": [...], "remove": [...]} or {"set": [...]}')
    unknown = sorted(set(value) - set(TAG_OPS))
    if unknown:
        raise ValidationError(f"unknown tags operations: {', '.join(unknown)}")
    ops = {op: _tag_refs(value[op], op) for op in TAG_OPS if op in value}
    if "set" in ops and ("add" in ops or "remove" in ops):
        raise ValidationError("tags.set cannot be combined with tags.add or tags.remove")
    both = {_ref_key(r) for r in ops.get("add", [])} & {_ref_key(r) for r in ops.get("remove", [])}
    if both:
        raise ValidationError(f"tags both added and removed: {sorted(map(str, both))}")
    return ops


def parse_patch(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a patch body into ``{column changes..., "meta": (mode, dict), "tags": ops}``."""
    check_keys(body, PATCH_FIELDS, "model")
    patch: dict[str, Any] = {}
    if "name" in body:
        patch["name"] = text_field(body["name"], "name", max_len=255)
    if "type" in body:
        model_type = canonical_type(text_field(body["type"], "type", max_len=64))
        if not TYPE_RE.fullmatch(model_type):
            raise ValidationError(
                f"type must be a folder key (letters, digits, _ and -), not {body['type']!r}"
            )
        patch["type"] = model_type
    if "base" in body:
        patch["base"] = text_field(body["base"], "base", max_len=64, nullable=True)
    if "meta_mode" in body and "meta_json" not in body:
        raise ValidationError("meta_mode needs meta_json")
    if "meta_json" in body:
        mode = body.get("meta_mode", "merge")
        if mode not in ("merge", "replace"):
            raise ValidationError(f"meta_mode must be merge or replace, not {mode!r}")
        patch["meta"] = (mode, _meta_value(body["meta_json"]))
    if "tags" in body:
        patch["tags"] = _parse_tags(body["tags"])
    return patch


def _existing_tag_id(db: DatabaseManager, ref: TagRef) -> int | None:
    tag = db.get_tag(ref)
    return int(tag["id"]) if tag else None


def _apply_tags(db: DatabaseManager, sha: str, ops: dict[str, list[TagRef]]) -> None:
    """Apply tag operations; runs inside the caller's transaction."""

    def wanted_id(ref: TagRef) -> int:
        if isinstance(ref, str):
            return int(db.add_tag(ref)["id"])
        tag_id = _existing_tag_id(db, ref)
        if tag_id is None:
            raise ValidationError(f"no tag with id {ref}")
        return tag_id

    if "set" in ops:
        wanted = {wanted_id(ref) for ref in ops["set"]}
        current = {int(t["id"]) for t in db.tags_for_models([sha]).get(sha, [])}
        for tag_id in current - wanted:
            db.untag_model(sha, tag_id)
        for tag_id in sorted(wanted - current):
            db.tag_model(sha, tag_id)
        return
    for ref in ops.get("add", []):
        db.tag_model(sha, wanted_id(ref))
    for ref in ops.get("remove", []):
        tag_id = _existing_tag_id(db, ref)
        if tag_id is not None:  # removing a tag the model (or the library) lacks: no-op
            db.untag_model(sha, tag_id)


def patch_model(
    db: DatabaseManager, images: ImageStore, sha256: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Apply a validated patch atomically; return the updated full record."""
    sha = normalize_sha256(sha256)
    patch = parse_patch(body)
    with db.transaction():
        record = db.get_model(sha)
        if record is None:
            raise NotFoundError(f"no model {sha}")
        columns = {k: patch[k] for k in ("name", "type", "base") if k in patch}
        if "meta" in patch:
            mode, meta = patch["meta"]
            columns["meta"] = meta if mode == "replace" else merge_patch(record["meta"], meta)
        if columns:
            db.update_model(sha, **columns)
        if "tags" in patch:
            _apply_tags(db, sha, patch["tags"])
    return model_detail(db, images, sha)


# ---------------------------------------------------------------- used, delete
def mark_used(db: DatabaseManager, sha256: str) -> dict[str, Any]:
    record = db.update_model(sha256, last_used_at=now_ms())
    return {"sha256": record["sha256"], "last_used_at": record["last_used_at"]}


def _under_root(config: Config, path: Path) -> bool:
    """True when both the path as stored and its real target lie inside one model root."""
    if config.root_for(path) is None:
        return False
    lexical = Path(os.path.abspath(path))
    return any(lexical == r.path or lexical.is_relative_to(r.path) for r in config.model_roots)


def delete_model(
    db: DatabaseManager,
    images: ImageStore,
    config: Config,
    sha256: str,
    *,
    delete_file: bool = False,
) -> dict[str, Any]:
    """Remove a model's record, tags links and images; its file only with ``delete_file``.

    The file goes first (only if it lies under a configured model root), then the record,
    then the images: a crash in between leaves a state that the same request, retried,
    finishes (an absent file is not an error).
    """
    sha = normalize_sha256(sha256)
    record = db.get_model(sha)
    if record is None:
        raise NotFoundError(f"no model {sha}")
    file_deleted = False
    if delete_file:
        path = Path(record["path"])
        if not _under_root(config, path):
            raise ForbiddenError(f"{path} is not under a configured model root; not deleting it")
        try:
            if path.is_dir() and not path.is_symlink():
                raise ConflictError(f"{path} is a directory; not deleting it")
            path.unlink()
            file_deleted = True
        except FileNotFoundError:
            pass
        except PermissionError as exc:
            raise ForbiddenError(f"cannot delete {path}: {exc.strerror}") from None
        except OSError as exc:
            raise ConflictError(f"cannot delete {path}: {exc.strerror or exc}") from None
        db.forget_hash(str(path))
    db.delete_model(sha)
    removed = images.delete_all(sha)
    return {"sha256": sha, "deleted": True, "file_deleted": file_deleted, "images_removed": removed}
