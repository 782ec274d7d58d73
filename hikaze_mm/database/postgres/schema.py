"""The library's schema on PostgreSQL, built at head, and its revision table.

``SCHEMA`` creates, in one transaction, the tables and indexes of SQLite's head revision
(``LATEST_REVISION``), with PostgreSQL's equivalents of what is SQLite's own:

* every text column ``COLLATE "C"`` (byte order, as SQLite's BINARY: path prefixes stay
  byte ranges, and ``lower`` folds ASCII only);
* ``tags.name_nocase``, the name folded to ASCII lower case (stored, unique): SQLite's
  ``NOCASE``;
* ``meta_json`` as ``jsonb`` (read back as its JSON text);
* ``generation_resources.rowid``: the order resources were recorded in;
* the text search (SQLite's FTS5 trigram table ``model_search`` and its triggers): the
  name, the path and the trigger words folded to lower case by Unicode's rules
  (``dialect.fold``: ICU's root collation, whatever the database's locale), stored in
  ``name_fold``, ``path_fold`` and ``words_fold``, and joined by line breaks in
  ``search_fold`` (``dialect.search_text``), so that a search never folds a row or reads
  a whole meta again; and ``tag_ids``, the ids of a model's tags, kept by the triggers of
  ``model_tags`` (``TAG_IDS_FUNCTION``). One ``pg_trgm`` GIN index, ``idx_models_search``,
  holds the tag ids and the trigrams of ``search_fold``, so a listing with a tag and a
  text finds its few rows in one index scan; another holds the tag names'. Both always
  cover every model;
* ``item_meta``: the meta fields a listing card shows (``ITEM_META_FUNCTION``), stored
  apart from the whole meta, which is often large enough to be compressed out of line;
* 0/1 flags stay integers, so records are the same on both backends.

``schema_revision`` holds the catalog's revision, ``PG_REVISION`` at head: PostgreSQL's own
sequence (12 was the first, SQLite's head then), since a change may concern one backend
only. ``UPGRADES`` maps a revision to the statements that bring the catalog from the one
before to it: a new SQLite revision needs one here too (``SQLITE_HEAD_AT`` records which
PostgreSQL revision holds SQLite's head).
"""

from __future__ import annotations

from hikaze_mm.database.changes import CHANNEL, MAX_KEYS, TRACKED
from hikaze_mm.database.postgres.dialect import fold, search_text, words

PG_REVISION = 14
# The PostgreSQL revision that holds SQLite's head revision (``LATEST_REVISION``): a test
# checks that a new SQLite revision moves it.
SQLITE_HEAD_AT = {12: 12, 13: 14}
# pg_advisory_xact_lock's key for creating and upgrading the schema ("hikazemm" in hex-ish).
SCHEMA_LOCK_KEY = 0x68696B617A656D6D

_TEXT = 'text COLLATE "C"'
# The next free number of each model's images, and their chosen orders (``ImageSeqStore``).
IMAGE_SEQS = f"""CREATE TABLE image_seqs (
    sha256 {_TEXT} PRIMARY KEY,
    next_seq integer NOT NULL
)"""
IMAGE_ORDERS = f"""CREATE TABLE image_orders (
    sha256 {_TEXT} PRIMARY KEY,
    seqs_json text NOT NULL,
    updated_at bigint NOT NULL
)"""
# The text of a meta's trigger words that the search matches (``dialect.words``).
WORDS_FUNCTION = """CREATE FUNCTION hikaze_trigger_words(meta jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(meta -> 'trigger_words')
        WHEN 'string' THEN meta ->> 'trigger_words'
        WHEN 'array' THEN (
            SELECT string_agg(w #>> '{}', chr(10) ORDER BY n)
            FROM jsonb_array_elements(meta -> 'trigger_words') WITH ORDINALITY AS e (w, n)
            WHERE jsonb_typeof(w) = 'string'
        )
    END
$$"""
# A listing card's meta fields (``listing_items.ITEM_META_PATHS``: trigger words, preferred
# weight, Civitai URL and NSFW flag, update), stored in ``models.item_meta`` as an array
# (null when none is set), so a page reads them without fetching a large meta again.
ITEM_META_FUNCTION = """CREATE FUNCTION hikaze_item_meta(meta jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NULLIF(jsonb_build_array(meta -> 'trigger_words', meta -> 'preferred_weight',
        meta #> '{civitai,url}', meta #> '{civitai,nsfw}', meta -> 'update'),
        '[null, null, null, null, null]'::jsonb)
$$"""
# ``models.tag_ids`` follows ``model_tags``: a row changes its own model's array in place
# (an UPDATE of that one row, so concurrent links of one model never lose each other's),
# and only when the array changes (a cascade from a deleted or renamed model finds
# nothing to do).
TAG_IDS_FUNCTION = """CREATE FUNCTION hikaze_model_tag_ids() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE models SET tag_ids = array_remove(tag_ids, OLD.tag_id)
        WHERE sha256 = OLD.model_hash AND tag_ids @> ARRAY[OLD.tag_id];
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE models SET tag_ids = tag_ids || NEW.tag_id
        WHERE sha256 = NEW.model_hash AND NOT tag_ids @> ARRAY[NEW.tag_id];
    END IF;
    RETURN NULL;
END
$$"""

