"""ListingStore: the library's filtered, sorted, paginated listing, facets and totals.

``ModelQuery`` holds the filters; ``build_sql`` turns one into two statements (a COUNT
and a page) with only bound parameters, and ``ListingStore.page`` runs them. Filters, all
combined with AND:

* ``type`` and ``base``: exact match (type through the canonical vocabulary);
* ``tags``: every named tag is required (case-insensitive names; an unknown one matches
  nothing), each through the ``(tag_id, model_hash)`` index;
* ``exclude_tags``: none of them may be present (``NOT EXISTS``);
* ``q``: a substring of the name or the path (case-insensitive for ASCII, ``%`` and ``_``
  taken literally);
* ``include_missing``: models whose file is gone are left out unless asked for.

Ordering is total: the sort column, then ``sha256`` in the same direction, so pages never
overlap or skip rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.tags import nocase
from hikaze_mm.errors import ValidationError
from hikaze_mm.params import check_text

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

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


@dataclass(frozen=True)
class ModelQuery:
    """What to list (validated on creation)."""

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
        for name in ("type", "base", "q"):
            if getattr(self, name) is not None:
                check_text(getattr(self, name), name)
        for tag in (*self.tags, *self.exclude_tags):
            check_text(tag, "a tag")

    @property
    def direction(self) -> str:
        return self.order or DEFAULT_ORDER[self.sort]


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class ListingSql:
    """The two statements of one listing and their parameters."""

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
    """The SQL for ``query`` given its resolved tags (by ``nocase`` name); None when a
    required tag is unknown (nothing matches)."""
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
        if nocase(name) not in tag_ids:
            return None
        clauses.append("m.sha256 IN (SELECT mt.model_hash FROM model_tags mt WHERE mt.tag_id = ?)")
        args.append(tag_ids[nocase(name)])
    excluded = [tag_ids[nocase(n)] for n in query.exclude_tags if nocase(n) in tag_ids]
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


def _present(include_missing: bool) -> str:
    return "1" if include_missing else "missing = 0"


class ListingStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def page(self, query: ModelQuery) -> tuple[int, list[dict[str, Any]]]:
        """``(total, rows)`` for ``query``; each row a dict of LIST_COLUMNS."""
        tag_ids = self.db.tags.ids_by_name([*query.tags, *query.exclude_tags])
        sql = build_sql(query, tag_ids)
        if sql is None:
            return 0, []
        conn = self.db.conn
        rows: list[Any] = []
        total: int | None = None
        if query.tags and query.limit:
            rows = conn.execute(sql.combined_sql, sql.page_args).fetchall()
            total = int(rows[0]["total"]) if rows else None
        elif query.limit:
            rows = conn.execute(sql.page_sql, sql.page_args).fetchall()
        if total is None:
            total = int(conn.execute(sql.count_sql, sql.args).fetchone()[0])
        return total, [{key: row[key] for key in LIST_COLUMNS} for row in rows]

    def type_counts(self, *, include_missing: bool = False) -> list[dict[str, Any]]:
        """``[{type, count}]`` of the library, most common first."""
        rows = self.db.tuples(
            f"SELECT type, COUNT(*) AS count FROM models WHERE {_present(include_missing)} "
            "GROUP BY type ORDER BY count DESC, type"
        )
        return [{"type": t, "count": int(n)} for t, n in rows]

    def base_counts(self, *, include_missing: bool = False) -> list[dict[str, Any]]:
        """``[{base, count}]`` (base null: not detected), most common first."""
        rows = self.db.tuples(
            f"SELECT base, COUNT(*) AS count FROM models WHERE {_present(include_missing)} "
            "GROUP BY base ORDER BY count DESC, base"
        )
        return [{"base": b, "count": int(n)} for b, n in rows]

    def totals(self) -> dict[str, int]:
        """``{models, missing, size, used}``: counts and the bytes of the present models."""
        row = self.db.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(missing), 0), "
            "COALESCE(SUM(CASE WHEN missing = 0 THEN size_bytes END), 0), "
            "COALESCE(SUM(last_used_at IS NOT NULL), 0) FROM models"
        ).fetchone()
        return {
            "models": int(row[0]),
            "missing": int(row[1]),
            "size": int(row[2]),
            "used": int(row[3]),
        }

    def all_sha256s(self) -> list[str]:
        return [row[0] for row in self.db.tuples("SELECT sha256 FROM models")]
