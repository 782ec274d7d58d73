"""ListingStore: the library's filtered, sorted, paginated listing, facets and totals.

``ModelQuery`` holds the filters; ``build_sql`` turns one into two statements (a COUNT
and a page) with only bound parameters, and ``ListingStore.page`` runs them
(``ListingStore.page_json`` runs the same plan with each row of the page written as JSON
by SQLite: ``listing_items``). Filters, all combined with AND:

* ``type`` and ``base``: exact match (type through the canonical vocabulary); ``base``
  ``unknown`` lists the models with no base;
* ``tags``: every named tag is required (case-insensitive names; an unknown one matches
  nothing), each through the ``(tag_id, model_hash)`` index, or, with ``q``, as an exact
  term of the text index (its id);
* ``exclude_tags``: none of them may be present (``NOT EXISTS``);
* ``q``: a substring of the name, the path, a tag name or a trigger word
  (``meta.trigger_words``), case-insensitive, through the trigram index ``model_search``;
  or, for 8 to 64 hex digits, the start of the SHA-256 (the AutoV2 short hash is its first
  10), through the primary key. A ``q`` of one or two characters (shorter than a
  trigram), or any ``q`` until the index of an upgraded library is built
  (``search_ready``), is a LIKE scan of names, paths and tag names (``%`` and ``_`` taken
  literally, case-insensitive for ASCII);
* ``folder``: models whose path lies under that folder (any depth), a range of the path
  index;
* ``used``: only models used at least once (``last_used_at`` set);
* ``update``: ``available`` keeps the models whose ``meta.update`` names a newer version
  on Civitai (``meta.update.version_id``, a ``json_extract`` of the row's meta). No index
  (that would take a schema revision): each candidate's meta is read, about 0.1 s on
  50,000 models, so its matches, which are few, are counted in the page's own pass
  (``combined_sql``) rather than by a second scan;
* ``include_missing``: models whose file is gone are left out unless asked for.

Names sort in natural order (``v2`` before ``v10``) through ``name_key``.

Ordering is total: the sort column, then ``sha256`` in the same direction, so pages never
overlap or skip rows.

Plans, measured on 50,000 models: a required tag drives (its posting list bounds the
matches) and the text match is a membership test (``+m.rowid IN``) in the set the index
finds; without a tag the index drives. The total of an unfiltered listing is two counts
that need no row (all models, less those flagged missing, from a partial index). On
PostgreSQL a required tag and a ``q`` meet in one GIN index (``idx_models_search``: the
tag ids of ``models.tag_ids`` and the trigrams of the folded name, path and trigger
words), which finds the rows having both; only those are read (tag and text: 43 -> 4 ms
of SQL at 50,000 models).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.dialect import SQLITE, Dialect
from hikaze_mm.database.errors import StorageBusyError, StorageUnavailableError
from hikaze_mm.database.listing_items import (
    LIST_COLUMNS,
    PAGE_COLUMNS,
    item_json,
    item_tags,
    items_sql,
)
from hikaze_mm.database.sql import path_prefix_bounds
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.tags import nocase
from hikaze_mm.errors import ValidationError
from hikaze_mm.params import MAX_PATH_CHARS, check_text
from hikaze_mm.policy import DEFAULT_LIMIT, MAX_LIMIT, SORT_KEYS

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# The column of each sort key (``policy.SORT_KEYS``): the name's natural-order key, else
# the column of that name.
SORT_COLUMNS: dict[str, str] = {
    key: "m.name_key" if key == "name" else f"m.{key}" for key in SORT_KEYS
}
# Without ``order``, names sort A-Z and the other keys newest/largest first.
DEFAULT_ORDER: dict[str, str] = {
    "name": "asc",
    "created_at": "desc",
    "last_used_at": "desc",
    "size_bytes": "desc",
}
log = logging.getLogger(__name__)

# The ``base`` filter value (and facet name) of the models whose base is not known.
UNKNOWN_BASE = "unknown"
MAX_QUERY_CHARS = 200
# An unfiltered listing folds the tally (``dialect.tally_fold``) when it has more rows.
TALLY_ROWS = 500
# The ``update`` filter's values: ``available``, the models with a newer version on Civitai.
UPDATE_FILTERS = ("available",)
# The meta key the ``update`` filter reads (a version id is set).
UPDATE_KEY = "update.version_id"


@dataclass(frozen=True)
class ModelQuery:
    """What to list (validated on creation)."""

    type: str | None = None
    base: str | None = None
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    q: str | None = None
    folder: str | None = None
    used: bool = False
    sort: str = "name"
    order: str | None = None
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    include_missing: bool = False
    update: str | None = None

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
        if self.folder is not None and len(self.folder) > MAX_PATH_CHARS:
            raise ValidationError(f"folder is at most {MAX_PATH_CHARS} characters")
        if self.update is not None and self.update not in UPDATE_FILTERS:
            raise ValidationError(
                f"update must be one of {', '.join(UPDATE_FILTERS)}, not {self.update!r:.40}"
            )
        for name in ("type", "base", "q", "folder"):
            if getattr(self, name) is not None:
                check_text(getattr(self, name), name)
        for tag in (*self.tags, *self.exclude_tags):
            check_text(tag, "a tag")

    @property
    def direction(self) -> str:
        return self.order or DEFAULT_ORDER[self.sort]


# The trigram index needs 3 characters; a shorter ``q`` is a LIKE over its (narrow) rows.
TRIGRAM = 3
# ``q`` of this many hex digits or more also matches the start of a SHA-256.
MIN_HASH_PREFIX = 8
_HEX_RE = re.compile(rf"[0-9a-fA-F]{{{MIN_HASH_PREFIX},64}}")
SEARCH_STATE_KEY = "search_index"
# One document of the index, from a model row ``m`` (the schema's triggers say the same).
SEARCH_DOCUMENT = (
    "m.rowid, m.sha256, m.name, m.path, "
    "(SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt "
    "JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = m.sha256), "
    "CASE WHEN json_valid(m.meta_json) THEN (SELECT group_concat(j.value, char(10)) "
    "FROM json_each(m.meta_json, '$.trigger_words') j WHERE j.type = 'text') END, "
    "(SELECT group_concat(char(1) || mt.tag_id || char(1), '') FROM model_tags mt "
    "WHERE mt.model_hash = m.sha256)"
)
# Past this many segments, the index is merged into one (``tidy_search_index``): an index
# written by many small transactions (each tag link rewrites its document) reads several
# times slower than a merged one.
MAX_SEARCH_SEGMENTS = 8


def tag_term(tag_id: int) -> str:
    """The index's term of a tag id (its ``tag_ids`` column holds one per tag)."""
    return f"tag_ids : {_phrase(chr(1) + str(tag_id) + chr(1))}"


