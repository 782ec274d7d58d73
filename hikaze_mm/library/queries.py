"""Listing the library: one filtered, sorted, paginated query shared by the API and the CLI.

``ModelQuery`` holds the filters (parsed and validated from query parameters by
``ModelQuery.from_params``), ``build_sql`` turns one into two statements (a COUNT and a
page) with only bound parameters, and ``list_models`` runs them and assembles the items
with their tags (one batch query) and image counts (the image store's in-memory index),
so a page costs a fixed number of queries whatever its length: no N+1.

Filters, all combined with AND:

* ``type`` and ``base``: exact match (type through the canonical vocabulary);
* ``tags``: every named tag is required (case-insensitive names; an unknown one matches
  nothing), one ``EXISTS`` per tag on the ``(tag_id, model_hash)`` index;
* ``exclude_tags``: none of them may be present (``NOT EXISTS``);
* ``q``: a substring of the name or the path (case-insensitive for ASCII, ``%`` and ``_``
  taken literally);
* ``include_missing``: models whose file is gone are left out unless asked for.

Ordering is total: the sort column, then ``sha256`` in the same direction, so pages never
overlap or skip rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hikaze_mm.database import DatabaseManager
from hikaze_mm.errors import ValidationError
from hikaze_mm.hashing import short_hash
from hikaze_mm.images import ImageStore
from hikaze_mm.model_types import canonical_type
from hikaze_mm.params import parse_bool, parse_int

SORT_COLUMNS: dict[str, str] = {
    "name": "m.name COLLATE NOCASE",
    "created_at": "m.created_at",
    "last_used_at": "m.last_used_at",
    "size_bytes": "m.size_bytes",
}
# Without ``order``, names sort A-Z and the other keys newest/largest first.
DEFAULT_ORDER: dict[str, str] = {
    "name": "asc",
    "created_at": "desc",
    "last_used_at": "desc",
    "size_bytes": "desc",
}
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_FILTER_TAGS = 32
MAX_QUERY_CHARS = 200
LIST_COLUMNS = (
    "sha256",
    "name",
    "type",
    "base",
    "path",
    "size_bytes",
    "created_at",
    "last_used_at",
    "missing",
)
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
    }
)


def _split_tags(values: Sequence[str]) -> tuple[str, ...]:
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


@dataclass(frozen=True)
class ModelQuery:
    """What to list. Build it directly (the CLI) or from query parameters (the API)."""

    type: str | None = None
    base: str | None = None
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    q: str | None = None
    sort: str = "name"
    order: str | None = None
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    include_missing: bool = False

    def __post_init__(self) -> None:
        if self.sort not in SORT_COLUMNS:
            raise ValidationError(
                f"sort must be one of {', '.join(SORT_COLUMNS)}, not {self.sort!r}"
            )
        if self.order is not None and self.order not in ("asc", "desc"):
            raise ValidationError(f"order must be asc or desc, not {self.order!r}")
        if self.offset < 0 or not 0 <= self.limit <= MAX_LIMIT:
            raise ValidationError(f"offset must be >= 0 and limit between 0 and {MAX_LIMIT}")
        if self.q is not None and len(self.q) > MAX_QUERY_CHARS:
            raise ValidationError(f"q is at most {MAX_QUERY_CHARS} characters")

    @property
    def direction(self) -> str:
        return self.order or DEFAULT_ORDER[self.sort]

    @classmethod
    def from_params(cls, params: Mapping[str, str], multi: Mapping[str, list[str]]) -> ModelQuery:
        """Parse query parameters; ``multi`` gives every value of repeated keys (tags).

        Unknown parameters are a ValidationError, as are bad sorts, orders and integers.
        """
        unknown = sorted(set(params) - QUERY_PARAMS)
        if unknown:
            raise ValidationError(f"unknown query parameters: {', '.join(unknown)}")
        model_type = (params.get("type") or "").strip()
        base = (params.get("base") or "").strip()
        q = (params.get("q") or "").strip()
        return cls(
            type=canonical_type(model_type) if model_type else None,
            base=base or None,
            tags=_split_tags(multi.get("tags", [])),
            exclude_tags=_split_tags(multi.get("exclude_tags", [])),
            q=q or None,
            sort=params.get("sort") or "name",
            order=(params.get("order") or None),
            offset=parse_int(params.get("offset"), "offset", 0),
            limit=parse_int(params.get("limit"), "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT),
            include_missing=parse_bool(params.get("include_missing"), "include_missing"),
        )


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def resolve_tag_ids(db: DatabaseManager, names: Sequence[str]) -> dict[str, int]:
    """Tag name (any case) -> id, for the names that exist; one query."""
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    rows = db.conn.execute(f"SELECT id, name FROM tags WHERE name IN ({marks})", list(names))
    found = {row["name"].casefold(): int(row["id"]) for row in rows}
    return {n: found[n.casefold()] for n in names if n.casefold() in found}


@dataclass(frozen=True)
class ListingSql:
    """The two statements of one listing and their parameters (``None``: matches nothing)."""

    where: str
    args: tuple[Any, ...]
    order_by: str
    limit: int
    offset: int

    @property
    def count_sql(self) -> str:
        return f"SELECT COUNT(*) FROM models m WHERE {self.where}"

    @property
    def page_sql(self) -> str:
        columns = ", ".join(f"m.{c}" for c in LIST_COLUMNS)
        return (
            f"SELECT {columns} FROM models m WHERE {self.where} "
            f"ORDER BY {self.order_by} LIMIT ? OFFSET ?"
        )

    @property
    def page_args(self) -> tuple[Any, ...]:
        return (*self.args, self.limit, self.offset)

    @property
    def combined_sql(self) -> str:
        """Count and page in one pass: the matches are materialized once, then counted
        and sorted. Used when a required tag bounds the matches by its posting list,
        where it halves the work of running the filter twice; no row means an empty
        page (the total then comes from ``count_sql``)."""
        columns = ", ".join(f"m.{c}" for c in LIST_COLUMNS)
        order_by = self.order_by.replace("m.", "")
        return (
            f"WITH hits AS MATERIALIZED (SELECT {columns} FROM models m WHERE {self.where}) "
            f"SELECT (SELECT COUNT(*) FROM hits) AS total, {', '.join(LIST_COLUMNS)} "
            f"FROM hits ORDER BY {order_by} LIMIT ? OFFSET ?"
        )


def build_sql(query: ModelQuery, tag_ids: Mapping[str, int]) -> ListingSql | None:
    """The SQL for ``query`` given its resolved tags; None when a required tag is unknown."""
    clauses: list[str] = []
    args: list[Any] = []
    if not query.include_missing:
        clauses.append("m.missing = 0")
    if query.type is not None:
        clauses.append("m.type = ?")
        args.append(query.type)
    if query.base is not None:
        clauses.append("m.base = ?")
        args.append(query.base)
    for name in query.tags:
        if name not in tag_ids:
            return None
        clauses.append("m.sha256 IN (SELECT mt.model_hash FROM model_tags mt WHERE mt.tag_id = ?)")
        args.append(tag_ids[name])
    excluded = [tag_ids[n] for n in query.exclude_tags if n in tag_ids]
    if excluded:
        marks = ",".join("?" * len(excluded))
        clauses.append(
            "NOT EXISTS (SELECT 1 FROM model_tags mx "
            f"WHERE mx.model_hash = m.sha256 AND mx.tag_id IN ({marks}))"
        )
        args.extend(excluded)
    if query.q:
        clauses.append("(m.name LIKE ? ESCAPE '\\' OR m.path LIKE ? ESCAPE '\\')")
        pattern = _like_pattern(query.q)
        args.extend((pattern, pattern))
    direction = query.direction.upper()
    order_by = f"{SORT_COLUMNS[query.sort]} {direction}, m.sha256 {direction}"
    return ListingSql(
        where=" AND ".join(clauses) or "1",
        args=tuple(args),
        order_by=order_by,
        limit=query.limit,
        offset=query.offset,
    )


def fetch_page(db: DatabaseManager, query: ModelQuery) -> tuple[int, list[sqlite3.Row]]:
    """The listing's SQL alone: ``(total, rows of LIST_COLUMNS)`` for ``query``."""
    sql = build_sql(query, resolve_tag_ids(db, [*query.tags, *query.exclude_tags]))
    if sql is None:
        return 0, []
    conn = db.conn
    rows: list[sqlite3.Row] = []
    total: int | None = None
    if query.tags and query.limit:
        rows = conn.execute(sql.combined_sql, sql.page_args).fetchall()
        total = int(rows[0]["total"]) if rows else None
    elif query.limit:
        rows = conn.execute(sql.page_sql, sql.page_args).fetchall()
    if total is None:
        total = int(conn.execute(sql.count_sql, sql.args).fetchone()[0])
    return total, rows