# ``model_tally`` holds the models and those flagged missing as rows of changes, one a
# statement that changes them (its transition tables counted): adding rows takes no lock
# another writer waits on, and the sums are exact in any snapshot. ``dialect.tally_fold``
# folds the rows into one (the listing does when it reads more than ``TALLY_ROWS``).
TALLY_FUNCTION = """CREATE FUNCTION hikaze_model_tally() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    d_models bigint := 0;
    d_missing bigint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*), count(*) FILTER (WHERE missing != 0) INTO d_models, d_missing
        FROM tally_new;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT -count(*), -count(*) FILTER (WHERE missing != 0) INTO d_models, d_missing
        FROM tally_old;
    ELSE
        SELECT (SELECT count(*) FROM tally_new WHERE missing != 0)
            - (SELECT count(*) FROM tally_old WHERE missing != 0) INTO d_missing;
    END IF;
    IF d_models != 0 OR d_missing != 0 THEN
        INSERT INTO model_tally (models, missing) VALUES (d_models, d_missing);
    END IF;
    RETURN NULL;
END
$$"""
TALLY: tuple[str, ...] = (
    "CREATE TABLE model_tally (models bigint NOT NULL, missing bigint NOT NULL)",
    TALLY_FUNCTION,
    "CREATE TRIGGER models_tally_insert AFTER INSERT ON models REFERENCING NEW TABLE AS "
    "tally_new FOR EACH STATEMENT EXECUTE FUNCTION hikaze_model_tally()",
    "CREATE TRIGGER models_tally_delete AFTER DELETE ON models REFERENCING OLD TABLE AS "
    "tally_old FOR EACH STATEMENT EXECUTE FUNCTION hikaze_model_tally()",
    "CREATE TRIGGER models_tally_update AFTER UPDATE ON models REFERENCING OLD TABLE AS "
    "tally_old NEW TABLE AS tally_new FOR EACH STATEMENT EXECUTE FUNCTION hikaze_model_tally()",
    # The models already there (the triggers' lock on ``models`` holds writers off until
    # this transaction commits, so none is counted twice or missed).
    "INSERT INTO model_tally (models, missing) "
    "SELECT count(*), count(*) FILTER (WHERE missing != 0) FROM models",
)
# Every statement that changes a tracked table (``changes.TRACKED``; ``model_tags`` shows
# in ``models.tag_ids``) sends its keys (TG_ARGV: the kind, the key column) on the changes'
# channel, or none past ``MAX_KEYS`` (bulk), with the host its session named
# (``hikaze.host``). NOTIFY sends at COMMIT, and nothing of a rolled-back transaction.
CHANGES_FUNCTION = f"""CREATE FUNCTION hikaze_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    keys text[];
    source text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT %1$I::text AS k FROM changed_new'
        WHEN 'DELETE' THEN 'SELECT %1$I::text AS k FROM changed_old'
        ELSE 'SELECT %1$I::text AS k FROM changed_new UNION SELECT %1$I::text FROM changed_old'
    END;
BEGIN
    EXECUTE format('SELECT array_agg(k) FROM (SELECT DISTINCT k FROM (' || source
        || ') c LIMIT {MAX_KEYS + 1}) d', TG_ARGV[1]) INTO keys;
    IF keys IS NOT NULL THEN
        PERFORM pg_notify('{CHANNEL}', json_build_object('kind', TG_ARGV[0],
            'keys', CASE WHEN cardinality(keys) > {MAX_KEYS} THEN NULL ELSE keys END,
            'bulk', cardinality(keys) > {MAX_KEYS},
            'host', current_setting('hikaze.host', true))::text);
    END IF;
    RETURN NULL;
END
$$"""


