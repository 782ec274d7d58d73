"""Schema of the v3 library, as an ordered list of revisions.

``PRAGMA user_version`` records the last revision applied. A new database gets the
latest schema in one transaction (``statements_up_to``: every revision in order, so it is
exactly the schema an upgrade produces), so a process killed while creating it leaves an
empty file that the next start creates again. An existing one runs only the revisions it
lacks, each in one transaction, so an upgrade never loses data. Append new revisions;
never edit a released one.

Every revision is plain SQL in one style: statements end with ``;``, and
``split_statements`` cuts them where SQLite itself says a statement is complete, so a
trigger body or a string literal holding ``;`` stays whole.
"""

from __future__ import annotations

import sqlite3

REVISION_1 = """
CREATE TABLE models (
    sha256       TEXT PRIMARY KEY,
    path         TEXT NOT NULL,
    name         TEXT,
    type         TEXT,
    base         TEXT,
    size_bytes   INTEGER,
    created_at   INTEGER,
    last_used_at INTEGER,
    meta_json    TEXT
);
CREATE INDEX idx_models_path ON models(path);

CREATE TABLE tags (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    color      TEXT,
    created_at INTEGER
);

CREATE TABLE model_tags (
    model_hash TEXT NOT NULL REFERENCES models(sha256) ON DELETE CASCADE ON UPDATE CASCADE,
    tag_id     INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (model_hash, tag_id)
);
CREATE INDEX idx_model_tags_tag ON model_tags(tag_id);
"""

REVISION_2 = """
CREATE TABLE pending_import (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL UNIQUE,
    name       TEXT,
    type       TEXT,
    base       TEXT,
    size_bytes INTEGER,
    created_at INTEGER,
    meta_json  TEXT
);

CREATE TABLE pending_model_tags (
    model_id INTEGER NOT NULL REFERENCES pending_import(id) ON DELETE CASCADE,
    tag_id   INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (model_id, tag_id)
);
CREATE INDEX idx_pending_model_tags_tag ON pending_model_tags(tag_id);

CREATE TABLE migration_state (
    key        TEXT PRIMARY KEY,
    value_json TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"""

REVISION_3 = """
ALTER TABLE models ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;
CREATE INDEX idx_models_type ON models(type);
CREATE INDEX idx_models_base ON models(base);
CREATE INDEX idx_models_name ON models(name COLLATE NOCASE);
CREATE INDEX idx_models_created ON models(created_at);
CREATE INDEX idx_models_last_used ON models(last_used_at);
CREATE INDEX idx_models_size ON models(size_bytes);

ALTER TABLE pending_import ADD COLUMN sha256 TEXT;
ALTER TABLE pending_import ADD COLUMN status TEXT NOT NULL DEFAULT 'new'
    CHECK (status IN ('new', 'hashing', 'error', 'conflict'));
ALTER TABLE pending_import ADD COLUMN error TEXT;
ALTER TABLE pending_import ADD COLUMN source TEXT NOT NULL DEFAULT 'legacy';
ALTER TABLE pending_import ADD COLUMN updated_at INTEGER;
CREATE INDEX idx_pending_status ON pending_import(status);
CREATE INDEX idx_pending_sha ON pending_import(sha256);

CREATE TABLE hash_cache (
    path       TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    inode      INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    hashed_at  INTEGER NOT NULL
);
CREATE INDEX idx_hash_cache_sha ON hash_cache(sha256);
CREATE INDEX idx_hash_cache_size ON hash_cache(size_bytes);
"""

