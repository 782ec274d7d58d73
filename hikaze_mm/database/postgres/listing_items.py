"""A listing page's items as JSON on PostgreSQL: its parts of ``listing_items.items_sql``.

The same items as SQLite's (``listing_items``: the same fields and rules), built with
PostgreSQL's JSON functions from a page row's ``jsonb`` meta; a model row is found by its
hash (there is no rowid).
"""

from __future__ import annotations

from hikaze_mm.database.listing_items import ItemSql
from hikaze_mm.meta import MAX_PREFERRED_WEIGHT

_TAGS = (
    "(SELECT COALESCE(json_agg(json_build_object('id', t.id, 'name', t.name, "
    "'color', t.color) ORDER BY lower(t.name)), '[]'::json) "
    "FROM model_tags l JOIN tags t ON t.id = l.tag_id WHERE l.model_hash = m.sha256)"
)
_PREFERRED_WEIGHT = (
    "CASE WHEN jsonb_typeof(lm.lm -> 'preferred_weight') = 'number' THEN "
    "CASE WHEN (lm.lm ->> 'preferred_weight')::numeric "
    f"BETWEEN -{MAX_PREFERRED_WEIGHT} AND {MAX_PREFERRED_WEIGHT} "
    "THEN lm.lm -> 'preferred_weight' END END"
)
_CIVITAI_URL = (
    "CASE WHEN jsonb_typeof(lm.lm #> '{civitai,url}') = 'string' THEN lm.lm #>> '{civitai,url}' END"
)
# ``str.casefold()`` of a tag is "nsfw": ASCII case, and U+017F (long s) folds into "s".
_NSFW = (
    "(COALESCE(lm.lm #> '{civitai,nsfw}' = 'true'::jsonb, FALSE) OR EXISTS (SELECT 1 "
    "FROM model_tags l JOIN tags t ON t.id = l.tag_id WHERE l.model_hash = lm.sha256 "
    "AND lower(replace(t.name, chr(383), 's')) = 'nsfw'))"
)
_UPDATE = (
    "CASE WHEN jsonb_typeof(lm.lm #> '{update,version_id}') = 'number' "
    "AND (lm.lm #>> '{update,version_id}') ~ '^-?[0-9]+$' THEN json_build_object("
    "'version_id', lm.lm #> '{update,version_id}', 'version_name', "
    "CASE WHEN jsonb_typeof(lm.lm #> '{update,version_name}') = 'string' "
    "THEN lm.lm #>> '{update,version_name}' END) END"
)

POSTGRES_ITEMS = ItemSql(
    row_id="sha256",
    join="JOIN models m ON m.sha256 = p.rid",
    meta="m.meta_json",
    tags=_TAGS,
    head=(
        "json_build_object('sha256', lm.sha256, 'name', lm.name, 'type', lm.type, "
        "'base', lm.base, 'path', lm.path, 'size_bytes', lm.size_bytes, "
        "'created_at', lm.created_at, 'last_used_at', lm.last_used_at, "
        "'missing', lm.missing != 0, 'short_hash', substr(lm.sha256, 1, 10))::text"
    ),
    words="lm.lm -> 'trigger_words'",
    tail=(
        f"json_build_object('preferred_weight', {_PREFERRED_WEIGHT}, "
        f"'civitai_url', {_CIVITAI_URL}, 'nsfw', {_NSFW}, 'update', {_UPDATE})::text"
    ),
)
