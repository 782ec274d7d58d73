"""The SQL that differs between the backends, for the stores that run on both.

Each store keeps one implementation of its logic and writes portable SQL (``ON CONFLICT``,
``RETURNING``, ``?`` placeholders); where SQLite and PostgreSQL truly differ, it takes the
fragment from its library's ``dialect``: index hints (SQLite's planner needs them; the
other has none), the case-insensitive tag key (``NOCASE`` / an ASCII-folded column),
JSON paths into a model's meta, and the text search. ``Dialect`` (``SQLITE``) is the
embedded backend's; ``postgres.dialect.PostgresDialect`` overrides it for the server.
"""

from __future__ import annotations

from typing import Any

from hikaze_mm.database.listing_items import SQLITE_ITEMS, ItemSql

# ``meta_json`` that is not valid JSON reads as no meta (json_extract would fail the query).
_META = "(CASE WHEN json_valid({col}) THEN {col} END)"


class Dialect:
    """SQLite's fragments (see the module's docstring)."""

    name = "sqlite"
    # The column tags are unique by (compared with ``tags.nocase(name)``).
    tag_key = "name"
    # LIMIT's value for "no limit".
    no_limit: int | None = -1
    # The separator of the texts ``group_concat`` joins (split again in Python).
    text_separator = "\0"
    # Whether ``q`` goes through the FTS5 table ``model_search``; else ``text_search``
    # (a LIKE of the name, the path, the trigger words and the tag names, served by
    # trigram indexes) is the search of a ``q`` of a trigram or more.
    fts5 = True
    # The text index's upkeep: how many segments it has, the statement that merges them,
    # and the one that empties it (None: it needs no emptying to be rebuilt).
    search_segments = "SELECT COUNT(DISTINCT segid) FROM model_search_idx"
    search_merge = "INSERT INTO model_search (model_search) VALUES ('optimize')"
    search_clear: str | None = "DELETE FROM model_search"
    # The models present (not flagged missing), and how many rows of a tally it read (0:
    # none), and the statement that folds a tally's rows into one (None: no tally).
    # SQLite counts two indexes that read no row.
    present_total = (
        "SELECT (SELECT COUNT(*) FROM models) - (SELECT COUNT(*) FROM models "
        "INDEXED BY idx_models_missing WHERE missing != 0), 0"
    )
    tally_fold: str | None = None
    # A listing page's items as JSON (``listing_items``).
    items: ItemSql = SQLITE_ITEMS
    # The operator of a LIKE that ignores ASCII case (SQLite's LIKE does).
    like = "LIKE"
    # What a sub-select of rows to claim adds so that concurrent claims take other rows
    # rather than wait (nothing on SQLite, whose writers take turns).
    skip_locked = ""

    def hint(self, index: str) -> str:
        """An index hint, after a table's name."""
        return f" INDEXED BY {index}"

    def not_indexed(self) -> str:
        """Read the table straight through, after its name."""
        return " NOT INDEXED"

    def text_like(self, column: str) -> str:
        """``column`` holds a bound LIKE pattern (``\\`` escapes), in any case."""
        return f"{column} {self.like} ? ESCAPE '\\'"

    def has_tag(self) -> str:
        """A model row ``m`` has the tag of a bound id."""
        return "m.sha256 IN (SELECT mt.model_hash FROM model_tags mt WHERE mt.tag_id = ?)"

    def text_search(self, text: str) -> tuple[str, int]:
        """Without FTS5: the filter of a ``q`` of a trigram or more (``text``: the text
        searched, case as given) on a model row ``m``, and how many bound LIKE patterns
        (each the text's, ``\\`` escaping) it takes: the text in the name, the path, the
        trigger words or a tag's name, in any case."""
        raise NotImplementedError("SQLite searches through FTS5")

    def nocase_order(self, column: str) -> str:
        """An ORDER BY term for names in case-insensitive (ASCII) order."""
        return f"{column} COLLATE NOCASE"

    def sort(self, column: str, direction: str) -> str:
        """An ORDER BY term, NULL lowest (SQLite's order: first ascending, last
        descending)."""
        return f"{column} {direction}"

    def group_concat(self, expr: str) -> str:
        return f"group_concat({expr}, char(0))"

    # ------------------------------------------------------------- a model's meta
    def meta_path(self, key: str) -> Any:
        """The bound value naming a (checked) dotted meta key."""
        return "$." + key

    def meta_value(self, column: str = "meta_json") -> str:
        """The scalar at one bound path (NULL when absent or JSON null)."""
        return f"json_extract({_META.format(col=column)}, ?)"

    def meta_at(self, column: str, key: str) -> str:
        """The scalar at a (checked) dotted meta key written in the SQL."""
        return f"json_extract({_META.format(col=column)}, '$.{key}')"

    def meta_array(self, count: int, column: str = "meta_json") -> str:
        """The JSON text of an array of the values at ``count`` (two or more) bound paths,
        null where absent."""
        return f"json_extract({_META.format(col=column)}, {', '.join('?' * count)})"

    def meta_not_after(self, column: str = "meta_json") -> str:
        """True unless the value at a bound path is after a bound number."""
        return f"COALESCE(json_extract({_META.format(col=column)}, ?) > ?, 0) = 0"

    def meta_valid(self, column: str = "meta_json") -> str:
        """The meta is there (and JSON)."""
        return f"json_valid({column})"


SQLITE = Dialect()
