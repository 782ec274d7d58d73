"""The A1111 infotext: built for the images we save, parsed from anyone's.

The text is the positive prompt, a ``Negative prompt: ...`` line (left out when there is no
negative prompt) and one parameters line::

    Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123,
    Size: 832x1216, Model hash: A5F58EB1C3, Model: name, Hashes: {...},
    Civitai resources: [...], Version: ComfyUI

Civitai's parser imposes the rest: the text holds ``Steps: `` (the parameters line is the
first line that starts with it), ``Hashes`` is one flat JSON object read up to its first
``}``, ``Civitai resources`` a JSON array read up to its first ``]``, both found after
``, ``; the other values are split at commas and colons, and a quoted value is read as a
nested list of ``key: value`` pairs (that is how A1111's ``Lora hashes`` are read), so a
quoted model name would not come back as a name. Hence every name we write (the keys and
names inside the JSON, ``Model``, ``Sampler``, ``Schedule type``) is cleaned
(``keys.clean_text``: no braces, brackets, quotes, commas, colons or control characters)
rather than quoted. A prompt line that starts with ``Steps: `` gets one leading space, so
that it is never taken for the parameters line.

``parse_infotext`` reads A1111's own quoting (``"..."`` JSON strings) and JSON objects and
arrays whole, so it reads A1111's, Forge's and our texts alike.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hikaze_mm.credits.keys import ROLES, autov2, clean_name, clean_text, hashes_key

log = logging.getLogger(__name__)

VERSION = "ComfyUI"
CIVITAI_TYPES = {"model": "checkpoint", "lora": "lora", "embedding": "embed"}
PARAMETERS_START = "Steps: "
NEGATIVE_START = "Negative prompt:"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Resource:
    """One model an image used."""

    role: str  # one of keys.ROLES
    name: str  # display name (the file's stem / the library's name)
    sha256: str  # full, lowercase
    weight: float | None = None  # LoRA model strength; embedding weight; None for a model
    civitai: dict | None = None  # the model's meta["civitai"]: {model_id, version_id, ...}


@dataclass(frozen=True)
class Parameters:
    """What the sampler did, in A1111's words (sampler names already mapped)."""

    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None
    schedule_type: str | None = None
    cfg: float | None = None
    seed: int | None = None  # may be up to 2**64-1
    width: int | None = None
    height: int | None = None


# --- building -------------------------------------------------------------------------


def build_infotext(params: Parameters, resources: Sequence[Resource]) -> str:
    """The infotext of an image made with ``params`` and ``resources`` (see the module)."""
    usable = []
    for resource in resources:
        if resource.role in ROLES and _SHA256.fullmatch(resource.sha256):
            usable.append(resource)
        else:
            log.warning("credits: %r left out (role or SHA-256 not valid)", resource.name)
    lines = []
    if params.prompt:
        lines.append(_prompt_text(params.prompt))
    if params.negative_prompt:
        lines.append(f"{NEGATIVE_START} {_prompt_text(params.negative_prompt)}")
    lines.append(_parameters_line(params, usable))
    return "\n".join(lines)


