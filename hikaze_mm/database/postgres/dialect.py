"""PostgreSQL's fragments of the shared stores' SQL (``database/dialect.py``)."""

from __future__ import annotations

from typing import Any

from hikaze_mm.database.dialect import Dialect
from hikaze_mm.database.postgres.listing_items import POSTGRES_ITEMS


def words(meta: str) -> str:
    """The trigger words' text of a ``meta`` column: the strings of ``meta.trigger_words``
    (a string or a list) one a line, as SQLite's index holds them
    (``schema.WORDS_FUNCTION``)."""
    return f"hikaze_trigger_words({meta})"


def fold(expr: str) -> str:
    """``expr`` in lower case by Unicode's rules (ICU's root locale), whatever the
    database's own locale: what the text search compares and its indexes hold."""
    return f'lower(({expr}) COLLATE "und-x-icu")'


class PostgresDialect(Dialect):
    name = "postgresql"
    tag_key = "name_nocase"
    no_limit = None
    text_separator = "\1"  # a text holds no NUL
    fts5 = False
    search_words = words("meta_json")
    # The trigram indexes always cover every model: one "segment", whose merge moves
    # their GIN pending lists into the indexes.
    search_segments = "SELECT 1"
    search_merge = (
        "SELECT gin_clean_pending_list(c.oid) FROM pg_class c WHERE c.relkind = 'i' "
        "AND c.relname IN ('idx_models_name_trgm', 'idx_models_path_trgm', "
        "'idx_models_words_trgm', 'idx_tags_name_trgm')"
    )
    search_clear = None
    items = POSTGRES_ITEMS
    like = "ILIKE"

    def hint(self, index: str) -> str:
        return ""

    def not_indexed(self) -> str:
        return ""

    def text_like(self, column: str) -> str:
        # Unicode case, as SQLite's FTS5 folds it: the trigram indexes hold these folds.
        return f"{fold(column)} LIKE {fold('?::text')} ESCAPE '\\'"

    def nocase_order(self, column: str) -> str:
        return f"lower({column})"

    def sort(self, column: str, direction: str) -> str:
        nulls = "FIRST" if direction.upper() == "ASC" else "LAST"
        return f"{column} {direction} NULLS {nulls}"

    def group_concat(self, expr: str) -> str:
        return f"string_agg({expr}, chr(1))"

    def meta_path(self, key: str) -> Any:
        return key.split(".")

    def meta_value(self, column: str = "meta_json") -> str:
        return f"({column} #>> ?::text[])"

    def meta_at(self, column: str, key: str) -> str:
        return f"({column} #>> '{{{key.replace('.', ',')}}}')"

    def meta_array(self, count: int, column: str = "meta_json") -> str:
        return f"jsonb_build_array({', '.join([f'{column} #> ?::text[]'] * count)})::text"

    def meta_not_after(self, column: str = "meta_json") -> str:
        return f"COALESCE(({column} #> ?::text[]) > to_jsonb(?::bigint), FALSE) = FALSE"

    def meta_valid(self, column: str = "meta_json") -> str:
        return f"{column} IS NOT NULL"


POSTGRES = PostgresDialect()
