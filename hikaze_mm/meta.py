"""Model metadata (``meta_json``) helpers.

``merge_meta_json(existing, incoming)`` rules, used by the "merge" conflict strategy:

* Both dicts: merged key by key, recursively.
* A key only in ``incoming`` is added; a key only in ``existing`` stays.
* Both lists: the existing list, then every incoming item not already in it (by value),
  in order. Neither list's own duplicates are removed.
* Otherwise the existing value wins, unless it is "empty" (None, "", [] or {}), in which
  case the incoming value fills it.

Inputs are never modified; the result is a new structure.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

# Keys that held image paths in the legacy metadata; images live in the image store instead.
IMAGE_PATH_KEYS = frozenset({"image", "images", "preview", "previews", "preview_image"})

# ``meta.sources[field]`` says who filled a field: a user's edit, a sidecar file or Civitai.
# Sidecars and Civitai only fill empty fields and never one a user edited.
SOURCE_USER = "user"
MAX_TRIGGER_WORDS = 100
MAX_TRIGGER_WORD_CHARS = 200
MAX_PREFERRED_WEIGHT = 10.0


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def merge_meta_json(existing: Any, incoming: Any) -> Any:
    if isinstance(existing, dict) and isinstance(incoming, dict):
        merged = copy.deepcopy(existing)
        for key, value in incoming.items():
            merged[key] = (
                merge_meta_json(existing[key], value) if key in existing else (copy.deepcopy(value))
            )
        return merged
    if isinstance(existing, list) and isinstance(incoming, list):
        merged_list = copy.deepcopy(existing)
        for item in incoming:
            if item not in merged_list:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    if is_empty(existing):
        return copy.deepcopy(incoming)
    return copy.deepcopy(existing)


def parse_meta(text: str | bytes | None) -> dict[str, Any]:
    """Parse stored meta JSON; anything that is not a JSON object becomes ``{}``."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def dump_meta(meta: dict[str, Any] | None) -> str | None:
    if not meta:
        return None
    return json.dumps(meta, ensure_ascii=False, sort_keys=True)


def strip_image_keys(meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``meta`` without the top-level keys that held image paths."""
    return {k: v for k, v in meta.items() if k not in IMAGE_PATH_KEYS}


def trigger_words_of(value: Any) -> list[str]:
    """Stored ``meta.trigger_words`` as a clean list: strings trimmed, empties and
    duplicates dropped (order kept); a lone string is one word; anything else is []."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    words = (w.strip() for w in value if isinstance(w, str))
    return list(dict.fromkeys(w for w in words if w))


def preferred_weight_of(value: Any) -> float | int | None:
    """Stored ``meta.preferred_weight`` if it is a finite number in range, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or abs(value) > MAX_PREFERRED_WEIGHT:
        return None
    return value


def sources_of(meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``meta.sources`` (who filled each field), {} when absent or malformed."""
    sources = meta.get("sources")
    return dict(sources) if isinstance(sources, dict) else {}


def fillable(meta: dict[str, Any], field: str) -> bool:
    """Whether a sidecar or Civitai may fill ``meta[field]``: empty, and not a user's."""
    return is_empty(meta.get(field)) and sources_of(meta).get(field) != SOURCE_USER
