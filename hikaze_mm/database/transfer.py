"""Copying a whole library from one backend to another (``catalog push`` and ``pull``).

``copy_library(source, target)`` copies every table of the library, row by row as it is
(ids, hashes, times, the order of each generation's resources), into an empty ``target``
in one transaction, in an order the references allow, and returns how many rows each
table got. What is not a table row stays behind: the text index (SQLite's is kept by its
triggers as the rows arrive; PostgreSQL's indexes need nothing), and the images, files in
the data folder.
"""

from __future__ import annotations

import json
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.tags import nocase

# (table, columns, order) in an order the foreign keys allow.
TABLES: tuple[tuple[str, str, str], ...] = (
    (
        "models",
        "sha256, path, name, type, base, size_bytes, created_at, last_used_at, meta_json, "
        "missing, use_count, name_key, autov3",
        "sha256",
    ),
    ("tags", "id, name, color, created_at", "id"),
    ("model_tags", "model_hash, tag_id", "model_hash, tag_id"),
    (
        "pending_import",
        "id, path, name, type, base, size_bytes, created_at, meta_json, sha256, status, error, "
        "source, updated_at",
        "id",
    ),
    ("pending_model_tags", "model_id, tag_id", "model_id, tag_id"),
    ("migration_state", "key, value_json, updated_at", "key"),
    ("hash_cache", "path, size_bytes, mtime_ns, inode, sha256, hashed_at, autov3", "path"),
    ("legacy_import_models", "path, legacy_id, sha256, pending_id, imported_at", "path"),
    ("legacy_import_tags", "name, tag_id", "name"),
    ("legacy_import_images", "sha256, source_sha, seq, done", "sha256, source_sha"),
    ("model_files", "sha256, path, size_bytes, seen_at", "path"),
    ("sidecar_files", "path, size_bytes, mtime_ns, sha256, read_at", "path"),
    ("image_pixels", "sha256, digest, seq", "sha256, digest"),
    (
        "generations",
        "id, file, created_at, prompt, negative_prompt, seed, steps, sampler, cfg, width, "
        "height, params_json",
        "id",
    ),
    ("generation_resources", "generation_id, sha256, role, name, weight", "rowid"),
    (
        "downloads",
        "id, source, status, type, folder, url, file_name, expected_sha256, sha256, path, "
        "part_path, bytes_done, bytes_total, error, request_json, meta_json, created_at, "
        "updated_at",
        "id",
    ),
)
# Tables whose ids the copy gives: the target's next id must come after them.
GIVEN_IDS = ("tags", "pending_import", "generations", "downloads")
# Rows a new library holds already (its schema writes them): the copy's replace them.
_UPSERT = {"migration_state": "key"}


def is_empty(library: Library) -> bool:
    """Whether ``library`` holds no model, tag, pending model or download."""
    return all(
        library.tuples(f"SELECT COUNT(*) FROM {table}")[0][0] == 0  # type: ignore[attr-defined]
        for table in ("models", "tags", "pending_import", "downloads", "generations")
    )


def _clean(table: str, row: tuple[Any, ...], columns: list[str]) -> tuple[Any, ...]:
    """A row as the target takes it: a meta that is not JSON (SQLite holds any text) as
    none; a ledger tag name by its folded key (what the ledger looks names up by)."""
    values = list(row)
    if "meta_json" in columns and table != "downloads":
        i = columns.index("meta_json")
        try:
            json.loads(values[i]) if values[i] is not None else None
        except ValueError:
            values[i] = None
    if table == "legacy_import_tags":
        values[0] = nocase(values[0])
    return tuple(values)


def copy_library(source: Library, target: Library) -> dict[str, int]:
    """Copy every row of ``source`` into ``target`` (empty; see the module's docstring);
    ``{table: rows}``. The source is read in one snapshot, so a process writing it
    meanwhile (a server) changes nothing the copy sees."""
    reader = source.conn  # type: ignore[attr-defined]
    reader.execute(source.dialect.snapshot)  # type: ignore[attr-defined]
    try:
        return _copy_tables(source, target)
    finally:
        reader.execute("ROLLBACK")


def _copy_tables(source: Library, target: Library) -> dict[str, int]:
    counts: dict[str, int] = {}
    with target.transaction() as conn:
        for table, column_list, order in TABLES:
            columns = [c.strip() for c in column_list.split(",")]
            rows = source.tuples(  # type: ignore[attr-defined]
                f"SELECT {column_list} FROM {table} ORDER BY {order}"
            )
            insert = f"INSERT INTO {table} ({column_list}) VALUES ({', '.join('?' * len(columns))})"
            if table in _UPSERT:
                updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
                insert += f" ON CONFLICT ({_UPSERT[table]}) DO UPDATE SET {updates}"
            conn.executemany(insert, [_clean(table, row, columns) for row in rows])
            counts[table] = len(rows)
        for table in GIVEN_IDS:
            target.after_explicit_ids(table)  # type: ignore[attr-defined]
    return counts