# Stage 1 (the legacy import): the ledger of what the one-time import has done, so a
# second run (or a run after a crash) neither duplicates nor resurrects anything.
# * legacy_import_models: each legacy model (by its path, unique in v2) and what it became.
#   A path recorded here is never imported again, even after Stage 2 promoted or the user
#   deleted what it became.
# * legacy_import_tags: each legacy tag name and the v3 tag it was mapped to.
# * legacy_import_images: the seq a legacy image (by the SHA-256 of the original file) took
#   for a model. ``done`` = 0 is a reservation made before the tier files are written; the
#   commit of the model sets it to 1. A re-run after a crash reuses the reserved seq.
REVISION_4 = """
CREATE TABLE legacy_import_models (
    path        TEXT PRIMARY KEY,
    legacy_id   INTEGER NOT NULL,
    sha256      TEXT,
    pending_id  INTEGER,
    imported_at INTEGER NOT NULL
);
CREATE INDEX idx_legacy_import_models_sha ON legacy_import_models(sha256);

CREATE TABLE legacy_import_tags (
    name   TEXT PRIMARY KEY COLLATE NOCASE,
    tag_id INTEGER NOT NULL
);

CREATE TABLE legacy_import_images (
    sha256     TEXT NOT NULL,
    source_sha TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    done       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sha256, source_sha)
);
"""

# The library listing: covering indexes so a filtered page of 50,000 models never
# reads the table rows (whose meta_json can span overflow pages). A required tag's models
# come from (tag_id, model_hash), which also serves every lookup by tag, so the plain
# tag_id index of revision 1 goes; each model is checked in idx_models_listing, which holds
# every column a listing filters on or returns.
REVISION_5 = """
CREATE INDEX idx_model_tags_tag_model ON model_tags(tag_id, model_hash);
DROP INDEX idx_model_tags_tag;
CREATE INDEX idx_models_listing ON models(
    sha256, missing, type, base, name, path, size_bytes, created_at, last_used_at
);
"""

# Use tracking: ComfyUI's loader nodes count each load (and stamp last_used_at).
REVISION_6 = """
ALTER TABLE models ADD COLUMN use_count INTEGER NOT NULL DEFAULT 0;
"""

# Search and a live library (issue 13).
# * model_search: a trigram full-text index (FTS5) of each model's name, path, tag names
#   and trigger words (``meta.trigger_words``, a string or a list of strings), so ``q``
#   finds any substring through the index instead of scanning every row. Its rowid is the
#   model's rowid; the triggers below keep it in step with models, model_tags and tag
#   renames (a tag deleted cascades to model_tags, whose triggers fire too). Tag names and
#   trigger words are joined with a newline; the tags start and end with one too, so a
#   tag is found whole as a line (a required tag narrows a text search in the index).
#   A library upgraded to this revision gets the table empty and the ``search_index``
#   state ``{"ready": false}``: a background job fills it after the library opens, and
#   searches use the LIKE scan until it is ready.
# * idx_models_path grows to (path, sha256, missing), so a scan checks that a cached file
#   is its model's file inside the index, and idx_models_missing (partial: only models
#   flagged missing) lists those models and makes the count of present models two cheap
#   counts.
REVISION_7 = """
CREATE VIRTUAL TABLE model_search USING fts5(
    sha256 UNINDEXED, name, path, tags, words, tokenize = 'trigram'
);
CREATE TRIGGER model_search_insert AFTER INSERT ON models BEGIN
    INSERT INTO model_search (rowid, sha256, name, path, tags, words) VALUES (
        new.rowid, new.sha256, new.name, new.path,
        (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = new.sha256),
        CASE WHEN json_valid(new.meta_json) THEN
            (SELECT group_concat(j.value, char(10))
                FROM json_each(new.meta_json, '$.trigger_words') j WHERE j.type = 'text')
        END
    );
END;
CREATE TRIGGER model_search_update AFTER UPDATE OF sha256, name, path, meta_json ON models
BEGIN
    DELETE FROM model_search WHERE rowid = old.rowid;
    INSERT INTO model_search (rowid, sha256, name, path, tags, words) VALUES (
        new.rowid, new.sha256, new.name, new.path,
        (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = new.sha256),
        CASE WHEN json_valid(new.meta_json) THEN
            (SELECT group_concat(j.value, char(10))
                FROM json_each(new.meta_json, '$.trigger_words') j WHERE j.type = 'text')
        END
    );
END;
CREATE TRIGGER model_search_delete AFTER DELETE ON models BEGIN
    DELETE FROM model_search WHERE rowid = old.rowid;
END;
CREATE TRIGGER model_search_tag_link AFTER INSERT ON model_tags BEGIN
    UPDATE model_search SET tags = (
        SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = new.model_hash
    ) WHERE rowid = (SELECT rowid FROM models WHERE sha256 = new.model_hash);
END;
CREATE TRIGGER model_search_tag_unlink AFTER DELETE ON model_tags BEGIN
    UPDATE model_search SET tags = (
        SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = old.model_hash
    ) WHERE rowid = (SELECT rowid FROM models WHERE sha256 = old.model_hash);
END;
CREATE TRIGGER model_search_tag_relink AFTER UPDATE ON model_tags BEGIN
    UPDATE model_search SET tags = (
        SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = model_search.sha256
    ) WHERE rowid IN (SELECT rowid FROM models WHERE sha256 IN (old.model_hash, new.model_hash));
END;
CREATE TRIGGER model_search_tag_rename AFTER UPDATE OF name ON tags BEGIN
    UPDATE model_search SET tags = (
        SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = model_search.sha256
    ) WHERE rowid IN (
        SELECT m.rowid FROM model_tags mt JOIN models m ON m.sha256 = mt.model_hash
        WHERE mt.tag_id = new.id
    );
END;
INSERT INTO migration_state (key, value_json, updated_at) VALUES (
    'search_index',
    CASE WHEN EXISTS (SELECT 1 FROM models) THEN '{"ready": false}' ELSE '{"ready": true}' END,
    0
) ON CONFLICT(key) DO NOTHING;

DROP INDEX idx_models_path;
CREATE INDEX idx_models_path ON models(path, sha256, missing);
CREATE INDEX idx_models_missing ON models(path, sha256) WHERE missing != 0;
"""

