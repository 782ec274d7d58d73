"""The listing's query parameters (API and CLI) parsed into a ``ModelQuery``.

The listing itself (its SQL) lives in ``hikaze_mm.database.listing``; the items are
assembled by ``ModelsService.list``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hikaze_mm.database import ModelQuery
from hikaze_mm.errors import ValidationError
from hikaze_mm.model_types import canonical_type
from hikaze_mm.params import parse_bool, parse_int, parse_path
from hikaze_mm.policy import DEFAULT_LIMIT, MAX_LIMIT

MAX_FILTER_TAGS = 32
QUERY_PARAMS = frozenset(
    {
        "type",
        "base",
        "tags",
        "exclude_tags",
        "q",
        "sort",
        "order",
        "offset",
        "limit",
        "include_missing",
        "folder",
        "used",
        "update",
    }
)


def split_tags(values: Sequence[str]) -> tuple[str, ...]:
    """``["a,b", "c"]`` -> ``("a", "b", "c")``: trimmed, inner spaces collapsed, no empties."""
    names: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            name = " ".join(part.split())
            if name:
                names.setdefault(name.casefold(), name)
    if len(names) > MAX_FILTER_TAGS:
        raise ValidationError(f"at most {MAX_FILTER_TAGS} tags per filter")
    return tuple(names.values())


def query_from_params(params: Mapping[str, str], multi: Mapping[str, list[str]]) -> ModelQuery:
    """Parse query parameters; ``multi`` gives every value of repeated keys (tags).

    Unknown parameters are a ValidationError, as are bad sorts, orders and integers.
    """
    unknown = sorted(set(params) - QUERY_PARAMS)
    if unknown:
        raise ValidationError(f"unknown query parameters: {', '.join(unknown)}")
    model_type = (params.get("type") or "").strip()
    base = (params.get("base") or "").strip()
    q = (params.get("q") or "").strip()
    folder = params.get("folder")
    return ModelQuery(
        type=canonical_type(model_type) if model_type else None,
        base=base or None,
        tags=split_tags(multi.get("tags", [])),
        exclude_tags=split_tags(multi.get("exclude_tags", [])),
        q=q or None,
        folder=str(parse_path(folder, "folder")) if folder else None,
        used=parse_bool(params.get("used"), "used"),
        sort=params.get("sort") or "name",
        order=(params.get("order") or None),
        offset=parse_int(params.get("offset"), "offset", 0),
        limit=parse_int(params.get("limit"), "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT),
        include_missing=parse_bool(params.get("include_missing"), "include_missing"),
        update=(params.get("update") or "").strip() or None,
    )