def _prompt_text(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(f" {line}" if line.startswith(PARAMETERS_START) else line for line in lines)


def _parameters_line(params: Parameters, resources: Sequence[Resource]) -> str:
    # Civitai reads a text only when it holds "Steps: ": an unknown count is written as 0.
    fields = [("Steps", str(params.steps if params.steps is not None else 0))]
    fields += [("Sampler", _name(params.sampler)), ("Schedule type", _name(params.schedule_type))]
    fields.append(("CFG scale", _number(params.cfg)))
    fields.append(("Seed", None if params.seed is None else str(params.seed)))
    if params.width and params.height:
        fields.append(("Size", f"{params.width}x{params.height}"))
    model = next((r for r in resources if r.role == "model"), None)
    if model is not None:
        fields += [("Model hash", autov2(model.sha256)), ("Model", clean_name(model.name))]
    hashes, civitai = _hashes(resources), _civitai_resources(resources)
    if hashes:
        fields.append(("Hashes", json.dumps(hashes, ensure_ascii=False, allow_nan=False)))
    if civitai:
        fields.append(
            ("Civitai resources", json.dumps(civitai, ensure_ascii=False, allow_nan=False))
        )
    fields.append(("Version", VERSION))
    return ", ".join(f"{key}: {value}" for key, value in fields if value)


def _name(value: str | None) -> str | None:
    """A name as a bare value of the parameters line (see the module)."""
    return (clean_text(value) or None) if value else None


def _number(value: float | None) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _hashes(resources: Sequence[Resource]) -> dict[str, str]:
    """``{key: AutoV2}``, one key a resource; a second resource under a taken key gets
    ``model:<name>`` (a second model) or a ``_2``, ``_3``... suffix."""
    hashes: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        if (resource.role, resource.sha256.lower()) in seen:
            continue
        seen.add((resource.role, resource.sha256.lower()))
        key = hashes_key(resource.role, resource.name)
        if key in hashes:
            base = f"model:{clean_name(resource.name)}" if key == "model" else key
            key, number = base, 2
            while key in hashes:
                key, number = f"{base}_{number}", number + 1
        hashes[key] = autov2(resource.sha256)
    return hashes


def _civitai_resources(resources: Sequence[Resource]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for resource in resources:
        entry = _civitai_entry(resource)
        if entry is not None and (entry["type"], entry["modelVersionId"]) not in seen:
            seen.add((entry["type"], entry["modelVersionId"]))
            entries.append(entry)
    return entries


def _civitai_entry(resource: Resource) -> dict[str, Any] | None:
    civitai = resource.civitai if isinstance(resource.civitai, dict) else {}
    version_id = civitai.get("version_id")
    if isinstance(version_id, bool) or not isinstance(version_id, int) or version_id <= 0:
        return None
    entry: dict[str, Any] = {"type": CIVITAI_TYPES[resource.role]}
    weight = resource.weight
    if resource.role != "model" and weight is not None and math.isfinite(weight):
        entry["weight"] = weight
    entry["modelVersionId"] = version_id
    for field, key in (("model_name", "modelName"), ("version_name", "versionName")):
        text = clean_text(str(civitai.get(field) or ""))
        if text:
            entry[key] = text
    return entry


# --- parsing --------------------------------------------------------------------------

_KEY = re.compile(r"\s*(\w[\w \-/]*?):\s*")
_INT = re.compile(r"[+-]?\d{1,20}")
_FLOAT = re.compile(r"[+-]?(\d{1,20}(\.\d{0,20})?|\.\d{1,20})([eE][+-]?\d{1,3})?")
_SIZE = re.compile(r"(\d{1,6})\s*x\s*(\d{1,6})")
MAX_INT = 2**64 - 1


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def parse_infotext(text: str) -> dict[str, Any]:
    """An A1111 text (ours, A1111's, Forge's...) read into a dict; never raises: what is
    missing or unreadable is ``None`` or empty. Unknown parameters land in ``extra``."""
    result = _empty_result()
    if not isinstance(text, str):
        return result
    lines = [line.strip() for line in re.split(r"\r\n|\r|\n", text.strip("\x00").strip())]
    index = _parameters_index(lines)
    prompt_lines = lines if index is None else lines[:index]
    result["prompt"], result["negative_prompt"] = _prompts(prompt_lines)
    if index is not None:
        for key, value in _fields(lines[index]):
            _read_field(key, value, result)
    return result


def _empty_result() -> dict[str, Any]:
    result: dict[str, Any] = dict.fromkeys(
        ("steps", "sampler", "schedule_type", "cfg", "seed", "width", "height")
    )
    result.update(prompt="", negative_prompt="", model_hash=None, model=None)
    result.update(hashes={}, civitai_resources=[], lora_hashes={}, ti_hashes={}, extra={})
    return result


def _parameters_index(lines: list[str]) -> int | None:
    """The last line that starts with ``Steps:``; else, as A1111 reads, the last line when
    it holds at least three parameters."""
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("Steps:"):
            return index
    if lines and len(_fields(lines[-1])) >= 3:
        return len(lines) - 1
    return None


def _prompts(lines: list[str]) -> tuple[str, str]:
    for index, line in enumerate(lines):
        if line.startswith(NEGATIVE_START):
            negative = [line[len(NEGATIVE_START) :].strip(), *lines[index + 1 :]]
            return "\n".join(lines[:index]).strip(), "\n".join(negative).strip()
    return "\n".join(lines).strip(), ""


def _fields(line: str) -> list[tuple[str, Any]]:
    """``Key: value`` pairs of a parameters line; a value is a JSON string, object or
    array, or plain text up to the next comma. What is not a pair is skipped."""
    fields: list[tuple[str, Any]] = []
    position = 0
    while position < len(line):
        match = _KEY.match(line, position)
        if match is None:
            comma = line.find(",", position)
            if comma < 0:
                break
            position = comma + 1
            continue
        value, position = _value(line, match.end())
        fields.append((match.group(1).strip(), value))
    return fields


def _value(line: str, start: int) -> tuple[Any, int]:
    """The value at ``start`` and where the next pair begins."""
    opening = line[start : start + 1]
    if opening in ('"', "{", "["):
        try:
            value, end = _DECODER.raw_decode(line, start)
        except (ValueError, RecursionError):
            pass
        else:
            rest = line[end:].lstrip()
            if not rest or rest.startswith(","):
                return value, len(line) - len(rest) + 1
        closing = line.find("}" if opening == "{" else "]", start)
        if opening != '"' and closing >= 0:  # Civitai's way: up to the first closing one
            comma = line.find(",", closing)
            return line[start : closing + 1], len(line) if comma < 0 else comma + 1
    comma = line.find(",", start)
    end = len(line) if comma < 0 else comma
    return line[start:end].strip(), end + 1


def _read_field(key: str, value: Any, result: dict[str, Any]) -> None:
    if key == "Size":
        match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
        result["width"], result["height"] = (
            (int(match.group(1)), int(match.group(2))) if match else (None, None)
        )
    elif key in _FIELDS:
        name, convert = _FIELDS[key]
        result[name] = convert(value)
    else:
        result["extra"][key] = value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if not isinstance(value, str) or not _INT.fullmatch(value.strip()):
        return None
    number = int(value)
    return number if -MAX_INT <= number <= MAX_INT else None


def _float(value: Any) -> float | None:
    if not isinstance(value, str) or not _FLOAT.fullmatch(value.strip()):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _hash_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, (str, int))}


def _name_hashes(value: Any) -> dict[str, str]:
    """A1111's ``"name: hash, name: hash"`` (``Lora hashes``, ``TI hashes``)."""
    if isinstance(value, dict):
        return _hash_map(value)
    if not isinstance(value, str):
        return {}
    pairs = (part.rpartition(":") for part in value.split(","))
    return {name.strip(): h.strip() for name, sep, h in pairs if sep and name.strip() and h.strip()}


def _resource_list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "Steps": ("steps", _int),
    "Sampler": ("sampler", _text),
    "Schedule type": ("schedule_type", _text),
    "CFG scale": ("cfg", _float),
    "Seed": ("seed", _int),
    "Model hash": ("model_hash", _text),
    "Model": ("model", _text),
    "Hashes": ("hashes", _hash_map),
    "Civitai resources": ("civitai_resources", _resource_list),
    "Lora hashes": ("lora_hashes", _name_hashes),
    "TI hashes": ("ti_hashes", _name_hashes),
}
