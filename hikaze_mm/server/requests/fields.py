"""Checks on the fields of JSON request bodies, shared by the request parsers.

Each raises ``ValidationError`` (HTTP 400) with a message naming the offending field, so a
client learns exactly what to fix, and nothing has been changed when it is raised.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from hikaze_mm.errors import ValidationError


def check_keys(body: Mapping[str, Any], allowed: Collection[str], what: str) -> None:
    """Reject a body with fields outside ``allowed`` or with none at all."""
    names = ", ".join(sorted(allowed))
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValidationError(f"unknown {what} fields: {', '.join(unknown)} (allowed: {names})")
    if not body:
        raise ValidationError(f"no {what} fields given (allowed: {names})")


def text_field(value: Any, name: str, *, max_len: int, nullable: bool = False) -> str | None:
    """A trimmed non-empty string (or None when ``nullable`` and null/blank)."""
    if value is None:
        if nullable:
            return None
        raise ValidationError(f"{name} must be a string, not null")
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    text = value.strip()
    if not text:
        if nullable:
            return None
        raise ValidationError(f"{name} must not be empty")
    if len(text) > max_len:
        raise ValidationError(f"{name} is at most {max_len} characters")
    if any(ord(c) < 32 for c in text):
        raise ValidationError(f"{name} must not contain control characters")
    return text
