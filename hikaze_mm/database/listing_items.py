"""A listing page's items as JSON text, built by SQLite in the page's own statement.

``items_sql`` wraps the page of a ``ListingSql`` (the same filter, order, limit and
offset) so that each row comes back as the parts of one JSON object: the listing's
columns, ``short_hash`` and ``tags`` (``[{id, name, color}]`` by name); the raw
``meta.trigger_words``; then ``preferred_weight``, ``civitai_url``, ``nsfw`` and
``update``.
``item_json`` joins them, the trigger words cleaned in between (Python's rule, and in the
common case the stored text as it is: cleaning them in SQL cost 0.8 ms a page of 100).
The caller adds ``image_count`` and ``cover_image`` (the image store is not in the
database) before the closing brace.

The steps, so that no per-item work runs before the page is cut: ``page`` (the page's
rows, in order: a co-routine, since materializing it cost the sort its LIMIT, 0.3 ms on
1,000 matches), ``lm`` (materialized, so each is computed once: each page row's tags, and
its five meta fields read with one ``json_extract`` of its meta; a meta that is not valid
JSON has none), then the JSON of each row, ordered as the page. The rules are those of
``hikaze_mm.meta`` and ``ModelsService.detail``:

* ``trigger_words``: ``trigger_words_of`` (strings of a list, or one string, trimmed,
  empties and repeats dropped, order kept);
* ``preferred_weight``: a number (not a boolean) from -10 to 10, else null;
* ``civitai_url``: ``meta.civitai.url`` when it is a string, else null;
* ``nsfw``: ``meta.civitai.nsfw`` is ``true``, or a tag whose ``str.casefold()`` is
  ``nsfw`` (ASCII case, and U+017F long s, the one other letter that folds into it);
* ``update``: ``{version_id, version_name}`` of ``meta.update`` when its ``version_id`` is
  an integer (``version_name`` a string, else null), else null: the card's badge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hikaze_mm.meta import MAX_PREFERRED_WEIGHT, trigger_words_of

if TYPE_CHECKING:
    from hikaze_mm.database.listing import ListingSql

# The meta fields of an item, in ``lm``'s array: $[0] to $[4].
ITEM_META_PATHS = (
    "$.trigger_words",
    "$.preferred_weight",
    "$.civitai.url",
    "$.civitai.nsfw",
    "$.update",
)
# A listing row's columns (``ListingStore.page``), and with the name's sort key.
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
PAGE_COLUMNS = (*LIST_COLUMNS, "name_key")

# A JSON array of strings with no escape (SQLite escapes only quotes, backslashes and
# control characters), each non-empty with no whitespace (``str.isspace``, as ``\s`` is
# for ``re``, and as ``str.strip`` trims) at either end. Repeats are checked apart.
_WORD = r'"[^"\\\s](?:[^"\\]*[^"\\\s])?"'
_CLEAN_WORDS = re.compile(rf"\[(?:{_WORD}(?:,{_WORD})*)?\]")
# A page row's tags, ``[{id, name, color}]`` by name (their JSON text, computed once).
_TAGS = (
    "(SELECT json_group_array(json_object('id', id, 'name', name, 'color', color)) "
    "FROM (SELECT t.id, t.name, t.color FROM model_tags l JOIN tags t ON t.id = l.tag_id "
    "WHERE l.model_hash = m.sha256 ORDER BY t.name COLLATE NOCASE))"
)
# One page row's five meta fields as a JSON array (null when its meta is not valid JSON).
_META = (
    "CASE WHEN json_valid(m.meta_json) THEN json_extract(m.meta_json, "
    + ", ".join(f"'{path}'" for path in ITEM_META_PATHS)
    + ") END"
)
_PREFERRED_WEIGHT = (
    "CASE WHEN json_type(lm.lm, '$[1]') IN ('integer', 'real') AND "
    f"(lm.lm ->> '$[1]') BETWEEN -{MAX_PREFERRED_WEIGHT} AND {MAX_PREFERRED_WEIGHT} "
    "THEN lm.lm -> '$[1]' END"
)
_CIVITAI_URL = "CASE WHEN json_type(lm.lm, '$[2]') = 'text' THEN lm.lm ->> '$[2]' END"
# A tag named "nsfw" shows in the tags' JSON as the key and value "name":"nsfw" (a quote
# inside a JSON string is escaped, so the pattern cannot come from within a value;
# SQLite writes letters unescaped): lower() folds ASCII case, replace() the long s.
_NSFW = (
    "CASE WHEN json_type(lm.lm, '$[3]') = 'true' OR "
    "instr(lower(replace(lm.tags, char(383), 's')), '\"name\":\"nsfw\"') "
    "THEN json('true') ELSE json('false') END"
)
# ``meta.update`` as the card's badge needs it: its version's id and name, or null.
_UPDATE = (
    "CASE WHEN json_type(lm.lm, '$[4].version_id') = 'integer' THEN json_object("
    "'version_id', lm.lm -> '$[4].version_id', 'version_name', "
    "CASE WHEN json_type(lm.lm, '$[4].version_name') = 'text' "
    "THEN lm.lm ->> '$[4].version_name' END) END"
)
# An item's fields before ``tags``, and after ``trigger_words`` (``item_json`` joins them;
# ``json('true')``, a constant, is computed once a statement).
ITEM_HEAD = (
    "json_object('sha256', lm.sha256, 'name', lm.name, 'type', lm.type, 'base', lm.base, "
    "'path', lm.path, 'size_bytes', lm.size_bytes, 'created_at', lm.created_at, "
    "'last_used_at', lm.last_used_at, "
    "'missing', CASE WHEN lm.missing THEN json('true') ELSE json('false') END, "
    "'short_hash', substr(lm.sha256, 1, 10))"
)
ITEM_TAIL = (
    f"json_object('preferred_weight', {_PREFERRED_WEIGHT}, 'civitai_url', {_CIVITAI_URL}, "
    f"'nsfw', {_NSFW}, 'update', {_UPDATE})"
)


@dataclass(frozen=True)
class ItemSql:
    """A backend's parts of ``items_sql``: how a page row finds its model row (``row_id``,
    ``join``), its meta as ``lm`` (``meta``), its tags' JSON, and the item's JSON around
    them (``head``, ``words``: the raw trigger words, ``tail``); ``tags_by_id``: ``tags``
    is the row's tag ids, whose JSON the store adds (``item_tags``)."""

    row_id: str
    join: str
    meta: str
    tags: str
    head: str
    words: str
    tail: str
    tags_by_id: bool = False


