"""The folder template of downloads and of "Move to template folder" (``HIKAZE_DOWNLOAD_TEMPLATE``).

A template is a relative folder path whose segments, separated by ``/``, hold text and the
placeholders ``{base_model}``, ``{model_name}``, ``{version_name}``, ``{author}`` and
``{first_tag}`` (``{{`` and ``}}`` are literal braces). ``render_template`` fills them in:

* each value becomes part of one folder name: path separators, ``:*?"<>|`` and control
  characters become ``_``, runs of white space one space, leading and trailing dots and
  spaces go (so no value is ``.``, ``..`` or a hidden name);
* an empty value (absent, blank, or nothing left once cleaned) becomes ``unknown``: every
  model lands at the same depth, so ``{base_model}/{author}`` never mixes authors with
  base models;
* each rendered segment loses trailing dots and spaces, is at most ``MAX_SEGMENT_BYTES``
  bytes of UTF-8 (cut on a character), and a name Windows reserves (``CON``, ``NUL``,
  ``COM1``... with or without an extension) gets a ``_``;
* the result is relative, with ``/`` between segments, never absolute and never with a
  ``..`` segment. A template that is absolute, has a ``.`` or ``..`` segment, an unknown
  placeholder (all are named), a stray brace or too many segments is a ValidationError.

``template_values`` gives the values of a library record (downloads give Civitai's).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from hikaze_mm.errors import ValidationError

PLACEHOLDERS: tuple[str, ...] = ("base_model", "model_name", "version_name", "author", "first_tag")
EMPTY_VALUE = "unknown"
MAX_TEMPLATE_CHARS = 500
MAX_SEGMENTS = 8
MAX_SEGMENT_BYTES = 120
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f:*?"<>|]')
_RESERVED = re.compile(r"(?i)^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$")


def clean_value(value: Any) -> str:
    """A template value as part of one folder name; ``unknown`` when nothing is left."""
    text = unicodedata.normalize("NFC", str(value)) if value is not None else ""
    text = " ".join(_UNSAFE.sub("_", text).split())
    text = text.strip(" .")
    return text or EMPTY_VALUE


def clean_segment(segment: str) -> str:
    """One rendered folder name made safe on every platform (see the module docstring)."""
    text = segment.rstrip(" .")
    data = text.encode("utf-8")
    if len(data) > MAX_SEGMENT_BYTES:
        text = data[:MAX_SEGMENT_BYTES].decode("utf-8", errors="ignore").rstrip(" .")
    if _RESERVED.match(text):
        text += "_"
    return text or EMPTY_VALUE


def _parts(segment: str) -> list[tuple[str, str | None]]:
    """``[(text, None) | ("", placeholder)]`` of one template segment; ValidationError
    for a stray brace."""
    parts: list[tuple[str, str | None]] = []
    pos = 0
    for match in _TOKEN.finditer(segment):
        parts.append((segment[pos : match.start()], None))
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append((token[0], None))
        elif match.group(1) is None:
            raise ValidationError(f"the template has a stray {token!r} (write {token * 2})")
        else:
            parts.append(("", match.group(1).strip()))
        pos = match.end()
    parts.append((segment[pos:], None))
    return parts


def parse_template(template: str) -> list[list[tuple[str, str | None]]]:
    """The template's segments, checked; ValidationError naming what is wrong."""
    if not isinstance(template, str):
        raise ValidationError("the template must be a string")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ValidationError(f"the template is at most {MAX_TEMPLATE_CHARS} characters")
    if _FORBIDDEN.search(template):
        raise ValidationError('the template must not hold control characters or :*?"<>|')
    if template.startswith(("/", "\\")):
        raise ValidationError("the template must be a relative folder path, not an absolute one")
    segments = [s for s in re.split(r"[/\\]", template) if s.strip()]
    if len(segments) > MAX_SEGMENTS:
        raise ValidationError(f"the template has at most {MAX_SEGMENTS} folders")
    parsed = [_parts(s.strip()) for s in segments]
    names = {name for seg in parsed for _, name in seg if name is not None}
    unknown = sorted(name for name in names if name and name not in PLACEHOLDERS)
    if "" in names:
        unknown.insert(0, "{}")
    if unknown:
        raise ValidationError(
            f"unknown placeholders in the template: {', '.join(unknown)} "
            f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
        )
    for seg in parsed:
        if all(name is None for _, name in seg) and "".join(t for t, _ in seg) in (".", ".."):
            raise ValidationError("the template must not hold '.' or '..' folders")
    return parsed


def render_template(template: str, values: Mapping[str, str]) -> str:
    """The template filled in with ``values``: a relative folder path (``/``-separated,
    "" for an empty template) that never leaves the folder it is joined to."""
    rendered: list[str] = []
    for seg in parse_template(template):
        text = "".join(t if name is None else clean_value(values.get(name)) for t, name in seg)
        rendered.append(clean_segment(text))
    return "/".join(rendered)


def _first_tag(record: Mapping[str, Any]) -> str | None:
    tags = record.get("tags") or []
    names = [t.get("name") if isinstance(t, Mapping) else t for t in tags]
    names = [n for n in names if isinstance(n, str) and n.strip()]
    return sorted(names, key=str.casefold)[0] if names else None


def _author(civitai: Mapping[str, Any]) -> str | None:
    for key in ("author", "creator"):
        value = civitai.get(key)
        if isinstance(value, Mapping):
            value = value.get("username")
        if isinstance(value, str) and value.strip():
            return value
    return None


def template_values(record: Mapping[str, Any]) -> dict[str, str]:
    """The template values of a library record: its base (else Civitai's), Civitai's model
    and version names (the model's own name stands in for the model name), the author
    Civitai named (``author`` or ``creator``), and its first tag by name. Absent ones are
    left out (they render as ``unknown``)."""
    meta = record.get("meta") if isinstance(record.get("meta"), Mapping) else {}
    civitai = meta.get("civitai") if isinstance(meta.get("civitai"), Mapping) else {}
    found = {
        "base_model": record.get("base") or civitai.get("base_model"),
        "model_name": civitai.get("model_name") or record.get("name"),
        "version_name": civitai.get("version_name"),
        "author": _author(civitai),
        "first_tag": _first_tag(record),
    }
    return {key: str(value) for key, value in found.items() if value not in (None, "")}
