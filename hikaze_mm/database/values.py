"""Value checks and conversions shared by every store (no SQL here)."""

from __future__ import annotations

import re
import time

from hikaze_mm.errors import ValidationError

_SHA_RE = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS_RE = re.compile(r"[0-9]+")
_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")

TagRef = int | str
"""A tag named by its id or by its name (any case)."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _number_key(match: re.Match[str]) -> str:
    digits = match.group().lstrip("0") or "0"
    return f"{min(len(digits), 99):02d}{digits}"


def natural_key(name: str | None) -> str | None:
    """The sort key of a name in natural order: casefolded, each run of digits written as
    its length then the digits (``"v_2"`` -> ``"v_012"``, ``"v_10"`` -> ``"v_0210"``), so
    ``v_2`` sorts before ``v_10``. Stored in ``models.name_key`` with every name."""
    if name is None:
        return None
    return _DIGITS_RE.sub(_number_key, name.casefold())


def normalize_sha256(value: object) -> str:
    """Return the lowercase hash, or raise ValidationError for anything not 64 hex characters."""
    if not isinstance(value, str) or not _SHA_RE.fullmatch(value):
        raise ValidationError(f"not a SHA-256 (64 hex characters): {value!r}")
    return value.lower()


def normalize_color(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _COLOR_RE.fullmatch(value.strip()):
        raise ValidationError(f"color must be #RRGGBB, not {value!r}")
    return value.strip().lower()


def normalize_tag_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("a tag name must be a non-empty string")
    name = " ".join(value.split())
    if len(name) > 100:
        raise ValidationError("a tag name is at most 100 characters")
    return name
