"""The edits' JSON bodies as typed requests: a model patch, bulk edits of models, tag
edits and an image order.

Patch body (every field optional, at least one required)::

    {"name": "My LoRA", "type": "loras", "base": "SDXL" | null,
     "trigger_words": ["word", ...] | null, "preferred_weight": 0.8 | null,
     "meta_json": {...}, "meta_mode": "merge" | "replace",
     "tags": {"add": ["style", 3], "remove": ["nsfw"]} | {"set": ["style"]}}

``trigger_words`` is at most 100 strings of at most 200 characters, trimmed, empties and
duplicates dropped (order kept); ``preferred_weight`` a number from -10 to 10; null
clears either. ``meta_mode`` "merge" (the default) applies ``meta_json`` as a JSON merge
patch, "replace" stores it as the whole new meta. Tags are given by name (created if
new, any case matches an existing tag) or by id (which must exist).
"""

from __future__ import annotations

import math
import re
from typing import Any

from hikaze_mm.database import TagRef, normalize_color, normalize_sha256, normalize_tag_name
from hikaze_mm.errors import ValidationError
from hikaze_mm.library.requests import (
    BulkDelete,
    BulkTags,
    ImageOrder,
    MetaEdit,
    ModelPatch,
    TagCreate,
    TagEdit,
    TagUpdate,
)
from hikaze_mm.meta import (
    MAX_PREFERRED_WEIGHT,
    MAX_TRIGGER_WORD_CHARS,
    MAX_TRIGGER_WORDS,
    trigger_words_of,
)
from hikaze_mm.model_types import canonical_type
from hikaze_mm.params import check_int, parse_json
from hikaze_mm.policy import MAX_BULK_MODELS, MAX_IMAGE_SEQ, MAX_TAGS_PER_EDIT
from hikaze_mm.server.requests.fields import check_keys, text_field

PATCH_FIELDS = (
    "name",
    "type",
    "base",
    "trigger_words",
    "preferred_weight",
    "meta_json",
    "meta_mode",
    "tags",
)
TAG_OPS = ("add", "remove", "set")
TAG_FIELDS = ("name", "color")
TYPE_RE = re.compile(r"[a-z0-9][a-z0-9_\-]*")


# ---------------------------------------------------------------- tags of a patch
def _tag_refs(value: Any, op: str) -> tuple[TagRef, ...]:
    if not isinstance(value, list):
        raise ValidationError(f"tags.{op} must be a list of tag names or ids")
    if len(value) > MAX_TAGS_PER_EDIT:
        raise ValidationError(f"tags.{op} holds at most {MAX_TAGS_PER_EDIT} tags")
    refs: list[TagRef] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ValidationError(f"tags.{op} items must be tag names or ids, not {item!r}")
        refs.append(
            normalize_tag_name(item)
            if isinstance(item, str)
            else check_int(item, f"a tag id in tags.{op}")
        )
    return tuple(refs)


def _ref_key(ref: TagRef) -> TagRef:
    return ref.casefold() if isinstance(ref, str) else ref


def tag_edit(value: Any) -> TagEdit:
    """``{"add": [...], "remove": [...]}`` or ``{"set": [...]}``."""
    if not isinstance(value, dict):
        raise ValidationError('tags must be {"add": [...], "remove": [...]} or {"set": [...]}')
    unknown = sorted(set(value) - set(TAG_OPS))
    if unknown:
        raise ValidationError(f"unknown tags operations: {', '.join(unknown)}")
    ops = {op: _tag_refs(value[op], op) for op in TAG_OPS if op in value}
    if "set" in ops and ("add" in ops or "remove" in ops):
        raise ValidationError("tags.set cannot be combined with tags.add or tags.remove")
    both = {_ref_key(r) for r in ops.get("add", ())} & {_ref_key(r) for r in ops.get("remove", ())}
    if both:
        raise ValidationError(f"tags both added and removed: {sorted(map(str, both))}")
    return TagEdit(add=ops.get("add", ()), remove=ops.get("remove", ()), set_to=ops.get("set"))


# ---------------------------------------------------------------- patch fields
def parse_trigger_words(value: Any) -> tuple[str, ...]:
    """A client's trigger words: a list of at most MAX_TRIGGER_WORDS strings of at most
    MAX_TRIGGER_WORD_CHARS characters each (after trimming); empties and duplicates are
    dropped, order kept. Null is the empty list."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError("trigger_words must be a list of strings")
    if len(value) > MAX_TRIGGER_WORDS:
        raise ValidationError(f"trigger_words holds at most {MAX_TRIGGER_WORDS} words")
    words: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValidationError(f"trigger_words items must be strings, not {item!r:.40}")
        word = item.strip()
        if len(word) > MAX_TRIGGER_WORD_CHARS:
            raise ValidationError(
                f"a trigger word is at most {MAX_TRIGGER_WORD_CHARS} characters: {word!r:.40}"
            )
        if any(ord(c) < 32 for c in word):
            raise ValidationError("trigger words must not contain control characters")
        words.append(word)
    return tuple(trigger_words_of(words))


def parse_preferred_weight(value: Any) -> float | None:
    """A number from -10 to 10, or None (clear)."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or abs(value) > MAX_PREFERRED_WEIGHT:
        raise ValidationError(
            f"preferred_weight must be a number from -{MAX_PREFERRED_WEIGHT:g} to "
            f"{MAX_PREFERRED_WEIGHT:g}, or null, not {value!r:.40}"
        )
    return value