# Base models and duplicates (issue 12).
# * model_files: the other paths at which a model's content was found besides its primary
#   path (``models.path``), kept by scans, promotions and relinks. Readers take the union
#   with the primary path, so the table holds only the (few) extra copies and an
#   unchanged rescan checks nothing more.
# * probe_backfill: an upgraded library with models probes their headers once, in the
#   background (``{"done": false}`` until that job has run).
REVISION_8 = """
CREATE TABLE model_files (
    sha256     TEXT NOT NULL REFERENCES models(sha256) ON DELETE CASCADE ON UPDATE CASCADE,
    path       TEXT NOT NULL UNIQUE,
    size_bytes INTEGER,
    seen_at    INTEGER NOT NULL
);
CREATE INDEX idx_model_files_sha ON model_files(sha256);
INSERT INTO migration_state (key, value_json, updated_at) VALUES (
    'probe_backfill',
    CASE WHEN EXISTS (SELECT 1 FROM models) THEN '{"done": false}' ELSE '{"done": true}' END,
    0
) ON CONFLICT(key) DO NOTHING;
"""

# Sidecar files of other tools (issue 12): each sidecar read, by path, with the size and
# mtime it had (read again only when they change) and the model it was applied to; and a
# digest of the decoded pixels of each preview a model got from one, so a preview already
# among its images is not stored twice (and a rescan decodes nothing again).
REVISION_9 = """
CREATE TABLE sidecar_files (
    path       TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    sha256     TEXT,
    read_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE image_pixels (
    sha256 TEXT NOT NULL REFERENCES models(sha256) ON DELETE CASCADE ON UPDATE CASCADE,
    digest TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (sha256, digest)
) WITHOUT ROWID;
"""

