"""PostgreSQL's fragments of the shared stores' SQL (``database/dialect.py``)."""

from __future__ import annotations

from typing import Any

from hikaze_mm.database.dialect import Dialect
from hikaze_mm.database.postgres.listing_items import POSTGRES_ITEMS


class PostgresDialect(Dialect):
    name = "postgresql"
    tag_key = "name_nocase"
    no_limit = None
    text_separator = "\1"  # a text holds no NUL
    fts5 = False
    search_words = "m.search_words"
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
    for_update = " FOR UPDATE"

    def hint(self, index: str) -> str:
        return ""

    def not_indexed(self) -> str:
        return ""

    def nocase_order(self, column: str) -> str:
        return f"lower({column})"

    def group_concat(self, expr: str) -> str:
        return f"string_agg({expr}, chr(1))"

    def meta_path(self, key: str) -> Any:
        return key.split(".")

    def meta_value(self, column: str = "meta_json") -> str:
        return f"({column} #>> ?::text[])"

    def meta_array(self, count: int, column: str = "meta_json") -> str:
        return f"jsonb_build_array({', '.join([f'{column} #> ?::text[]'] * count)})::text"

    def meta_not_after(self, column: str = "meta_json") -> str:
        return f"COALESCE(({column} #> ?::text[]) > to_jsonb(?::bigint), FALSE) = FALSE"

    def meta_valid(self, column: str = "meta_json") -> str:
        return f"{column} IS NOT NULL"


POSTGRES = PostgresDialect()
