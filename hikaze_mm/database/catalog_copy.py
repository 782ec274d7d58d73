"""Copy a whole library into another, whatever their backends (``catalog push`` / ``pull``).

``copy_library(source, target, merge=...)`` copies every table the library keeps, in an
order that satisfies their references, inside one unit of work on the target (a failed
copy leaves it as it was) and one on the source (a consistent snapshot):

* **Into an empty library** every row keeps its values, ids included; the target's
  identities are then restarted above them (``after_explicit_ids``).
* **With ``merge``** the target's rows stay and the source's are added to them:
  - a tag of a name the target has (in any case) is that tag; another is created;
  - a model the target has is combined by the promotion's merge rule (``models.upsert``
    with ``on_conflict="merge"``: the target's values win, its empty fields are filled,
    meta merged), its use counts added up and its last use the later of the two;
  - pending models, generations and downloads get new ids (their links follow them);
    a pending model whose path the target has already is left out;
  - every other row is added unless the target has one with its key (``ON CONFLICT DO
    NOTHING``): file copies, caches, the legacy ledger, the library's state.

Paths of model files go from the source's form to the target's: below a root the
configuration names they become locations (``LOCATED``). The search index is no table
here: each backend keeps its own from the models.
``TABLES`` must name every column of the schema at head (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.sql import chunks
from hikaze_mm.database.tags import nocase
from hikaze_mm.database.values import TagRef
from hikaze_mm.meta import parse_meta

BATCH = 1000
# The tables whose ``path`` is a model's file (or its cached version), kept as a location
# below a named root (``database/locations.py``).
LOCATED = ("models", "model_files", "pending_import", "hash_cache")
# The caches kept per host (``host``, their first column).
CACHES = ("hash_cache", "sidecar_files")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    order: str  # ORDER BY of the rows as they are read (both backends)
    # column -> the table whose ids it holds (remapped in a merge)
    refs: dict[str, str] = field(default_factory=dict)
    # what a plain copy does with a row whose key a new library has already
    on_conflict: str = ""


def _table(name: str, columns: str, order: str, **refs: str) -> Table:
    return Table(name, tuple(columns.split()), order, refs)


TABLES: tuple[Table, ...] = (
    _table("tags", "id name color created_at", "id"),
    _table(
        "models",
        "sha256 path name type base size_bytes created_at last_used_at meta_json missing "
        "use_count name_key autov3",
        "sha256",
    ),
    _table("model_tags", "model_hash tag_id", "model_hash, tag_id", tag_id="tags"),
    _table("model_files", "sha256 path size_bytes seen_at", "path"),
    _table("image_pixels", "sha256 digest seq", "sha256, digest"),
    _table(
        "pending_import",
        "id path name type base size_bytes created_at meta_json sha256 status error source "
        "updated_at claimed_by lease_until",
        "id",
    ),
    _table(
        "pending_model_tags",
        "model_id tag_id",
        "model_id, tag_id",
        model_id="pending_import",
        tag_id="tags",
    ),
    _table("hash_cache", "host path size_bytes mtime_ns inode sha256 hashed_at autov3", "path"),
    _table("sidecar_files", "host path size_bytes mtime_ns sha256 read_at", "path"),
    _table("image_seqs", "sha256 next_seq", "sha256"),
    _table("image_orders", "sha256 seqs_json updated_at", "sha256"),
    _table(
        "legacy_import_models",
        "path legacy_id sha256 pending_id imported_at",
        "path",
        pending_id="pending_import",
    ),
    _table("legacy_import_tags", "name tag_id", "name", tag_id="tags"),
    _table("legacy_import_images", "sha256 source_sha seq done", "sha256, source_sha"),
    _table(
        "generations",
        "id file created_at prompt negative_prompt seed steps sampler cfg width height params_json",
        "id",
    ),
    _table(
        "generation_resources",
        "generation_id sha256 role name weight",
        "generation_id, rowid",  # rowid: the order they were recorded in, on both backends
        generation_id="generations",
    ),
    _table(
        "downloads",
        "id source status type folder url file_name expected_sha256 sha256 path part_path "
        "bytes_done bytes_total error request_json meta_json created_at updated_at",
        "id",
    ),
    # A new library writes some of its state when it is created: the source's replaces it.
    Table(
        "migration_state",
        ("key", "value_json", "updated_at"),
        "key",
        on_conflict=" ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, "
        "updated_at = excluded.updated_at",
    ),
)

# The tables whose rows a merge gives new ids (the rest are keyed by their values).
ID_TABLES = ("tags", "pending_import", "generations", "downloads")


def is_empty(library: Library) -> bool:
    """Whether ``library`` holds no model, tag, pending model or generation."""
    return not any(
        library.tuples(f"SELECT 1 FROM {name} LIMIT 1")
        for name in ("models", "tags", "pending_import", "generations")
    )


def copy_library(source: Library, target: Library, *, merge: bool) -> dict[str, dict[str, int]]:
    """Copy ``source`` into ``target`` (see the module docstring); returns, per table,
    ``{"read", "added", "merged", "skipped"}``."""
    with source.transaction(), target.transaction():
        copier = _Copier(source, target, merge)
        for table in TABLES:
            copier.copy(table)
    return copier.report


class _Copier:
    def __init__(self, source: Library, target: Library, merge: bool) -> None:
        self.source = source
        self.target = target
        self.merge = merge
        self.ids: dict[str, dict[Any, Any]] = {name: {} for name in ID_TABLES}
        self.report: dict[str, dict[str, int]] = {}

    def copy(self, table: Table) -> None:
        rows = self.source.tuples(
            f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {table.order}"
        )
        if table.name in LOCATED:
            rows = self._located(rows, table.columns.index("path"))
        if table.name in CACHES:
            rows = self._own_cache(rows)
        counts = {"read": len(rows), "added": 0, "merged": 0, "skipped": 0}
        self.report[table.name] = counts
        if not self.merge:
            self._insert(table, table.columns, rows, table.on_conflict)
            counts["added"] = len(rows)
            if table.name in ID_TABLES:
                self.target.after_explicit_ids(table.name)
        elif table.name == "tags":
            self._merge_tags(rows, counts)
        elif table.name == "models":
            self._merge_models(rows, counts)
        elif table.name in ID_TABLES:
            self._merge_with_new_ids(table, rows, counts)
        else:
            self._merge_keyed(table, rows, counts)

    def _located(self, rows: Sequence[Sequence[Any]], at: int) -> list[Sequence[Any]]:
        """``rows`` with the path at ``at`` as the target keeps it: a path below a root this
        host names becomes its location, so a machine's own catalog pushed into a studio's
        is found by every host."""
        source, target = self.source.locations, self.target.locations
        if not (source.named or target.named):
            return list(rows)
        return [(*row[:at], target.stored(source.shown(row[at])), *row[at + 1 :]) for row in rows]

    def _own_cache(self, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """Cache rows (``host`` first) with the source's own as the target's own: a
        machine's caches pushed into a studio's catalog are its host's there."""
        mine, theirs = self.source.cache_host, self.target.cache_host
        return [(theirs, *row[1:]) if row[0] == mine else row for row in rows]

    def _insert(
        self, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> int:
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}){tail}"
        )
        added = 0
        for batch in chunks(rows, BATCH):
            cursor = self.target.conn.executemany(sql, batch)
            added += max(cursor.rowcount, 0)
        return added

    def _remapped(self, table: Table, row: Sequence[Any]) -> list[Any] | None:
        """``row`` with its references as the target's ids; None if one has none."""
        values = list(row)
        for column, owner in table.refs.items():
            i = table.columns.index(column)
            if values[i] is None:
                continue
            values[i] = self.ids[owner].get(values[i])
            if values[i] is None and column != "pending_id":
                return None
        return values

    # ----------------------------------------------------------------- merging
    def _merge_tags(self, rows: Sequence[Sequence[Any]], counts: dict[str, int]) -> None:
        existing = self.target.tags.ids_by_name([row[1] for row in rows])
        for tag_id, name, color, created_at in rows:
            found = existing.get(nocase(name))
            if found is not None:
                self.ids["tags"][tag_id] = found
                counts["merged"] += 1
                continue
            cursor = self.target.conn.execute(
                "INSERT INTO tags (name, color, created_at) VALUES (?, ?, ?) RETURNING id",
                (name, color, created_at),
            )
            self.ids["tags"][tag_id] = int(cursor.fetchone()[0])
            counts["added"] += 1

    def _merge_models(self, rows: Sequence[Sequence[Any]], counts: dict[str, int]) -> None:
        columns = TABLES[1].columns
        held = set()
        for batch in chunks([row[0] for row in rows]):
            marks = ", ".join("?" * len(batch))
            held.update(
                sha
                for (sha,) in self.target.tuples(
                    f"SELECT sha256 FROM models WHERE sha256 IN ({marks})", batch
                )
            )
        new = [row for row in rows if row[0] not in held]
        counts["added"] = self._insert(TABLES[1], columns, new)
        for row in rows:
            if row[0] in held:
                self._merge_model(dict(zip(columns, row, strict=True)))
                counts["merged"] += 1

    def _merge_model(self, model: dict[str, Any]) -> None:
        data = {key: model[key] for key in ("sha256", "path", "name", "type", "base")}
        data.update(
            size_bytes=model["size_bytes"],
            created_at=model["created_at"],
            autov3=model["autov3"],
            meta=parse_meta(model["meta_json"]),
        )
        no_tags: list[TagRef] = []
        self.target.models.upsert(data, no_tags, on_conflict="merge")
        self.target.conn.execute(
            "UPDATE models SET use_count = use_count + ?, last_used_at = CASE "
            "WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END "
            "WHERE sha256 = ?",
            (
                model["use_count"] or 0,
                model["last_used_at"],
                model["last_used_at"],
                model["sha256"],
            ),
        )

    def _merge_with_new_ids(
        self, table: Table, rows: Sequence[Sequence[Any]], counts: dict[str, int]
    ) -> None:
        columns = table.columns[1:]
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING RETURNING id"
        )
        for row in rows:
            values = self._remapped(table, row)
            assert values is not None  # these tables hold no references
            found = self.target.conn.execute(sql, values[1:]).fetchone()
            if found is None:  # a pending model whose path the target has
                counts["skipped"] += 1
                continue
            self.ids[table.name][row[0]] = int(found[0])
            counts["added"] += 1

    def _merge_keyed(
        self, table: Table, rows: Sequence[Sequence[Any]], counts: dict[str, int]
    ) -> None:
        remapped = [values for row in rows if (values := self._remapped(table, row)) is not None]
        added = self._insert(table, table.columns, remapped, " ON CONFLICT DO NOTHING")
        counts["added"] = added
        counts["skipped"] = len(rows) - added