# Who holds a catalog-wide hold (``PostgresLibrary.hold``): the advisory lock is the hold,
# this row only says which host took it last, for the message of one refused.
HOLDS = f"""CREATE TABLE catalog_holds (
    name {_TEXT} PRIMARY KEY,
    host {_TEXT} NOT NULL,
    since bigint NOT NULL
)"""


# The hosts of the catalog: each process that writes says it is there when it opens it
# (``PostgresLibrary.see_host``).
HOSTS = f"""CREATE TABLE hosts (
    name {_TEXT} PRIMARY KEY,
    release {_TEXT} NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL
)"""


def _change_triggers() -> tuple[str, ...]:
    statements = []
    for table, (kind, column) in TRACKED.items():
        if table == "model_tags":
            continue  # its triggers change ``models.tag_ids``, which is sent
        for op, tables in (
            ("INSERT", "NEW TABLE AS changed_new"),
            ("UPDATE", "OLD TABLE AS changed_old NEW TABLE AS changed_new"),
            ("DELETE", "OLD TABLE AS changed_old"),
        ):
            statements.append(
                f"CREATE TRIGGER {table}_changed_{op.lower()} AFTER {op} ON {table} "
                f"REFERENCING {tables} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION hikaze_changed('{kind}', '{column}')"
            )
    return tuple(statements)


SEARCH_INDEX = (
    "CREATE INDEX idx_models_search ON models USING gin (tag_ids, search_fold gin_trgm_ops)"
)