# Natural name order, one naming rule, and tags found by id in the text index.
# * name_key: the name casefolded with each run of digits written as its length (two
#   digits) then the digits, so "_2" sorts before "_10"; the stores write it with the name
#   (``natural_key``, a function every connection of ours registers), and the name sort
#   (the key, then the hash) runs on its index without a sort step.
# * A name that is its file's own name with a model-file extension (how the legacy app
#   named models) loses the extension, as a scanned model's name never had one.
# * model_search gains tag_ids: each tag id between two char(1), so a required tag is one
#   exact term of the index whatever its name (names change; ids do not), and the tags
#   column still finds tag names by substring. The table is rebuilt (FTS5 cannot add a
#   column): the library opens at once and the background job fills it again.
REVISION_10 = """
DROP TRIGGER model_search_insert;
DROP TRIGGER model_search_update;
DROP TRIGGER model_search_delete;
DROP TRIGGER model_search_tag_link;
DROP TRIGGER model_search_tag_unlink;
DROP TRIGGER model_search_tag_relink;
DROP TRIGGER model_search_tag_rename;
DROP TABLE model_search;
UPDATE models SET name = substr(name, 1, length(name) - 12)
    WHERE lower(name) LIKE '%.safetensors' AND length(name) > 12
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
UPDATE models SET name = substr(name, 1, length(name) - 4)
    WHERE lower(name) LIKE '%.sft' AND length(name) > 4
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
UPDATE models SET name = substr(name, 1, length(name) - 5)
    WHERE lower(name) LIKE '%.ckpt' AND length(name) > 5
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
UPDATE models SET name = substr(name, 1, length(name) - 3)
    WHERE lower(name) LIKE '%.pt' AND length(name) > 3
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
UPDATE models SET name = substr(name, 1, length(name) - 4)
    WHERE lower(name) LIKE '%.pt2' AND length(name) > 4
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
UPDATE models SET name = substr(name, 1, length(name) - 4)
    WHERE lower(name) LIKE '%.pth' AND length(name) > 4
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
UPDATE models SET name = substr(name, 1, length(name) - 4)
    WHERE lower(name) LIKE '%.bin' AND length(name) > 4
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
UPDATE models SET name = substr(name, 1, length(name) - 5)
    WHERE lower(name) LIKE '%.gguf' AND length(name) > 5
    AND substr(path, -length(name) - 1) IN ('/' || name, char(92) || name);
ALTER TABLE models ADD COLUMN name_key TEXT;
UPDATE models SET name_key = natural_key(name);
DROP INDEX idx_models_name;
CREATE INDEX idx_models_name_key ON models(name_key, sha256);
CREATE VIRTUAL TABLE model_search USING fts5(
    sha256 UNINDEXED, name, path, tags, words, tag_ids, tokenize = 'trigram'
);
CREATE TRIGGER model_search_insert AFTER INSERT ON models BEGIN
    INSERT INTO model_search (rowid, sha256, name, path, tags, words, tag_ids) VALUES (
        new.rowid, new.sha256, new.name, new.path,
        (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = new.sha256),
        CASE WHEN json_valid(new.meta_json) THEN
            (SELECT group_concat(j.value, char(10))
                FROM json_each(new.meta_json, '$.trigger_words') j WHERE j.type = 'text')
        END,
        (SELECT group_concat(char(1) || mt.tag_id || char(1), '') FROM model_tags mt
            WHERE mt.model_hash = new.sha256)
    );
END;
CREATE TRIGGER model_search_update AFTER UPDATE OF sha256, name, path, meta_json ON models
BEGIN
    DELETE FROM model_search WHERE rowid = old.rowid;
    INSERT INTO model_search (rowid, sha256, name, path, tags, words, tag_ids) VALUES (
        new.rowid, new.sha256, new.name, new.path,
        (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = new.sha256),
        CASE WHEN json_valid(new.meta_json) THEN
            (SELECT group_concat(j.value, char(10))
                FROM json_each(new.meta_json, '$.trigger_words') j WHERE j.type = 'text')
        END,
        (SELECT group_concat(char(1) || mt.tag_id || char(1), '') FROM model_tags mt
            WHERE mt.model_hash = new.sha256)
    );
END;
CREATE TRIGGER model_search_delete AFTER DELETE ON models BEGIN
    DELETE FROM model_search WHERE rowid = old.rowid;
END;
CREATE TRIGGER model_search_tag_link AFTER INSERT ON model_tags BEGIN
    UPDATE model_search SET
        tags = (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = new.model_hash),
        tag_ids = (SELECT group_concat(char(1) || mt.tag_id || char(1), '') FROM model_tags mt
            WHERE mt.model_hash = new.model_hash)
    WHERE rowid = (SELECT rowid FROM models WHERE sha256 = new.model_hash);
END;
CREATE TRIGGER model_search_tag_unlink AFTER DELETE ON model_tags BEGIN
    UPDATE model_search SET
        tags = (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = old.model_hash),
        tag_ids = (SELECT group_concat(char(1) || mt.tag_id || char(1), '') FROM model_tags mt
            WHERE mt.model_hash = old.model_hash)
    WHERE rowid = (SELECT rowid FROM models WHERE sha256 = old.model_hash);
END;
CREATE TRIGGER model_search_tag_relink AFTER UPDATE ON model_tags BEGIN
    UPDATE model_search SET
        tags = (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = model_search.sha256),
        tag_ids = (SELECT group_concat(char(1) || mt.tag_id || char(1), '') FROM model_tags mt
            WHERE mt.model_hash = model_search.sha256)
    WHERE rowid IN (SELECT rowid FROM models WHERE sha256 IN (old.model_hash, new.model_hash));
END;
CREATE TRIGGER model_search_tag_rename AFTER UPDATE OF name ON tags BEGIN
    UPDATE model_search SET
        tags = (SELECT char(10) || group_concat(t.name, char(10)) || char(10) FROM model_tags mt
            JOIN tags t ON t.id = mt.tag_id WHERE mt.model_hash = model_search.sha256)
    WHERE rowid IN (
        SELECT m.rowid FROM model_tags mt JOIN models m ON m.sha256 = mt.model_hash
        WHERE mt.tag_id = new.id
    );
END;
INSERT INTO migration_state (key, value_json, updated_at) VALUES (
    'search_index',
    CASE WHEN EXISTS (SELECT 1 FROM models) THEN '{"ready": false}' ELSE '{"ready": true}' END,
    0
) ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json;
"""

