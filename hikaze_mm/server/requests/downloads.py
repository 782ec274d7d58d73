"""``POST /api/downloads``'s JSON body as typed arguments of ``DownloadService.enqueue``."""

from __future__ import annotations

from typing import Any

from hikaze_mm.errors import ValidationError

DOWNLOAD_FIELDS = ("source", "type", "folder", "file_id", "sha256")


def download_request(body: dict[str, Any]) -> dict[str, Any]:
    """``{source, type?, folder?, file_id?, sha256?}``: each of the right JSON type."""
    unknown = sorted(set(body) - set(DOWNLOAD_FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown fields: {', '.join(unknown)} (allowed: {', '.join(DOWNLOAD_FIELDS)})"
        )
    source = body.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValidationError("source must be a URL, a hash or a model id (a string)")
    for key in ("type", "folder", "sha256"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise ValidationError(f"{key} must be a string")
    file_id = body.get("file_id")
    if file_id is not None and (isinstance(file_id, bool) or not isinstance(file_id, int)):
        raise ValidationError("file_id must be a positive integer")
    return {key: body.get(key) for key in DOWNLOAD_FIELDS}