# Up to this many matches of ``q`` alone, the index drives (a table lookup each);
# past it, the listing's own index order drives and tests each model against the matches.
DRIVING_MATCHES = 4000


def _only_text(query: ModelQuery) -> bool:
    """Whether ``q`` is the listing's only filter (then the index's count is its total)."""
    return (
        query.type is None
        and query.base is None
        and not query.tags
        and not query.exclude_tags
        and query.folder is None
        and not query.used
        and query.update is None
        and hash_prefix(query.q or "") is None
    )


def _phrase(text: str) -> str:
    """``text`` as one FTS5 phrase: the trigram tokenizer matches it as a substring."""
    return '"' + text.replace('"', '""') + '"'


def hash_prefix(text: str) -> str | None:
    """The lower-case hex digits of ``text`` when it may be the start of a SHA-256."""
    stripped = text.strip()
    return stripped.lower() if _HEX_RE.fullmatch(stripped) else None


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
        columns = ", ".join(f"m.{c}" for c in PAGE_COLUMNS)
        order_by = self.order_by.replace("m.", "")
        return (
            f"WITH hits AS MATERIALIZED (SELECT {columns} FROM models m WHERE {self.where}) "
            f"SELECT (SELECT COUNT(*) FROM hits) AS total, {', '.join(LIST_COLUMNS)} "
            f"FROM hits ORDER BY {order_by} LIMIT ? OFFSET ?"
        )