# Revision 11 (images that carry their models):
# * generations: each image the HikazeSaveImage node saved: its file (relative to ComfyUI's
#   output folder, '/'-separated), when, and what the sampler did. ``seed`` is decimal
#   text, since ComfyUI's seeds reach 2**64 - 1 (past SQLite's integers); the rest of the
#   parameters (schedule type, format, ...) go in params_json.
# * generation_resources: the models an image used, by hash, with their role ("model",
#   "lora", "embedding"), name and weight; a model's rows go with it.
# * models.autov3 and hash_cache.autov3: the AutoV3 hash (the first 12 hex digits, upper
#   case, of the SHA-256 of a safetensors file's bytes after its header) of LoRAs and
#   embeddings, which images made elsewhere name them by.
REVISION_11 = """
CREATE TABLE generations (
    id              INTEGER PRIMARY KEY,
    file            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    prompt          TEXT,
    negative_prompt TEXT,
    seed            TEXT,
    steps           INTEGER,
    sampler         TEXT,
    cfg             REAL,
    width           INTEGER,
    height          INTEGER,
    params_json     TEXT
);
CREATE TABLE generation_resources (
    generation_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
    sha256        TEXT NOT NULL REFERENCES models(sha256) ON DELETE CASCADE ON UPDATE CASCADE,
    role          TEXT NOT NULL,
    name          TEXT,
    weight        REAL,
    PRIMARY KEY (generation_id, sha256, role)
);
CREATE INDEX idx_generation_resources_model ON generation_resources(sha256, generation_id);
ALTER TABLE models ADD COLUMN autov3 TEXT;
CREATE INDEX idx_models_autov3 ON models(autov3);
ALTER TABLE hash_cache ADD COLUMN autov3 TEXT;
"""