SCHEMA: tuple[str, ...] = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    WORDS_FUNCTION,
    ITEM_META_FUNCTION,
    f"""CREATE TABLE models (
        sha256 {_TEXT} PRIMARY KEY,
        path {_TEXT} NOT NULL,
        name {_TEXT},
        type {_TEXT},
        base {_TEXT},
        size_bytes bigint,
        created_at bigint,
        last_used_at bigint,
        meta_json jsonb,
        missing integer NOT NULL DEFAULT 0,
        use_count integer NOT NULL DEFAULT 0,
        name_key {_TEXT},
        autov3 {_TEXT},
        name_fold text GENERATED ALWAYS AS ({fold("name")}) STORED,
        path_fold text GENERATED ALWAYS AS ({fold("path")}) STORED,
        words_fold text GENERATED ALWAYS AS ({fold(words("meta_json"))}) STORED,
        tag_ids integer[] NOT NULL DEFAULT '{{}}',
        item_meta jsonb GENERATED ALWAYS AS (hikaze_item_meta(meta_json)) STORED,
        search_fold text GENERATED ALWAYS AS ({search_text()}) STORED
    )""",
    "CREATE INDEX idx_models_path ON models (path, sha256, missing)",
    "CREATE INDEX idx_models_missing ON models (path, sha256) WHERE missing != 0",
    "CREATE INDEX idx_models_type ON models (type)",
    "CREATE INDEX idx_models_base ON models (base)",
    # The sort keys' indexes put NULL first, as SQLite orders it (``dialect.sort``).
    "CREATE INDEX idx_models_created ON models (created_at NULLS FIRST, sha256)",
    "CREATE INDEX idx_models_last_used ON models (last_used_at NULLS FIRST, sha256)",
    "CREATE INDEX idx_models_size ON models (size_bytes NULLS FIRST, sha256)",
    "CREATE INDEX idx_models_name_key ON models (name_key NULLS FIRST, sha256)",
    "CREATE INDEX idx_models_autov3 ON models (autov3)",
    SEARCH_INDEX,
    *TALLY,
    f"""CREATE TABLE tags (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name {_TEXT} NOT NULL,
        color {_TEXT},
        created_at bigint,
        name_nocase {_TEXT} GENERATED ALWAYS AS (lower(name)) STORED UNIQUE
    )""",
    f"CREATE INDEX idx_tags_name_trgm ON tags USING gin ({fold('name')} gin_trgm_ops)",
    f"""CREATE TABLE model_tags (
        model_hash {_TEXT} NOT NULL
            REFERENCES models (sha256) ON DELETE CASCADE ON UPDATE CASCADE,
        tag_id integer NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
        PRIMARY KEY (model_hash, tag_id)
    )""",
    "CREATE INDEX idx_model_tags_tag_model ON model_tags (tag_id, model_hash)",
    TAG_IDS_FUNCTION,
    "CREATE TRIGGER model_tags_tag_ids AFTER INSERT OR UPDATE OR DELETE ON model_tags "
    "FOR EACH ROW EXECUTE FUNCTION hikaze_model_tag_ids()",
    f"""CREATE TABLE pending_import (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        path {_TEXT} NOT NULL UNIQUE,
        name {_TEXT},
        type {_TEXT},
        base {_TEXT},
        size_bytes bigint,
        created_at bigint,
        meta_json jsonb,
        sha256 {_TEXT},
        status {_TEXT} NOT NULL DEFAULT 'new'
            CHECK (status IN ('new', 'hashing', 'error', 'conflict')),
        error {_TEXT},
        source {_TEXT} NOT NULL DEFAULT 'legacy',
        updated_at bigint,
        claimed_by {_TEXT},
        lease_until bigint
    )""",
    "CREATE INDEX idx_pending_status ON pending_import (status)",
    "CREATE INDEX idx_pending_sha ON pending_import (sha256)",
    """CREATE TABLE pending_model_tags (
        model_id integer NOT NULL REFERENCES pending_import (id) ON DELETE CASCADE,
        tag_id integer NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
        PRIMARY KEY (model_id, tag_id)
    )""",
    "CREATE INDEX idx_pending_model_tags_tag ON pending_model_tags (tag_id)",
    f"""CREATE TABLE migration_state (
        key {_TEXT} PRIMARY KEY,
        value_json text NOT NULL,
        updated_at bigint NOT NULL
    )""",
    f"""CREATE TABLE hash_cache (
        host {_TEXT} NOT NULL DEFAULT '',
        path {_TEXT} NOT NULL,
        size_bytes bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        inode bigint NOT NULL,
        sha256 {_TEXT} NOT NULL,
        hashed_at bigint NOT NULL,
        autov3 {_TEXT},
        PRIMARY KEY (host, path)
    )""",
    "CREATE INDEX idx_hash_cache_sha ON hash_cache (sha256)",
    "CREATE INDEX idx_hash_cache_size ON hash_cache (size_bytes)",
    f"""CREATE TABLE legacy_import_models (
        path {_TEXT} PRIMARY KEY,
        legacy_id integer NOT NULL,
        sha256 {_TEXT},
        pending_id integer,
        imported_at bigint NOT NULL
    )""",
    "CREATE INDEX idx_legacy_import_models_sha ON legacy_import_models (sha256)",
    f"""CREATE TABLE legacy_import_tags (
        name {_TEXT} PRIMARY KEY,
        tag_id integer NOT NULL
    )""",
    f"""CREATE TABLE legacy_import_images (
        sha256 {_TEXT} NOT NULL,
        source_sha {_TEXT} NOT NULL,
        seq integer NOT NULL,
        done integer NOT NULL DEFAULT 0,
        PRIMARY KEY (sha256, source_sha)
    )""",
    f"""CREATE TABLE model_files (
        sha256 {_TEXT} NOT NULL
            REFERENCES models (sha256) ON DELETE CASCADE ON UPDATE CASCADE,
        path {_TEXT} NOT NULL UNIQUE,
        size_bytes bigint,
        seen_at bigint NOT NULL
    )""",
    "CREATE INDEX idx_model_files_sha ON model_files (sha256)",
    f"""CREATE TABLE sidecar_files (
        host {_TEXT} NOT NULL DEFAULT '',
        path {_TEXT} NOT NULL,
        size_bytes bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        sha256 {_TEXT},
        read_at bigint NOT NULL,
        PRIMARY KEY (host, path)
    )""",
    IMAGE_SEQS,
    IMAGE_ORDERS,
    f"""CREATE TABLE image_pixels (
        sha256 {_TEXT} NOT NULL
            REFERENCES models (sha256) ON DELETE CASCADE ON UPDATE CASCADE,
        digest {_TEXT} NOT NULL,
        seq integer NOT NULL,
        PRIMARY KEY (sha256, digest)
    )""",
    f"""CREATE TABLE generations (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        file {_TEXT} NOT NULL,
        created_at bigint NOT NULL,
        prompt {_TEXT},
        negative_prompt {_TEXT},
        seed {_TEXT},
        steps integer,
        sampler {_TEXT},
        cfg double precision,
        width integer,
        height integer,
        params_json text
    )""",
    f"""CREATE TABLE generation_resources (
        rowid bigint GENERATED ALWAYS AS IDENTITY,
        generation_id integer NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
        sha256 {_TEXT} NOT NULL
            REFERENCES models (sha256) ON DELETE CASCADE ON UPDATE CASCADE,
        role {_TEXT} NOT NULL,
        name {_TEXT},
        weight double precision,
        PRIMARY KEY (generation_id, sha256, role)
    )""",
    "CREATE INDEX idx_generation_resources_model ON generation_resources (sha256, generation_id)",
    f"""CREATE TABLE downloads (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        source {_TEXT} NOT NULL,
        status {_TEXT} NOT NULL,
        type {_TEXT},
        folder {_TEXT},
        url {_TEXT},
        file_name {_TEXT},
        expected_sha256 {_TEXT},
        sha256 {_TEXT},
        path {_TEXT},
        part_path {_TEXT},
        bytes_done bigint NOT NULL DEFAULT 0,
        bytes_total bigint,
        error {_TEXT},
        request_json text,
        meta_json text,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
    )""",
    "CREATE INDEX idx_downloads_status ON downloads (status, id)",
    CHANGES_FUNCTION,
    *_change_triggers(),
    HOLDS,
    HOSTS,
    """INSERT INTO migration_state (key, value_json, updated_at) VALUES
        ('search_index', '{"ready": true}', 0), ('probe_backfill', '{"done": true}', 0)""",
    "CREATE TABLE schema_revision (revision integer NOT NULL)",
    f"INSERT INTO schema_revision (revision) VALUES ({PG_REVISION})",
)