def list_models(db: DatabaseManager, images: ImageStore, query: ModelQuery) -> dict[str, Any]:
    """``{total, offset, limit, items}`` for one page of the library (blocking: run off-loop)."""
    total, rows = fetch_page(db, query)
    shas = [row["sha256"] for row in rows]
    tags = db.tags_for_models(shas)
    counts = images.image_counts(shas)
    covers = images.cover_images(shas)
    items = []
    for row in rows:
        sha = row["sha256"]
        item = {key: row[key] for key in LIST_COLUMNS}
        item["short_hash"] = short_hash(sha)
        item["missing"] = bool(row["missing"])
        item["tags"] = tags.get(sha, [])
        item["image_count"] = counts.get(sha, 0)
        item["cover_image"] = covers.get(sha)
        items.append(item)
    return {"total": total, "offset": query.offset, "limit": query.limit, "items": items}


# ---------------------------------------------------------------- facets and stats
def _present(include_missing: bool) -> str:
    return "1" if include_missing else "missing = 0"


def type_counts(db: DatabaseManager, *, include_missing: bool = False) -> list[dict[str, Any]]:
    """``[{type, count}]`` of the library, most common first."""
    rows = db.conn.execute(
        f"SELECT type, COUNT(*) AS count FROM models WHERE {_present(include_missing)} "
        "GROUP BY type ORDER BY count DESC, type"
    )
    return [{"type": row["type"], "count": int(row["count"])} for row in rows]


