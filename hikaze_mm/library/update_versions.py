"""Civitai's ``GET /api/v1/models?ids=...`` answer, parsed, and which version is an update.

The answer is ``{"items": [{id, name, type, modelVersions: [{id, name, baseModel,
publishedAt, createdAt, ...}]}], "metadata": {...}}``; ``parse_models`` reads each model's
versions (an item that cannot be read is reported in ``problems`` and left out; an answer
that is not such an object is a ``CivitaiBadResponse``).

``pick_update`` decides. Civitai lists a model's versions newest first; a version's time is
its ``publishedAt`` (else ``createdAt``), and versions are ranked by time, newest first,
the list's order breaking ties and placing versions without a time. A version is newer
than the one held when it ranks before it (when the held version is no longer listed: when
its id is greater). The update is the newest such version of the held version's base model
(any base with ``any_base``, or when the held base is not known), unless that version was
ignored by the user or is already in the library: then there is none, until a newer one
appears. Nothing here talks to the network.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hikaze_mm.library.civitai_schema import MAX_BASE_CHARS, CivitaiBadResponse

MAX_VERSION_NAME_CHARS = 255


@dataclass(frozen=True)
class RemoteVersion:
    """One version of a Civitai model, as ``/api/v1/models`` lists it."""

    id: int
    name: str | None
    base_model: str | None
    published_at: str | None  # publishedAt, else createdAt, as Civitai wrote it


@dataclass
class ModelsAnswer:
    """The models of one answer by id, each with its versions in Civitai's order;
    ``problems`` say why some items could not be read."""

    models: dict[int, list[RemoteVersion]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _id(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok else None


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split())[:limit] or None


def _version(data: Any) -> RemoteVersion | None:
    if not isinstance(data, dict) or _id(data.get("id")) is None:
        return None
    when = data.get("publishedAt") if _time(data.get("publishedAt")) else data.get("createdAt")
    return RemoteVersion(
        id=data["id"],
        name=_text(data.get("name"), MAX_VERSION_NAME_CHARS),
        base_model=_text(data.get("baseModel"), MAX_BASE_CHARS),
        published_at=when if _time(when) is not None else None,
    )


def parse_models(data: Any) -> ModelsAnswer:
    """The answer's models by id; CivitaiBadResponse for an answer without ``items``."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise CivitaiBadResponse("the answer has no list of items")
    answer = ModelsAnswer()
    for item in data["items"]:
        model_id = _id(item.get("id")) if isinstance(item, dict) else None
        raw = item.get("modelVersions") if isinstance(item, dict) else None
        if model_id is None or not isinstance(raw, list):
            answer.problems.append("an item of the answer has no id or no list of versions")
            continue
        versions = [v for v in map(_version, raw) if v is not None]
        if len(versions) != len(raw):
            answer.problems.append(f"model {model_id} of the answer has malformed versions")
        answer.models[model_id] = versions
    return answer


def _time(value: Any) -> float | None:
    """An ISO 8601 time (``2024-01-01T00:00:00.000Z``) in seconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def ranked(versions: list[RemoteVersion]) -> list[RemoteVersion]:
    """Newest first: by time, the list's order (Civitai's, newest first) breaking ties;
    a version without a time keeps the place the list gives it among its neighbours."""
    keyed: list[tuple[float, int]] = []
    last = float("inf")
    for index, version in enumerate(versions):
        when = _time(version.published_at)
        last = when if when is not None else last  # untimed: as old as the one before
        keyed.append((-last, index))
    order = sorted(range(len(versions)), key=lambda i: keyed[i])
    return [versions[i] for i in order]


def pick_update(
    versions: list[RemoteVersion],
    held_id: int,
    held_base: str | None,
    *,
    any_base: bool = False,
    ignored: Collection[int] = (),
    in_library: Collection[int] = (),
) -> RemoteVersion | None:
    """The update of a model that holds version ``held_id`` (see the module), or None."""
    order = ranked(versions)
    held = next((i for i, v in enumerate(order) if v.id == held_id), None)
    if held is not None:
        newer = order[:held]
        held_base = order[held].base_model or held_base
    else:
        newer = [v for v in order if v.id > held_id]
    if not any_base and held_base:
        wanted = held_base.casefold()
        newer = [v for v in newer if (v.base_model or "").casefold() == wanted]
    if not newer or newer[0].id in ignored or newer[0].id in in_library:
        return None
    return newer[0]
