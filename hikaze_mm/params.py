"""Parsing user-supplied text parameters (query strings, CLI options) into values.

Each parser raises ``ValidationError`` naming the parameter, so the API answers 400 and
the CLI prints one line. The HTTP helpers (``server.http.int_param``/``bool_param``) and
the library's listing query both use these.
"""

from __future__ import annotations

from hikaze_mm.errors import ValidationError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_int(
    raw: str | None, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """An integer in ``[minimum, maximum]``; ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise ValidationError(f"{name} must be between {minimum}{upper}")
    return value


def parse_bool(raw: str | None, name: str, default: bool = False) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValidationError(f"{name} must be true or false, not {raw!r}")


def parse_index(raw: str, name: str, *, max_digits: int = 18) -> int:
    """A non-negative integer written in plain ASCII digits (an id or seq from a URL path).

    Stricter than ``int()``: no sign, spaces, underscores, or non-ASCII digits.
    """
    if not raw.isascii() or not raw.isdigit() or len(raw) > max_digits:
        raise ValidationError(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)