SQLITE_ITEMS = ItemSql(
    row_id="rowid",
    join="CROSS JOIN models m ON m.rowid = p.rid",
    meta=_META,
    tags=_TAGS,
    head=ITEM_HEAD,
    words="lm.lm -> '$[0]'",
    tail=ITEM_TAIL,
)


def trigger_words_json(raw: str | None) -> str:
    """``meta.trigger_words`` (its JSON text as SQLite writes it, or None) as
    ``trigger_words_of`` cleans it, as JSON text: the text itself when it is clean already
    (distinct, trimmed, non-empty strings: the common case, told without parsing it)."""
    if raw is None:
        return "[]"
    if _CLEAN_WORDS.fullmatch(raw):
        words = raw[2:-2].split('","')  # no escapes, so each '","' parts two strings
        if len(set(words)) == len(words):
            return raw
    value = json.loads(raw)
    words = trigger_words_of(value)
    return raw if words == value else json.dumps(words, ensure_ascii=False)


def item_tags(ids: Iterable[int], tags: Mapping[int, tuple[str, str]]) -> str:
    """A row's tags as JSON text, by name as SQLite's ``NOCASE`` orders them, from
    ``TagStore.item_json_by_id`` (a tag deleted since the page was read is left out)."""
    return "[" + ",".join(text for _key, text in sorted(tags[i] for i in ids if i in tags)) + "]"


def item_json(head: str, tags: str, words: str | None, tail: str) -> str:
    """One item's JSON object from a row of ``items_sql`` (open: no closing brace, so the
    caller may add fields)."""
    return f'{head[:-1]},"tags":{tags},"trigger_words":{trigger_words_json(words)},{tail[1:-1]}'


def items_sql(sql: ListingSql, *, combined: bool, parts: ItemSql = SQLITE_ITEMS) -> str:
    """The page of ``sql`` as rows ``(total, sha256, head, tags, trigger words, tail)`` in
    the page's order (``item_json`` makes the item of the last four).

    ``combined``: the matches are materialized and counted in the same pass (as
    ``ListingSql.combined_sql``: ``total`` is their count); else ``total`` is null and
    the page is ``ListingSql.page_sql``'s. Either way the matches carry only their rowid
    and sort keys; a page row's columns are read after the page is cut, with its meta.
    Parameters: ``sql.page_args``. ``parts``: the backend's SQL (``ItemSql``).
    """
    rid = parts.row_id
    if combined:
        keys = ", ".join(dict.fromkeys(term.split()[0] for term in sql.order_by.split(", ")))
        page = (
            f"hits AS MATERIALIZED (SELECT m.{rid} AS rid, {keys} FROM models m "
            f"WHERE {sql.where}), "
            "page AS (SELECT (SELECT COUNT(*) FROM hits) AS total, rid FROM hits "
            f"ORDER BY {sql.order_by.replace('m.', '')} LIMIT ? OFFSET ?)"
        )
    else:
        page = (
            f"page AS (SELECT NULL AS total, m.{rid} AS rid FROM models m "
            f"WHERE {sql.where} ORDER BY {sql.order_by} LIMIT ? OFFSET ?)"
        )
    columns = ", ".join(f"m.{c}" for c in PAGE_COLUMNS)
    return (
        f"WITH {page}, lm AS MATERIALIZED (SELECT p.total, {columns}, {parts.meta} AS lm, "
        f"{parts.tags} AS tags FROM page p {parts.join}) "
        f"SELECT lm.total, lm.sha256, {parts.head}, lm.tags, {parts.words}, {parts.tail} "
        f"FROM lm ORDER BY {sql.order_by.replace('m.', 'lm.')}"
    )