def base_counts(db: DatabaseManager, *, include_missing: bool = False) -> list[dict[str, Any]]:
    """``[{base, count}]`` (base null: not detected), most common first."""
    rows = db.conn.execute(
        f"SELECT base, COUNT(*) AS count FROM models WHERE {_present(include_missing)} "
        "GROUP BY base ORDER BY count DESC, base"
    )
    return [{"base": row["base"], "count": int(row["count"])} for row in rows]


def library_stats(db: DatabaseManager, images: ImageStore) -> dict[str, Any]:
    """Totals for a dashboard: models, sizes, types, tags, pending imports, images."""
    conn = db.conn
    row = conn.execute(
        "SELECT COUNT(*) AS models, COALESCE(SUM(missing), 0) AS missing, "
        "COALESCE(SUM(CASE WHEN missing = 0 THEN size_bytes END), 0) AS size, "
        "COALESCE(SUM(last_used_at IS NOT NULL), 0) AS used FROM models"
    ).fetchone()
    shas = [r[0] for r in conn.execute("SELECT sha256 FROM models")]
    counts = images.image_counts(shas)
    pending = {status: n for status, n in db.pending_counts().items() if n}
    tags = conn.execute(
        "SELECT COUNT(*) AS tags, (SELECT COUNT(*) FROM model_tags) AS links FROM tags"
    ).fetchone()
    return {
        "models": int(row["models"]),
        "missing": int(row["missing"]),
        "total_size_bytes": int(row["size"]),
        "used": int(row["used"]),
        "types": {t["type"]: t["count"] for t in type_counts(db)},
        "bases": {b["base"] or "unknown": b["count"] for b in base_counts(db)},
        "tags": int(tags["tags"]),
        "tag_links": int(tags["links"]),
        "images": sum(counts.values()),
        "models_with_images": sum(1 for n in counts.values() if n),
        "pending": sum(pending.values()),
        "pending_by_status": pending,
    }
