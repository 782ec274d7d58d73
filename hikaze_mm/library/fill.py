"""Filling a model's empty fields from another source (Civitai, sidecar files).

A source fills only what is empty and never a field a user edited
(``meta.sources[field] == "user"``), and records itself in ``meta.sources[field]``. With
``refill`` a source may also replace a value it filled itself (a sidecar file that
changed).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from hikaze_mm.meta import SOURCE_USER, fillable, is_empty


def fill_empty(
    meta: dict[str, Any],
    sources: dict[str, Any],
    values: Iterable[tuple[str, Any]],
    source: str,
    *,
    refill: bool = False,
) -> list[str]:
    """Set each empty ``meta[key]`` (not a user's) to its non-empty value; the keys set.
    ``sources`` (the caller's copy of ``meta.sources``) records ``source`` for each."""
    filled: list[str] = []
    for key, value in values:
        if is_empty(value):
            continue
        own = refill and sources.get(key) == source and meta.get(key) != value
        if own or fillable(meta, key):
            meta[key] = value
            sources[key] = source
            filled.append(key)
    return filled


def replaces_base(
    current: str | None,
    sources: dict[str, Any],
    base: str | None,
    *,
    over: Collection[str | None] | None = None,
) -> bool:
    """Whether ``base`` replaces the column's ``current`` base: never one a user set;
    with ``over``, only an empty base or one whose source is in ``over``."""
    if not base or base == current:
        return False
    source = sources.get("base")
    if source == SOURCE_USER:
        return False
    return over is None or not current or source in over