# Revision 12 (downloads): the download queue and its history. ``status`` is one of
# DOWNLOAD_STATUSES; ``part_path`` is the ``<final>.part`` file bytes stream into (kept
# across restarts, so a download resumes with a Range request); ``request_json`` is what
# was asked (source, type, folder, file_id, sha256), ``meta_json`` what the source resolved
# to (the Civitai block, template values). Tokens are never stored.
REVISION_12 = """
CREATE TABLE downloads (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    status          TEXT NOT NULL,
    type            TEXT,
    folder          TEXT,
    url             TEXT,
    file_name       TEXT,
    expected_sha256 TEXT,
    sha256          TEXT,
    path            TEXT,
    part_path       TEXT,
    bytes_done      INTEGER NOT NULL DEFAULT 0,
    bytes_total     INTEGER,
    error           TEXT,
    request_json    TEXT,
    meta_json       TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX idx_downloads_status ON downloads(status, id);
"""

# Revision 13 (a studio: several hosts share one catalog).
# * hash_cache and sidecar_files are kept per host (``host``; '' in a library of one
#   machine): inode and mtime differ between the clients of one share, and a cached path
#   below a named root is its location, the same on every host.
# * image_seqs: the next free number of each model's images, claimed in the catalog, so
#   two hosts writing one shared images folder never take the same file; image_orders:
#   the order a user chose for a model's images (in a shared catalog; a machine's own
#   library keeps it in order files).
# * pending_import.claimed_by and lease_until: the process hashing and promoting a pending
#   model (``PendingStore.claim``) and until when its claim holds without a heartbeat.
REVISION_13 = """
CREATE TABLE hash_cache_by_host (
    host       TEXT NOT NULL DEFAULT '',
    path       TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    inode      INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    hashed_at  INTEGER NOT NULL,
    autov3     TEXT,
    PRIMARY KEY (host, path)
);
INSERT INTO hash_cache_by_host (host, path, size_bytes, mtime_ns, inode, sha256, hashed_at,
    autov3)
    SELECT '', path, size_bytes, mtime_ns, inode, sha256, hashed_at, autov3 FROM hash_cache;
DROP TABLE hash_cache;
ALTER TABLE hash_cache_by_host RENAME TO hash_cache;
CREATE INDEX idx_hash_cache_sha ON hash_cache(sha256);
CREATE INDEX idx_hash_cache_size ON hash_cache(size_bytes);

CREATE TABLE sidecar_files_by_host (
    host       TEXT NOT NULL DEFAULT '',
    path       TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    sha256     TEXT,
    read_at    INTEGER NOT NULL,
    PRIMARY KEY (host, path)
) WITHOUT ROWID;
INSERT INTO sidecar_files_by_host (host, path, size_bytes, mtime_ns, sha256, read_at)
    SELECT '', path, size_bytes, mtime_ns, sha256, read_at FROM sidecar_files;
DROP TABLE sidecar_files;
ALTER TABLE sidecar_files_by_host RENAME TO sidecar_files;

CREATE TABLE image_seqs (
    sha256   TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE image_orders (
    sha256     TEXT PRIMARY KEY,
    seqs_json  TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE pending_import ADD COLUMN claimed_by TEXT;
ALTER TABLE pending_import ADD COLUMN lease_until INTEGER;
"""

REVISIONS: tuple[str, ...] = (
    REVISION_1,
    REVISION_2,
    REVISION_3,
    REVISION_4,
    REVISION_5,
    REVISION_6,
    REVISION_7,
    REVISION_8,
    REVISION_9,
    REVISION_10,
    REVISION_11,
    REVISION_12,
    REVISION_13,
)
LATEST_REVISION = len(REVISIONS)

PENDING_STATUSES = ("new", "hashing", "error", "conflict")
DOWNLOAD_STATUSES = ("queued", "running", "paused", "verifying", "done", "failed", "cancelled")
# The statuses of a download that is not over (the queue); the rest are its history.
DOWNLOAD_UNFINISHED = ("queued", "running", "paused", "verifying")


def statements_up_to(revision: int) -> list[str]:
    """Every statement of revisions 1 to ``revision``, in order (a new library's schema)."""
    return [s for script in REVISIONS[:revision] for s in split_statements(script)]


def split_statements(script: str) -> list[str]:
    """The complete statements of ``script``, in order (``sqlite3.complete_statement``)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a schema revision: {current.strip()!r}")
    return statements