# revision -> the statements that bring a catalog at the revision before to it.
UPGRADES: dict[int, tuple[str, ...]] = {
    # The search's joined folds stored once (``search_fold``) rather than joined again for
    # each row a search checks (0.45 ms of a 4 ms page with a tag and a text, 50,000 models),
    # the tally of the models (``TALLY``), which an unfiltered listing's total reads, and
    # the change events (``CHANGES_FUNCTION``), who holds a hold (``HOLDS``) and the
    # catalog's hosts (``HOSTS``).
    13: (
        "DROP INDEX idx_models_search",
        f"ALTER TABLE models ADD COLUMN search_fold text GENERATED ALWAYS AS ({search_text()}) "
        "STORED",
        SEARCH_INDEX,
        *TALLY,
        CHANGES_FUNCTION,
        *_change_triggers(),
        HOLDS,
        HOSTS,
    ),
    # A studio (as SQLite's revision 13): the hash and sidecar caches per host, and the
    # image numbers claimed in the catalog (``IMAGE_SEQS``).
    14: (
        "ALTER TABLE hash_cache ADD COLUMN host text COLLATE \"C\" NOT NULL DEFAULT ''",
        "ALTER TABLE hash_cache DROP CONSTRAINT hash_cache_pkey",
        "ALTER TABLE hash_cache ADD PRIMARY KEY (host, path)",
        "ALTER TABLE sidecar_files ADD COLUMN host text COLLATE \"C\" NOT NULL DEFAULT ''",
        "ALTER TABLE sidecar_files DROP CONSTRAINT sidecar_files_pkey",
        "ALTER TABLE sidecar_files ADD PRIMARY KEY (host, path)",
        # The rows of before are the host that used the catalog last (before a studio,
        # its only one), so it reads none of its files again.
        *(
            f"UPDATE {cache} SET host = h.name FROM (SELECT name FROM hosts "
            f"ORDER BY last_seen DESC LIMIT 1) h WHERE {cache}.host = ''"
            for cache in ("hash_cache", "sidecar_files")
        ),
        IMAGE_SEQS,
        IMAGE_ORDERS,
        f"ALTER TABLE pending_import ADD COLUMN claimed_by {_TEXT}",
        "ALTER TABLE pending_import ADD COLUMN lease_until bigint",
    ),
}

# The tables whose ids a caller may give (the legacy import keeps old ids, a catalog copy
# keeps every id): after such an
# insert, their identity restarts above the largest id.
EXPLICIT_ID_TABLES = ("tags", "pending_import", "generations", "downloads")
