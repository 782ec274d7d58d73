"""An A1111 infotext read the way Civitai reads it, to check the images we save.

Independent of ``hikaze_mm.credits`` on purpose: it follows Civitai's rules as issue 20
states them (and as Civitai's A1111 reader behaves), not our parser:

* the text must contain ``Steps: ``; empty lines are dropped; the parameters line is the
  *first* line that starts with ``Steps: `` (a trailing comma is dropped);
* ``, Hashes: {...}`` is one flat JSON object, read up to the first ``}``;
* ``, Civitai resources: [...]`` is a JSON array, read up to the first ``]`` (Civitai's newer
  pattern, up to the first ``}]``, must read the same array);
* the rest of the line splits at commas and colons outside quotes, and a quoted value is
  read as a nested list of ``key: value`` pairs (a dict);
* the prompt is everything before ``Negative prompt:``, the negative prompt the rest.

``civitai_parse`` raises ``CivitaiParseError`` (or ``json.JSONDecodeError``, as Civitai's
``JSON.parse`` would throw) where Civitai would fail.
"""

from __future__ import annotations

import json
import re
from typing import Any

HASHES = re.compile(r", Hashes:\s*(\{[^}]+\})")
RESOURCES = re.compile(r", Civitai resources:\s*(\[[^\]]+\])")
RESOURCES_NEWER = re.compile(r", Civitai resources:\s*(\[\{.*?\}\])")


class CivitaiParseError(ValueError):
    pass


def civitai_parse(text: str) -> dict[str, Any]:
    """``{prompt, negative_prompt, steps, seed, size, hashes, civitai_resources, details}``
    (``details``: every other ``key: value`` of the parameters line, as Civitai splits it)."""
    if "Steps: " not in text:
        raise CivitaiParseError("the text has no 'Steps: '")
    lines = [line for line in text.split("\n") if line.strip()]
    index = next((i for i, line in enumerate(lines) if line.startswith("Steps: ")), None)
    if index is None:
        raise CivitaiParseError("no line starts with 'Steps: '")
    details = re.sub(r",\s*$", "", lines.pop(index))
    hashes, details = _hashes(details)
    resources, details = _resources(details)
    fields = _details(details)
    prompt, *negative = [part.strip() for part in "\n".join(lines).split("Negative prompt:")]
    return {
        "prompt": prompt,
        "negative_prompt": " ".join(negative).strip(),
        "steps": _int(fields.get("Steps")),
        "seed": _int(fields.get("Seed")),
        "size": fields.get("Size"),
        "hashes": hashes,
        "civitai_resources": resources,
        "details": fields,
    }


def _hashes(details: str) -> tuple[dict[str, str], str]:
    match = HASHES.search(details)
    if match is None:
        return {}, details
    hashes = json.loads(match.group(1))
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise CivitaiParseError(f"Hashes is not a flat object of strings: {hashes!r}")
    return hashes, HASHES.sub("", details, count=1)


def _resources(details: str) -> tuple[list[Any], str]:
    match, newer = RESOURCES.search(details), RESOURCES_NEWER.search(details)
    if match is None and newer is None:
        return [], details
    if match is None or newer is None:
        raise CivitaiParseError("Civitai's two patterns disagree on the resources")
    resources = json.loads(match.group(1))
    if not isinstance(resources, list) or json.loads(newer.group(1)) != resources:
        raise CivitaiParseError(f"Civitai resources is not one array: {match.group(1)!r}")
    return resources, RESOURCES.sub("", details, count=1)


def _details(line: str) -> dict[str, Any]:
    """Split at ``:`` (a key ends) and ``,`` (a value ends) outside quotes; a quoted value
    is split the same way, into a dict."""
    result: dict[str, Any] = {}
    key, value, quoted = "", "", False
    for char in line:
        if char == '"':
            if quoted:
                result[key] = _details(value.strip())
                key = ""
            quoted = not quoted
        elif char == ":" and not quoted:
            key, value = value.strip(), ""
        elif char == "," and not quoted:
            if key:
                result[key] = value.strip()
            key, value = "", ""
        else:
            value += char
    if key:
        result[key] = value.strip()
    return result


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and re.fullmatch(r"-?\d+", value) else None
