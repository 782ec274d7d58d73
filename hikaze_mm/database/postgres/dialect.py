"""PostgreSQL's fragments of the shared stores' SQL (``database/dialect.py``)."""

from __future__ import annotations

from typing import Any

from hikaze_mm.database.dialect import Dialect


class PostgresDialect(Dialect):
    name = "postgresql"
    tag_key = "name_nocase"
    no_limit = None
    text_separator = "\1"  # a text holds no NUL
    fts5 = False

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
