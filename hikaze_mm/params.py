"""Parsing user-supplied values (query strings, JSON bodies, CLI options, paths).

Each parser raises ``ValidationError`` naming the parameter, so the API answers 400 and
the CLI prints one line. Every value a client sends enters through one of these, so the
limits live here: integers within SQLite's 64-bit range, JSON nested at most
``MAX_JSON_DEPTH`` deep, text that is valid Unicode (no lone surrogates), and paths of
sane length whose components fit a file system's 255-byte names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hikaze_mm.errors import ValidationError
from hikaze_mm.policy import MAX_INT, WORKER_STRATEGIES

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
MAX_JSON_DEPTH = 64
MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255


def check_int(value: object, name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """A JSON integer (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer, not {value!r:.40}")
    if not minimum <= value <= maximum:
        raise ValidationError(f"{name} must be an integer from {minimum} to {maximum}")
    return value


def parse_int(
    raw: str | None, name: str, default: int, *, minimum: int = 0, maximum: int = MAX_INT
) -> int:
    """An integer in ``[minimum, maximum]``; ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    digits = raw.strip().removeprefix("-").removeprefix("+")
    if digits.isascii() and digits.isdigit() and len(digits) > 20:  # past any 64-bit value
        raise ValidationError(f"{name} must be an integer from {minimum} to {maximum}")
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be an integer, not {raw!r:.40}") from None
    return check_int(value, name, minimum=minimum, maximum=maximum)


def parse_bool(raw: str | None, name: str, default: bool = False) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValidationError(f"{name} must be true or false, not {raw!r:.40}")


def parse_index(raw: str, name: str, *, max_digits: int = 18) -> int:
    """A non-negative integer written in plain ASCII digits (an id or seq from a URL path).

    Stricter than ``int()``: no sign, spaces, underscores, or non-ASCII digits; at most
    ``max_digits`` digits (18 keep it inside SQLite's range).
    """
    if not raw.isascii() or not raw.isdigit() or len(raw) > max_digits:
        raise ValidationError(
            f"{name} must be a non-negative integer of at most {max_digits} digits, not {raw!r:.40}"
        )
    return int(raw)


def check_text(value: str, name: str) -> str:
    """``value`` if it is valid Unicode (a lone surrogate cannot be stored or used as a path)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{name} is not valid Unicode text") from None
    return value


def check_json(value: Any, name: str = "the JSON body") -> Any:
    """``value`` (parsed JSON) if it nests at most MAX_JSON_DEPTH deep and all its text,
    keys included, is valid Unicode. Iterative: no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, name)
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValidationError(f"{name} nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return value


def parse_json(text: str | bytes, name: str = "the JSON body") -> Any:
    """Parse JSON text with the limits of ``check_json``; bad JSON is a ValidationError."""
    try:
        return check_json(json.loads(text), name)
    except RecursionError:
        raise ValidationError(f"{name} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{name} is not valid JSON: {exc}", error="Bad JSON") from None


def parse_path(value: object, name: str) -> Path:
    """A file system path a client names: non-empty text, at most MAX_PATH_CHARS, no NUL,
    valid Unicode, each component at most MAX_NAME_BYTES bytes; ``~`` and ``~user``
    expanded (an unknown user is a ValidationError)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string")
    if len(value) > MAX_PATH_CHARS or "\x00" in value:
        raise ValidationError(f"{name} is not a valid path")
    check_text(value, name)
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~nosuchuser
        raise ValidationError(f"{name}: no such user in {value!r:.80}") from None
    for part in path.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise ValidationError(f"{name}: a path component is longer than 255 bytes")
    return path


def check_strategy(
    conf_strategy: object,
    allowed: tuple[str, ...] = WORKER_STRATEGIES,
    *,
    name: str = "conf_strategy",
) -> str | None:
    """``conf_strategy`` if it is None or one of ``allowed``; any other value is a 400."""
    if conf_strategy is None:
        return None
    if not isinstance(conf_strategy, str) or conf_strategy not in allowed:
        raise ValidationError(
            f"{name} must be null or one of {', '.join(allowed)}, not {conf_strategy!r}"
        )
    return conf_strategy


def check_pending_id(value: object) -> int:
    return check_int(value, "a pending id")
