"""The ``hikaze_payload`` JSON that every Hikaze node carries (no ComfyUI needed here).

One format for every Hikaze workflow, ours and upstream Hikaze-Model-Manager-2's:

* single-model loaders (checkpoint, diffusion model, VAE): ``{"sha256", "name",
  "ckpt_path"}``; upstream wrote only ``{"ckpt_path": "/abs/path"}``;
* the LoRA loader: upstream's v2 list, ``{"version": 2, "loras": [{"name", "full_path",
  "strength_model", "strength_clip", "sha256", "enabled"}]}``, each entry's ``sha256``
  authoritative.

A model is resolved by ``sha256`` first, then its path, then its name
(``hikaze_mm.comfy.resolver``). Parsing is strict about types and sizes and lenient about
what is absent: a malformed payload is a ``PayloadError`` with a message for the user.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from hikaze_mm.database import normalize_sha256
from hikaze_mm.errors import ValidationError
from hikaze_mm.hashing import short_hash
from hikaze_mm.params import check_json

MAX_PAYLOAD_CHARS = 256 * 1024
MAX_LORAS = 100
MAX_STRENGTH = 100.0  # LoraLoader's own range
MAX_TEXT = 4096


class PayloadError(ValueError):
    """A payload that cannot be used; the message is for the user."""


@dataclass(frozen=True)
class ModelRef:
    """A model as a node names it: by hash (authoritative), path, or name."""

    sha256: str | None = None
    name: str | None = None
    path: str | None = None

    def label(self) -> str:
        """How errors name the model: its name and short hash, or what is known."""
        name = self.name or (self.path.replace("\\", "/").rsplit("/", 1)[-1] if self.path else "")
        if self.sha256:
            return f"{name or 'a model'} ({short_hash(self.sha256)})"
        return name or "an unnamed model"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"sha256": self.sha256, "name": self.name}
        if self.path:
            data["ckpt_path"] = self.path
        return data


@dataclass(frozen=True)
class LoraEntry:
    model: ModelRef
    strength_model: float = 1.0
    strength_clip: float = 1.0
    enabled: bool = True


def _load(text: object) -> dict[str, Any]:
    if not isinstance(text, str):
        raise PayloadError("hikaze_payload must be a JSON string")
    if len(text) > MAX_PAYLOAD_CHARS:
        raise PayloadError(f"hikaze_payload is longer than {MAX_PAYLOAD_CHARS} characters")
    if not text.strip():
        raise PayloadError("no model chosen: hikaze_payload is empty")
    try:
        data = check_json(json.loads(text), "hikaze_payload")
    except (ValueError, RecursionError, ValidationError) as exc:
        detail = exc.detail if isinstance(exc, ValidationError) else str(exc)
        raise PayloadError(f"hikaze_payload is not valid JSON: {detail}") from None
    if not isinstance(data, dict):
        raise PayloadError("hikaze_payload must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
        raise PayloadError(f"{key} must be a string of at most {MAX_TEXT} characters")
    return value


def _sha(data: dict[str, Any]) -> str | None:
    value = data.get("sha256")
    if value is None or value == "":
        return None
    try:
        return normalize_sha256(value)
    except ValidationError:
        raise PayloadError(f"sha256 must be 64 hex characters, not {value!r:.80}") from None


def _ref(data: dict[str, Any], path_key: str) -> ModelRef:
    ref = ModelRef(sha256=_sha(data), name=_text(data, "name"), path=_text(data, path_key))
    if not (ref.sha256 or ref.name or ref.path):
        raise PayloadError("no model chosen: the payload has no sha256, path or name")
    return ref


def parse_model(text: object) -> ModelRef:
    """A single-model loader's payload (ours, or upstream's ``{"ckpt_path"}``)."""
    return _ref(_load(text), "ckpt_path")


def _strength(entry: dict[str, Any], key: str) -> float:
    value = entry.get(key, 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{key} must be a number, not {value!r:.40}")
    value = float(value)
    if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
        raise PayloadError(f"{key} must be between -{MAX_STRENGTH:g} and {MAX_STRENGTH:g}")
    return value


def parse_loras(text: object) -> list[LoraEntry]:
    """The LoRA loader's payload: upstream's v2 list (an empty list is allowed)."""
    data = _load(text)
    version = data.get("version", 2)
    if version != 2:
        raise PayloadError(f"unsupported LoRA payload version {version!r:.20} (expected 2)")
    loras = data.get("loras", [])
    if not isinstance(loras, list):
        raise PayloadError("loras must be a list")
    if len(loras) > MAX_LORAS:
        raise PayloadError(f"at most {MAX_LORAS} LoRAs per node")
    entries = []
    for n, entry in enumerate(loras, 1):
        if not isinstance(entry, dict):
            raise PayloadError(f"LoRA {n} must be a JSON object")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise PayloadError(f"LoRA {n}: enabled must be true or false")
        try:
            model = _ref(entry, "full_path")
            entries.append(
                LoraEntry(
                    model,
                    _strength(entry, "strength_model"),
                    _strength(entry, "strength_clip"),
                    enabled,
                )
            )
        except PayloadError as exc:
            raise PayloadError(f"LoRA {n}: {exc}") from None
    return entries


def fingerprint(refs: list[tuple[ModelRef, float, float]]) -> str:
    """What decides whether a node must run again: hashes (or paths/names when a model has
    no hash) and strengths; a display name alone never does."""
    return json.dumps(
        [[r.sha256 or r.path or r.name, sm, sc] for r, sm, sc in refs], separators=(",", ":")
    )