@dataclass(frozen=True)
class TextSearch:
    """How ``q`` runs through the index.

    ``match``: the FTS5 expression (the phrase, AND each required tag's id term), or None
    for a ``q`` shorter than a trigram (then names, paths and tag names are scanned with
    LIKE, as before the index). ``drives``: the index's matches drive the query (they are
    few, or required tags narrow them); else they are a set the candidates are tested
    against (``+m.rowid IN``: the rowid comes with any index entry, so no table row is
    read for a candidate that fails). ``hits``: how many documents ``match`` finds, when
    counted. ``with_tags``: ``match`` holds the required tags (exactly, by id), so no
    other check of them is needed.
    """

    match: str | None
    drives: bool
    hits: int | None = None
    with_tags: bool = False


def _text_clause(
    text: str, search: TextSearch | None, dialect: Dialect = SQLITE
) -> tuple[str, list[Any]]:
    """The ``q`` filter: the index (or, without one, the LIKE scan), OR the start of the
    hash. Without FTS5 (PostgreSQL) the backend's ``text_search``, served by trigram
    indexes, is the search of a ``q`` of a trigram or more, and takes in the trigger
    words too."""
    args: list[Any] = []
    if search is not None and search.match is not None:
        member = "m.rowid IN" if search.drives else "+m.rowid IN"
        parts = [f"{member} (SELECT rowid FROM model_search WHERE model_search MATCH ?)"]
        args.append(search.match)
    elif dialect.fts5 or len(text) < TRIGRAM:  # no index yet, or q shorter than a trigram
        parts = [dialect.text_like("m.name"), dialect.text_like("m.path")]
        parts.append(
            "m.sha256 IN (SELECT mq.model_hash FROM model_tags mq JOIN tags tq "
            f"ON tq.id = mq.tag_id WHERE {dialect.text_like('tq.name')})"
        )
        args.extend([_like_pattern(text)] * len(parts))
    else:  # trigram indexes
        clause, patterns = dialect.text_search(text)
        parts = [clause]
        args.extend([_like_pattern(text)] * patterns)
    prefix = hash_prefix(text)
    if prefix is not None:
        # Lower-case hex sorts below "g": these bounds hold exactly the hashes with the prefix.
        parts.append("(m.sha256 >= ? AND m.sha256 < ?)")
        args.extend((prefix, prefix + "g"))
    return "(" + " OR ".join(parts) + ")", args


def build_sql(
    query: ModelQuery,
    tag_ids: Mapping[str, int],
    search: TextSearch | None = None,
    dialect: Dialect = SQLITE,
) -> ListingSql:
    """The SQL for ``query`` given its resolved tags (by ``nocase`` name; every required
    tag among them). ``search``: how ``q`` uses the index (None: the LIKE scan, while the
    index is not ready, or the backend's search)."""
    clauses: list[str] = []
    args: list[Any] = []
    if not query.include_missing:
        clauses.append("m.missing = 0")
    if query.type is not None:
        clauses.append("m.type = ?")
        args.append(query.type)
    if query.base == UNKNOWN_BASE:
        clauses.append("(m.base IS NULL OR m.base = '')")
    elif query.base is not None:
        clauses.append("m.base = ?")
        args.append(query.base)
    for name in query.tags:
        if search is not None and search.with_tags:
            continue  # the index's expression has it
        # The tag's posting list drives.
        clauses.append(dialect.has_tag())
        args.append(tag_ids[nocase(name)])
    excluded = [tag_ids[nocase(n)] for n in query.exclude_tags if nocase(n) in tag_ids]
    if excluded:
        marks = ",".join("?" * len(excluded))
        clauses.append(
            "NOT EXISTS (SELECT 1 FROM model_tags mx "
            f"WHERE mx.model_hash = m.sha256 AND mx.tag_id IN ({marks}))"
        )
        args.extend(excluded)
    if query.folder is not None:
        clauses.append("(m.path >= ? AND m.path < ?)")
        args.extend(path_prefix_bounds(query.folder))
    if query.used:
        clauses.append("m.last_used_at IS NOT NULL")
    if query.update == "available":
        clauses.append(f"{dialect.meta_at('m.meta_json', UPDATE_KEY)} IS NOT NULL")
    if query.q:
        clause, q_args = _text_clause(query.q, search, dialect)
        clauses.append(clause)
        args.extend(q_args)
    direction = query.direction.upper()
    order_by = f"{dialect.sort(SORT_COLUMNS[query.sort], direction)}, m.sha256 {direction}"
    return ListingSql(
        where=" AND ".join(clauses) or "TRUE",
        args=tuple(args),
        order_by=order_by,
        limit=query.limit,
        offset=query.offset,
    )


