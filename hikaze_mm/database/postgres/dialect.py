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


# What a ``q`` of a trigram or more is matched in: the three folds (name, path, trigger
# words) joined by a line break, stored in ``models.search_fold``, whose trigrams
# ``idx_models_search`` holds (with the tag ids, ``schema``). A text with no line break
# matches the joined text exactly where it matches one of the three (the trigger words are
# joined by line breaks already, as SQLite's index holds them).
def search_text() -> str:
    """The expression of ``models.search_fold`` (a generated column may not read another)."""
    return (
        f"COALESCE({fold('name')}, '') || chr(10) || {fold('path')} || chr(10) || "
        f"COALESCE({fold(words('meta_json'))}, '')"
    )


# A bound LIKE pattern, folded once a statement (a sub-select: a prepared statement's
# generic plan would fold it again for each row it checks).
_PATTERN = f"(SELECT {fold('?::text')})"


def folded_like(folded: str) -> str:
    """``folded`` (a stored fold) holds a bound LIKE pattern in any
    case: compared in the fold's own collation, which its index holds."""
    return f"{folded} LIKE {_PATTERN} COLLATE \"default\" ESCAPE '\\'"


# The models' columns the search compares, and their stored folds (``schema``).
FOLDED = {
    **{
        f"{prefix}{column}": f"{prefix}{column}_fold"
        for column in ("name", "path")
        for prefix in ("", "m.")
    },
    "words_fold": "words_fold",
}


class PostgresDialect(Dialect):
    name = "postgresql"
    tag_key = "name_nocase"
    no_limit = None
    text_separator = "\1"  # a text holds no NUL
    fts5 = False
    # The trigram indexes always cover every model: one "segment", whose merge moves
    # their GIN pending lists into the indexes.
    search_segments = "SELECT 1"
    search_merge = (
        "SELECT gin_clean_pending_list(c.oid) FROM pg_class c WHERE c.relkind = 'i' "
        "AND c.relname IN ('idx_models_search', 'idx_tags_name_trgm')"
    )
    search_clear = None
    items = POSTGRES_ITEMS
    # ``model_tally`` (``schema.TALLY_FUNCTION``): a COUNT of 50,000 rows costs 2.5 ms.
    present_total = "SELECT COALESCE(SUM(models) - SUM(missing), 0), COUNT(*) FROM model_tally"
    tally_fold = (
        "WITH gone AS (DELETE FROM model_tally RETURNING models, missing) "
        "INSERT INTO model_tally SELECT COALESCE(SUM(models), 0), COALESCE(SUM(missing), 0) "
        "FROM gone"
    )
    like = "ILIKE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def hint(self, index: str) -> str:
        return ""

    def not_indexed(self) -> str:
        return ""

    def text_like(self, column: str) -> str:
        # Unicode case, as SQLite's FTS5 folds it: the models' folds are stored columns,
        # which the trigram indexes hold.
        if column in FOLDED:
            return folded_like(FOLDED[column])
        return f"{fold(column)} LIKE {_PATTERN} ESCAPE '\\'"

    def has_tag(self) -> str:
        return "m.tag_ids @> ARRAY[?::integer]"

    def text_search(self, text: str) -> tuple[str, int]:
        # A tag whose name holds the text: the ids the tags' trigram index finds, which
        # ``idx_models_search`` finds the models of.
        tagged = f"m.tag_ids && ARRAY(SELECT tq.id FROM tags tq WHERE {self.text_like('tq.name')})"
        if "\n" in text:  # each fold on its own, as SQLite's index matches them (a scan)
            arms = [self.text_like(c) for c in ("m.name", "m.path", "words_fold")]
            return "(" + " OR ".join([*arms, tagged]) + ")", 4
        return f"({folded_like('m.search_fold')} OR {tagged})", 2

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
