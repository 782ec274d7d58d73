"""A listing page's items as JSON on PostgreSQL: its parts of ``listing_items.items_sql``.

The same items as SQLite's (``listing_items``: the same fields and rules), built with
PostgreSQL's JSON functions. What a page row reads is small and stored apart from the
(often large, compressed, out of line) meta: its meta fields from ``models.item_meta``
(the array of ``ITEM_META_PATHS``, as SQLite's ``lm``: ``schema.ITEM_META_FUNCTION``) and
its tags' ids from ``models.tag_ids``, whose JSON the store adds from one query of the
page's tags (``ItemSql.tags_by_id``: a sub-select of the tags for each row cost 0.9 ms of
a 4 ms page). A page row finds its model row by ``ctid``, the address of the row version
the statement's own snapshot matched (no index lookup).
"""

from __future__ import annotations

from hikaze_mm.database.listing_items import ItemSql
from hikaze_mm.meta import MAX_PREFERRED_WEIGHT

_PREFERRED_WEIGHT = (
    "CASE WHEN jsonb_typeof(lm.lm -> 1) = 'number' THEN "
    "CASE WHEN (lm.lm ->> 1)::numeric "
    f"BETWEEN -{MAX_PREFERRED_WEIGHT} AND {MAX_PREFERRED_WEIGHT} "
    "THEN lm.lm -> 1 END END"
)
_CIVITAI_URL = "CASE WHEN jsonb_typeof(lm.lm -> 2) = 'string' THEN lm.lm ->> 2 END"
# ``str.casefold()`` of a tag is "nsfw": ASCII case, and U+017F (long s) folds into "s".
_NSFW = (
    "(COALESCE(lm.lm -> 3 = 'true'::jsonb, FALSE) OR lm.tags && ARRAY(SELECT t.id "
    "FROM tags t WHERE lower(replace(t.name, chr(383), 's')) = 'nsfw'))"
)
_UPDATE = (
    "CASE WHEN jsonb_typeof(lm.lm #> '{4,version_id}') = 'number' "
    "AND (lm.lm #>> '{4,version_id}') ~ '^-?[0-9]+$' THEN json_build_object("
    "'version_id', lm.lm #> '{4,version_id}', 'version_name', "
    "CASE WHEN jsonb_typeof(lm.lm #> '{4,version_name}') = 'string' "
    "THEN lm.lm #>> '{4,version_name}' END) END"
)

POSTGRES_ITEMS = ItemSql(
    row_id="ctid",
    join="JOIN models m ON m.ctid = p.rid",
    meta="m.item_meta",
    tags="m.tag_ids",
    head=(
        "json_build_object('sha256', lm.sha256, 'name', lm.name, 'type', lm.type, "
        "'base', lm.base, 'path', lm.path, 'size_bytes', lm.size_bytes, "
        "'created_at', lm.created_at, 'last_used_at', lm.last_used_at, "
        "'missing', lm.missing != 0, 'short_hash', substr(lm.sha256, 1, 10))::text"
    ),
    words="NULLIF(lm.lm -> 0, 'null'::jsonb)",  # an absent field is a JSON null here
    tail=(
        f"json_build_object('preferred_weight', {_PREFERRED_WEIGHT}, "
        f"'civitai_url', {_CIVITAI_URL}, 'nsfw', {_NSFW}, 'update', {_UPDATE})::text"
    ),
    tags_by_id=True,
)