@dataclass(frozen=True)
class _Plan:
    """A listing ready to run: its SQL, whether the page also counts its matches
    (``combined_sql``: a required tag or the update filter bounds them), and the total if
    already known."""

    sql: ListingSql
    combined: bool
    total: int | None


def _present(include_missing: bool) -> str:
    return "TRUE" if include_missing else "missing = 0"


_LOCATED = re.compile(r'"path"\s*:\s*"@')  # an item whose path is a location


@translate_errors()
class ListingStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db
        self._search_ready = False
        self._search_built_to = 0  # build_search_index has covered every rowid up to here
        self.driving_matches = DRIVING_MATCHES

    def page(self, query: ModelQuery) -> tuple[int, list[dict[str, Any]]]:
        """``(total, rows)`` for ``query``; each row a dict of LIST_COLUMNS. The API builds
        its pages with ``page_json``; this plain form is the matching and order on their
        own: what the listing tests compare against, and the bench's raw-SQL baseline."""
        plan = self._plan(query)
        if plan is None:
            return 0, []  # a required tag nobody has
        rows: list[Any] = []
        if query.limit:
            statement = plan.sql.combined_sql if plan.combined else plan.sql.page_sql
            rows = self.db.conn.execute(statement, plan.sql.page_args).fetchall()
        total = self._total(plan, rows[0]["total"] if plan.combined and rows else None)
        found = [{key: row[key] for key in LIST_COLUMNS} for row in rows]
        for row in found:
            row["path"] = self.db.locations.shown(row["path"])
        return total, found

    def page_json(self, query: ModelQuery) -> tuple[int, list[tuple[str, str]]]:
        """``(total, [(sha256, item)])``: the page ``page`` finds, each item the text of one
        JSON object built by SQLite (``listing_items``) without ``image_count`` and
        ``cover_image`` and without its closing brace (the caller adds those)."""
        plan = self._plan(query)
        if plan is None:
            return 0, []
        rows: list[Any] = []
        parts = self.db.dialect.items
        if query.limit:
            statement = items_sql(plan.sql, combined=plan.combined, parts=parts)
            rows = self.db.conn.execute(statement, plan.sql.page_args).fetchall()
        total = self._total(plan, rows[0][0] if plan.combined and rows else None)
        heads = [self._here(row[2]) for row in rows]
        if parts.tags_by_id:
            tags = self.db.tags.item_json_by_id({i for row in rows for i in row[3]})
            return total, [
                (row[1], item_json(head, item_tags(row[3], tags), row[4], row[5]))
                for head, row in zip(heads, rows, strict=True)
            ]
        return total, [
            (row[1], item_json(head, *row[3:])) for head, row in zip(heads, rows, strict=True)
        ]

    def _here(self, head: str) -> str:
        """An item's head (JSON text) as this host shows it: in a studio (root names set)
        its ``path`` is this host's, ``missing`` is true where this host has no copy, and
        ``location`` is ``{"root", "path"}`` (null for a path below no named root)."""
        if not (self.db.locations.named or _LOCATED.search(head)):
            return head
        item = self.db.locations.show(json.loads(head))
        return json.dumps(item, ensure_ascii=False, separators=(",", ":"))

    def _plan(self, query: ModelQuery) -> _Plan | None:
        """How ``query`` runs (None: a required tag nobody has, so nothing matches); the
        total when the text index knows it."""
        if query.folder is not None:  # as the catalog keeps it (a location in a studio)
            query = replace(query, folder=self.db.locations.stored(query.folder))
        names = [*query.tags, *query.exclude_tags]
        tag_ids = self.db.tags.ids_by_name(names) if names else {}
        if any(nocase(name) not in tag_ids for name in query.tags):
            return None
        dialect = self.db.dialect
        indexed = query.q and dialect.fts5 and self.search_ready()
        search = self._text_search(query, tag_ids) if indexed else None
        sql = build_sql(query, tag_ids, search, dialect)
        total: int | None = None
        if search is not None and search.hits is not None and _only_text(query):
            total = search.hits  # every document is a model's: less those flagged missing
            if not query.include_missing and total:
                total -= int(
                    self.db.conn.execute(
                        "SELECT COUNT(*) FROM models m INDEXED BY idx_models_missing "
                        "WHERE m.missing != 0 AND m.rowid IN "
                        "(SELECT rowid FROM model_search WHERE model_search MATCH ?)",
                        (search.match,),
                    ).fetchone()[0]
                )
        bounded = query.tags or query.update  # few matches: count them as the page is cut
        return _Plan(sql, combined=bool(bounded and query.limit), total=total)

    def _total(self, plan: _Plan, counted: Any) -> int:
        """The listing's total: the index's, else the page's count of its matches
        (``counted``, from a combined page with rows), else a count."""
        if counted is not None:
            return int(counted)
        if plan.total is not None:
            return plan.total
        sql = plan.sql
        if sql.where == "m.missing = 0":  # no filter
            total, tally_rows = self.db.conn.execute(self.db.dialect.present_total).fetchone()
            if tally_rows > TALLY_ROWS:
                self._fold_tally()
            return int(total)
        return int(self.db.conn.execute(sql.count_sql, sql.args).fetchone()[0])

    def _fold_tally(self) -> None:
        """Fold the backend's tally of the models into one row (``dialect.tally_fold``);
        a library that cannot be written now is left as it is (the next reader tries)."""
        fold = self.db.dialect.tally_fold
        if fold is None or self.db.read_only:
            return
        try:
            with self.db.transaction() as conn:
                conn.execute(fold)
        except (StorageBusyError, StorageUnavailableError) as exc:
            log.warning("could not fold the models' tally: %s", exc)

    def _text_search(self, query: ModelQuery, tag_ids: Mapping[str, int]) -> TextSearch:
        """Plan ``q`` (see ``TextSearch``): with required tags the index finds the models
        with the text and the tags (their id terms), which are few; without, it counts its
        matches first and drives only when they are few (the count is also the total of a
        listing filtered by ``q`` alone)."""
        text = query.q or ""
        if len(text) < TRIGRAM:
            return TextSearch(None, drives=False)
        phrase = _phrase(text)
        if hash_prefix(text) is None and query.tags:  # page: every tag is known
            terms = " AND ".join(tag_term(tag_ids[nocase(t)]) for t in query.tags)
            return TextSearch(f"{phrase} AND {terms}", drives=True, with_tags=True)
        hits = int(
            self.db.conn.execute(
                "SELECT COUNT(*) FROM model_search WHERE model_search MATCH ?", (phrase,)
            ).fetchone()[0]
        )
        drives = hits <= self.driving_matches and not query.tags and hash_prefix(text) is None
        return TextSearch(phrase, drives=drives, hits=hits)

    # ----------------------------------------------------------------- the search index
    def search_ready(self) -> bool:
        """Whether ``model_search`` covers every model (else ``q`` uses the LIKE scan).
        Once true it stays true for this manager: the triggers keep the index current."""
        if not self._search_ready:
            state = self.db.state.get(SEARCH_STATE_KEY) or {}
            self._search_ready = state.get("ready") is True
        return self._search_ready

    def build_search_index(self, limit: int = 2000) -> bool:
        """Index the next ``limit`` models (by rowid) that have no document yet, in one
        transaction; True once every model has one (the index is then marked ready).

        Safe beside writers: a model written meanwhile gets its document from the
        triggers, and is skipped here.
        """
        if self.search_ready():
            return True
        if not self.db.dialect.fts5:  # trigram indexes: every model is in them already
            self.db.state.set(SEARCH_STATE_KEY, {"ready": True})
            self._search_ready = True
            return True
        after = self._search_built_to
        with self.db.transaction() as conn:
            last = conn.execute(
                "SELECT MAX(rowid) FROM (SELECT rowid FROM models WHERE rowid > ? "
                "ORDER BY rowid LIMIT ?)",
                (after, limit),
            ).fetchone()[0]
            if last is None:
                self.db.state.set(SEARCH_STATE_KEY, {"ready": True})
            else:
                conn.execute(
                    "INSERT INTO model_search (rowid, sha256, name, path, tags, words, tag_ids) "
                    f"SELECT {SEARCH_DOCUMENT} FROM models m WHERE m.rowid > ? AND m.rowid <= ? "
                    "AND NOT EXISTS (SELECT 1 FROM model_search s WHERE s.rowid = m.rowid)",
                    (after, last),
                )
        if last is None:
            self._search_ready = True
            self.tidy_search_index()
            return True
        self._search_built_to = int(last)
        return False

    def tidy_search_index(self, max_segments: int = MAX_SEARCH_SEGMENTS) -> bool:
        """Merge the index into one segment when it has more than ``max_segments``; True
        if it did. Run after bulk writes (background jobs, bulk edits): a merge rewrites
        the whole index (about 0.6 s at 50,000 models) in one transaction. A library that
        another writer holds, or that cannot be written, is left as it is (False, logged):
        the next run tries again."""
        if self.db.read_only:
            return False
        try:
            segments = self.db.conn.execute(self.db.dialect.search_segments).fetchone()[0]
            if segments <= max_segments:
                return False
            with self.db.transaction() as conn:
                conn.execute(self.db.dialect.search_merge)
        except (sqlite3.OperationalError, StorageBusyError, StorageUnavailableError) as exc:
            log.warning("could not merge the search index: %s", exc)
            return False
        return True

    def rebuild_search_index(self) -> None:
        """Empty the index and mark it unready (``build_search_index`` fills it again)."""
        with self.db.transaction() as conn:
            if self.db.dialect.search_clear is not None:
                conn.execute(self.db.dialect.search_clear)
            self.db.state.set(SEARCH_STATE_KEY, {"ready": False})
        self._search_ready = False
        self._search_built_to = 0

    def type_counts(self, *, include_missing: bool = False) -> list[dict[str, Any]]:
        """``[{type, count}]`` of the library, most common first."""
        rows = self.db.tuples(
            f"SELECT type, COUNT(*) AS count FROM models WHERE {_present(include_missing)} "
            "GROUP BY type ORDER BY count DESC, type"
        )
        return [{"type": t, "count": int(n)} for t, n in rows]

    def base_counts(self, *, include_missing: bool = False) -> list[dict[str, Any]]:
        """``[{base, count}]`` (no base: ``"unknown"``), most common first."""
        rows = self.db.tuples(
            f"SELECT COALESCE(NULLIF(base, ''), '{UNKNOWN_BASE}') AS b, COUNT(*) AS count "
            f"FROM models WHERE {_present(include_missing)} GROUP BY b ORDER BY count DESC, b"
        )
        return [{"base": b, "count": int(n)} for b, n in rows]

    def totals(self) -> dict[str, int]:
        """``{models, missing, size, used}``: counts and the bytes of the present models."""
        row = self.db.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(missing), 0), "
            "COALESCE(SUM(CASE WHEN missing = 0 THEN size_bytes END), 0), "
            "COUNT(last_used_at) FROM models"
        ).fetchone()
        return {
            "models": int(row[0]),
            "missing": int(row[1]),
            "size": int(row[2]),
            "used": int(row[3]),
        }

    def all_sha256s(self) -> list[str]:
        return [row[0] for row in self.db.tuples("SELECT sha256 FROM models")]
