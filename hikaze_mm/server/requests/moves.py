"""The body of ``POST /api/models/move`` as a ``ModelMove``.

Either ``{"sha256s": [...], "template"?: "...", "dry_run"?: bool}`` (each model to its
template folder; the template defaults to ``HIKAZE_DOWNLOAD_TEMPLATE``) or
``{"sha256": "...", "folder": "...", "dry_run"?: bool}`` (one model to that folder).
"""

from __future__ import annotations

from typing import Any

from hikaze_mm.database import normalize_sha256
from hikaze_mm.errors import ValidationError
from hikaze_mm.library.path_template import MAX_TEMPLATE_CHARS, parse_template
from hikaze_mm.library.requests import ModelMove
from hikaze_mm.policy import MAX_BULK_MODELS
from hikaze_mm.server.requests.fields import check_keys, text_field

MAX_FOLDER_CHARS = 4096


def _dry_run(body: dict[str, Any]) -> bool:
    value = body.get("dry_run", False)
    if not isinstance(value, bool):
        raise ValidationError("dry_run must be true or false")
    return value


def _by_template(body: dict[str, Any]) -> ModelMove:
    check_keys(body, ("sha256s", "template", "dry_run"), "move request")
    shas = body.get("sha256s")
    if not isinstance(shas, list) or not shas:
        raise ValidationError("sha256s must be a non-empty list of SHA-256 hashes")
    if len(shas) > MAX_BULK_MODELS:
        raise ValidationError(f"at most {MAX_BULK_MODELS} models per request")
    template = body.get("template")
    if template is not None:
        template = text_field(template, "template", max_len=MAX_TEMPLATE_CHARS)
        parse_template(template or "")
    unique = tuple(dict.fromkeys(normalize_sha256(sha) for sha in shas))
    return ModelMove(sha256s=unique, template=template, dry_run=_dry_run(body))


def _to_folder(body: dict[str, Any]) -> ModelMove:
    check_keys(body, ("sha256", "folder", "dry_run"), "move request")
    sha = body.get("sha256")
    if not isinstance(sha, str):
        raise ValidationError("sha256 must be a SHA-256 hash")
    folder = text_field(body.get("folder"), "folder", max_len=MAX_FOLDER_CHARS)
    return ModelMove(sha256s=(normalize_sha256(sha),), folder=folder, dry_run=_dry_run(body))


def model_move(body: dict[str, Any]) -> ModelMove:
    """One of the two forms (never both); ValidationError naming what is wrong."""
    if "sha256s" in body and ("sha256" in body or "folder" in body):
        raise ValidationError("give sha256s (with a template) or sha256 with a folder, not both")
    if "sha256" in body or "folder" in body:
        return _to_folder(body)
    if "sha256s" not in body:
        raise ValidationError("give sha256s (with a template) or sha256 with a folder")
    return _by_template(body)