def _model_type(value: Any) -> str:
    model_type = canonical_type(text_field(value, "type", max_len=64) or "")
    if not TYPE_RE.fullmatch(model_type):
        raise ValidationError(
            f"type must be a folder key (letters, digits, _ and -), not {value!r}"
        )
    return model_type


def meta_edit(body: dict[str, Any]) -> MetaEdit | None:
    """``meta_json`` (an object, or its JSON text) and ``meta_mode``."""
    if "meta_json" not in body:
        if "meta_mode" in body:
            raise ValidationError("meta_mode needs meta_json")
        return None
    mode = body.get("meta_mode", "merge")
    if mode not in ("merge", "replace"):
        raise ValidationError(f"meta_mode must be merge or replace, not {mode!r}")
    value = body["meta_json"]
    if isinstance(value, str):  # a client may send the column's JSON text as is
        value = parse_json(value, "meta_json") if value.strip() else {}
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValidationError("meta_json must be a JSON object")
    return MetaEdit(mode=mode, value=value)


def model_patch(body: dict[str, Any]) -> ModelPatch:
    """``PATCH /api/models/{sha256}``: every field checked before anything is written."""
    check_keys(body, PATCH_FIELDS, "model")
    given: dict[str, Any] = {}
    if "name" in body:
        given["name"] = text_field(body["name"], "name", max_len=255)
    if "type" in body:
        given["type"] = _model_type(body["type"])
    if "base" in body:
        given["base"] = text_field(body["base"], "base", max_len=64, nullable=True)
    meta = meta_edit(body)
    if "trigger_words" in body:
        given["trigger_words"] = parse_trigger_words(body["trigger_words"])
    if "preferred_weight" in body:
        given["preferred_weight"] = parse_preferred_weight(body["preferred_weight"])
    fields = {"trigger_words", "preferred_weight"} & set(given)
    twice = sorted(fields & set(meta.value if meta else ()))
    if twice:
        raise ValidationError(f"give {', '.join(twice)} once: as a field or in meta_json")
    if "tags" in body:
        given["tags"] = tag_edit(body["tags"])
    return ModelPatch(meta=meta, **given)


# ---------------------------------------------------------------- bulk edits
def _bulk_shas(body: dict[str, Any], fields: set[str]) -> tuple[str, ...]:
    """The ``sha256s`` of a bulk request (1 to MAX_BULK_MODELS hashes, duplicates dropped)
    whose other keys are among ``fields``."""
    check_keys(body, ("sha256s", *sorted(fields)), "bulk request")
    shas = body.get("sha256s")
    if not isinstance(shas, list) or not shas:
        raise ValidationError("sha256s must be a non-empty list of SHA-256 hashes")
    if len(shas) > MAX_BULK_MODELS:
        raise ValidationError(f"at most {MAX_BULK_MODELS} models per request")
    return tuple(dict.fromkeys(normalize_sha256(sha) for sha in shas))


def bulk_tags(body: dict[str, Any]) -> BulkTags:
    """``{"sha256s": [...], "add": [tags], "remove": [tags]}``."""
    shas = _bulk_shas(body, {"add", "remove"})
    if "add" not in body and "remove" not in body:
        raise ValidationError("give tags to add or to remove")
    edit = tag_edit({k: body[k] for k in ("add", "remove") if k in body})
    return BulkTags(sha256s=shas, add=edit.add, remove=edit.remove)


def bulk_delete(body: dict[str, Any]) -> BulkDelete:
    """``{"sha256s": [...], "delete_file": bool}``."""
    shas = _bulk_shas(body, {"delete_file"})
    delete_file = body.get("delete_file", False)
    if not isinstance(delete_file, bool):
        raise ValidationError("delete_file must be true or false")
    return BulkDelete(sha256s=shas, delete_file=delete_file)


# ---------------------------------------------------------------- tags
def _tag_name(body: dict[str, Any]) -> str:
    """A name must be a string here (null is no name), trimmed, inner spaces collapsed."""
    name = body.get("name")
    if not isinstance(name, str):
        raise ValidationError("name must be a string")
    return normalize_tag_name(name)


def tag_create(body: dict[str, Any]) -> TagCreate:
    """``POST /api/tags``: ``{"name", "color"?: "#RRGGBB" | null}``."""
    check_keys(body, TAG_FIELDS, "tag")
    if "name" not in body:
        raise ValidationError("name is required")
    return TagCreate(name=_tag_name(body), color=normalize_color(body.get("color")))


def tag_update(body: dict[str, Any]) -> TagUpdate:
    """``PATCH /api/tags/{id}``: a new name, a new color (null removes it), or both."""
    check_keys(body, TAG_FIELDS, "tag")
    given: dict[str, Any] = {}
    if "name" in body:
        given["name"] = _tag_name(body)
    if "color" in body:
        given["color"] = normalize_color(body["color"])
    return TagUpdate(**given)


# ---------------------------------------------------------------- images
def image_order(body: dict[str, Any]) -> ImageOrder:
    """``{"order": [seq, ...]}``: image seqs (integers from 0 to 999999), at least one."""
    if set(body) != {"order"}:
        raise ValidationError('body must be {"order": [seq, ...]}')
    order = body["order"]
    if not isinstance(order, list) or not all(
        isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_IMAGE_SEQ
        for seq in order
    ):
        raise ValidationError("order must be a list of image seqs (integers >= 0)")
    if not order:
        raise ValidationError("order is empty")
    return ImageOrder(seqs=tuple(order))
