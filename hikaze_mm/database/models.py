"""ModelStore: the ``models`` table (the library), keyed by SHA-256."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.errors import StorageNotFoundError
from hikaze_mm.database.retry import retrying
from hikaze_mm.database.sql import chunks, path_prefix_bounds, path_ranges, records
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.tags import MODEL_LINKS
from hikaze_mm.database.values import TagRef, natural_key, normalize_sha256, now_ms
from hikaze_mm.errors import ValidationError
from hikaze_mm.meta import dump_meta, merge_meta_json, parse_meta
from hikaze_mm.model_types import canonical_type

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# Columns a caller may set on a model besides its sha256.
MODEL_DATA_COLUMNS = (
    "path",
    "name",
    "type",
    "base",
    "size_bytes",
    "created_at",
    "last_used_at",
    "autov3",
)
# A key of the meta object, or a dotted path of keys (``civitai_not_found.until``).
_META_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def meta_key(key: str) -> str:
    """``key`` if it is a meta key or a dotted path of them; ValueError for anything else."""
    if not isinstance(key, str) or not _META_KEY_RE.fullmatch(key):
        raise ValueError(f"not a meta key: {key!r}")
    return key


# The columns ``insert_new`` takes from a model's values, in its statement's order (then
# ``type``, ``name_key`` and ``meta_json``); and its rows a statement (SQLite binds at most
# 32,766 values).
_INSERTED = ("created_at", "path", "name", "base", "size_bytes", "last_used_at", "autov3")
_INSERT_ROWS = 500


def probed_change(
    base: str | None, meta: dict[str, Any], probed: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The ``(base, meta)`` a model with ``base`` and ``meta`` gets from a base read from
    its file's header (``probed``): set over an empty base or a probe's, never over a
    user's (even an empty one) nor another source's, with ``meta.sources.base`` =
    ``"probe"``; None when nothing changes."""
    if not probed:
        return None
    sources = meta.get("sources") if isinstance(meta.get("sources"), dict) else {}
    source = sources.get("base")
    if source == "user" or (base not in (None, "") and source != "probe"):
        return None
    if base == probed and source == "probe":
        return None
    return probed, {**meta, "sources": {**sources, "base": "probe"}}


def model_values(data: dict[str, Any]) -> dict[str, Any]:
    """The settable columns of ``data``, checked (path as text, canonical type, ints)."""
    values = {k: data[k] for k in MODEL_DATA_COLUMNS if k in data}
    if "path" in values and values["path"] is not None:
        values["path"] = str(values["path"])
    if values.get("type") is not None:
        values["type"] = canonical_type(values["type"])
    for key in ("size_bytes", "created_at", "last_used_at"):
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValidationError(f"{key} must be an integer")
    return values


@translate_errors()
class ModelStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    # ----------------------------------------------------------------- reading
    def _path(self, key: str) -> Any:
        """The bound value naming meta ``key`` in this library's dialect."""
        return self.db.dialect.meta_path(meta_key(key))

    def _stored(self, path: str | Path) -> str:
        """A path as the catalog keeps it (a location below a named root)."""
        return self.db.locations.stored(path)

    def get(self, sha256: str) -> dict[str, Any] | None:
        """The full record (columns, ``meta``, ``tags``, ``missing`` as a bool), or None.
        Read inside a unit of work, the row is locked until it ends where rows have locks
        (it is read to be changed: ``row_lock``)."""
        sha = normalize_sha256(sha256)
        row = self.db.conn.execute(
            f"SELECT * FROM models WHERE sha256 = ?{self.db.row_lock()}", (sha,)
        ).fetchone()
        return self._records([row])[0] if row else None

    def get_by_path(self, path: str | Path) -> dict[str, Any] | None:
        """The model whose primary path is ``path`` (a present one before a missing one)."""
        row = self.db.conn.execute(
            "SELECT * FROM models WHERE path = ? ORDER BY missing LIMIT 1", (self._stored(path),)
        ).fetchone()
        return self._records([row])[0] if row else None

    def exists(self, sha256: str) -> bool:
        sha = normalize_sha256(sha256)
        row = self.db.conn.execute("SELECT 1 FROM models WHERE sha256 = ?", (sha,)).fetchone()
        return row is not None

    def _records(self, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
        tags = self.db.tags.for_models([r["sha256"] for r in rows])
        result = records(rows, tags, "sha256")
        for record in result:
            record["missing"] = bool(record["missing"])
            self.db.locations.show(record)
        return result

    def paths(self, *, missing: bool) -> list[tuple[str, str]]:
        """``(path, sha256)`` of every model flagged missing (or of every other model).

        Two narrow columns from the covering listing index, for a scan's bulk load.
        """
        if missing:  # the partial index holds exactly these (and is small)
            return self.db.locations.here(  # type: ignore[return-value]
                self.db.tuples(
                    f"SELECT path, sha256 FROM models{self.db.dialect.hint('idx_models_missing')} "
                    "WHERE missing != 0"
                )
            )
        return self.db.locations.here(
            self.db.tuples("SELECT path, sha256 FROM models WHERE missing = 0")
        )  # type: ignore[return-value]

    def outside(self, folders: Sequence[str]) -> list[tuple[str, str, bool]]:
        """``(path, sha256, missing)`` of every model whose path is not below ``folders``
        (a full scan checks those files one by one; usually there are few)."""
        bounds = [path_prefix_bounds(self._stored(folder)) for folder in folders]
        where = " AND ".join("NOT (path >= ? AND path < ?)" for _ in bounds) or "TRUE"
        hint = self.db.dialect.hint("idx_models_path")
        rows = self.db.locations.here(
            self.db.tuples(
                f"SELECT path, sha256, missing FROM models{hint} WHERE {where}",
                [value for pair in bounds for value in pair],
            )
        )
        return [(path, sha, bool(missing)) for path, sha, missing in rows]

    def locate(
        self, *, sha256s: Sequence[str] = (), paths: Sequence[str] = ()
    ) -> list[tuple[str, str, bool]]:
        """``(path, sha256, missing)`` of the models with one of these hashes or paths."""
        found: dict[str, tuple[str, str, bool]] = {}
        stored = [self._stored(path) for path in paths]
        for column, values in (("sha256", sha256s), ("path", stored)):
            for chunk in chunks(list(dict.fromkeys(values))):
                marks = ",".join("?" * len(chunk))
                for path, sha, missing in self.db.locations.here(
                    self.db.tuples(
                        f"SELECT path, sha256, missing FROM models WHERE {column} IN ({marks})",
                        chunk,
                    )
                ):
                    found[sha] = (path, sha, bool(missing))
        return list(found.values())

    def find_by_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """sha256 of the models whose hash starts with ``prefix`` (hex, any case; an AutoV2
        hash is the first 10 digits): a range on the primary key."""
        low = prefix.strip().lower()
        if not low or any(c not in "0123456789abcdef" for c in low):
            return []
        rows = self.db.tuples(
            "SELECT sha256 FROM models WHERE sha256 >= ? AND sha256 < ? ORDER BY sha256 LIMIT ?",
            (low, low + "g", limit),
        )
        return [row[0] for row in rows]

    def find_by_autov3(self, autov3: str) -> list[str]:
        """sha256 of the models with this AutoV3 (12 hex digits, any case)."""
        if len(autov3) != 12 or any(c not in "0123456789abcdefABCDEF" for c in autov3):
            return []
        rows = self.db.tuples(
            "SELECT sha256 FROM models WHERE autov3 = ? ORDER BY sha256", (autov3.upper(),)
        )
        return [row[0] for row in rows]

    def with_file_name(self, name: str, limit: int = 10) -> list[str]:
        """sha256 of the models whose file is ``name`` (``x.safetensors``, a tail of its
        path such as ``sub/x.safetensors``, or without its extension as embeddings are
        named: ``x``), present ones first; a scan of the paths, for the rare caller that
        knows a model by its file only."""
        tail = name.replace("\\", "/").strip().lstrip("/")
        if not tail:
            return []
        like = "%/" + tail.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if "." not in tail.rsplit("/", 1)[-1]:
            like += ".%"
        rows = self.db.tuples(
            f"SELECT sha256 FROM models WHERE path = ? OR path {self.db.dialect.like} ? "
            "ESCAPE '\\' "
            "ORDER BY missing, sha256 LIMIT ?",
            (tail, like, limit),
        )
        return [row[0] for row in rows]

    def without_autov3(self, types: Sequence[str]) -> list[tuple[str, str]]:
        """``(sha256, path)`` of the models of these types without an AutoV3 whose file is
        not flagged missing (the AutoV3 backfill's work list)."""
        marks = ",".join("?" * len(types))
        return self.db.locations.here(  # type: ignore[return-value]
            self.db.tuples(
                f"SELECT sha256, path FROM models WHERE autov3 IS NULL AND missing = 0 "
                f"AND type IN ({marks}) ORDER BY sha256",
                list(types),
            ),
            1,
        )

    def with_sizes(self, sizes: Sequence[int]) -> list[tuple[str, str, bool]]:
        """``(path, sha256, missing)`` of the models of these sizes (``idx_models_size``)."""
        found: list[tuple[str, str, bool]] = []
        for chunk in chunks(list(dict.fromkeys(sizes))):
            marks = ",".join("?" * len(chunk))
            found += [
                (path, sha, bool(missing))
                for path, sha, missing in self.db.locations.here(
                    self.db.tuples(
                        f"SELECT path, sha256, missing FROM models WHERE size_bytes IN ({marks})",
                        chunk,
                    )
                )
            ]
        return found

    def sizes(self, sha256s: Sequence[str]) -> dict[str, int | None]:
        """``size_bytes`` of the given models, one query per 500."""
        sizes: dict[str, int | None] = {}
        for chunk in chunks(sha256s):
            marks = ",".join("?" * len(chunk))
            sizes.update(
                self.db.tuples(
                    f"SELECT sha256, size_bytes FROM models WHERE sha256 IN ({marks})", chunk
                )
            )
        return sizes

    def meta_values(self, sha256s: Sequence[str], key: str) -> dict[str, Any]:
        """``meta[key]`` of the given models (``key`` may be a dotted path); models without
        it (or without meta) are left out. JSON values come back as Python values (lists
        and objects parsed)."""
        return {
            sha: fields[key]
            for sha, fields in self.meta_fields(sha256s, (key,)).items()
            if key in fields
        }

    def meta_fields(self, sha256s: Sequence[str], keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{sha256: {key: meta[key]}}`` for the given models and meta keys (dotted paths
        allowed), one query per 500 models; keys a model lacks (or holds null) are left
        out of its dict, and a model with none of them is left out."""
        paths = [self._path(key) for key in keys]
        # One json_extract of every path gives a JSON array of the values (null where
        # absent); it takes two paths or more to answer an array.
        sql_paths = paths if len(paths) > 1 else paths * 2
        dialect = self.db.dialect
        values: dict[str, dict[str, Any]] = {}
        for chunk in chunks(sha256s):
            marks = ",".join("?" * len(chunk))
            rows = self.db.tuples(
                f"SELECT sha256, {dialect.meta_array(len(sql_paths))} "
                f"FROM models WHERE sha256 IN ({marks}) AND {dialect.meta_valid()}",
                [*sql_paths, *chunk],
            )
            for sha, found in rows:
                fields = {
                    key: value
                    for key, value in zip(keys, json.loads(found)[: len(keys)], strict=True)
                    if value is not None
                }
                if fields:
                    values[sha] = fields
        return values

    def without_meta(self, key: str, *, unless_after: str | None = None, now: int = 0) -> list[str]:
        """sha256 of every model whose ``meta[key]`` is absent or null, in sha256 order;
        with ``unless_after`` (a meta key holding a time in ms), not those whose time is
        still after ``now`` (e.g. a lookup remembered as failed until then)."""
        dialect = self.db.dialect
        sql = f"SELECT sha256 FROM models WHERE {dialect.meta_value()} IS NULL"
        args: list[Any] = [self._path(key)]
        if unless_after is not None:
            sql += f" AND {dialect.meta_not_after()}"
            args += [self._path(unless_after), now]
        return [row[0] for row in self.db.tuples(sql + " ORDER BY sha256", args)]

    def with_meta(self, key: str) -> list[str]:
        """sha256 of every model whose ``meta[key]`` (a dotted path) is set and not null,
        in sha256 order."""
        sql = f"SELECT sha256 FROM models WHERE {self.db.dialect.meta_value()} IS NOT NULL"
        return [row[0] for row in self.db.tuples(sql + " ORDER BY sha256", [self._path(key)])]

    def with_updates(self) -> list[dict[str, Any]]:
        """The models whose ``meta.update`` names a version (``update.version_id``), by
        name: ``{sha256, name, type, base, path, missing, civitai, update}`` with
        ``civitai`` and ``update`` the meta's objects (None when not objects)."""
        dialect = self.db.dialect
        rows = self.db.tuples(
            f"SELECT sha256, name, type, base, path, missing, {dialect.meta_array(2)} "
            f"FROM models WHERE {dialect.meta_value()} IS NOT NULL "
            f"ORDER BY {dialect.sort('name_key', 'ASC')}, sha256",
            [self._path("civitai"), self._path("update"), self._path("update.version_id")],
        )
        found = []
        for sha, name, model_type, base, path, missing, extra in rows:
            civitai, update = json.loads(extra)
            found.append(
                self.db.locations.show(
                    {
                        "sha256": sha,
                        "name": name,
                        "type": model_type,
                        "base": base,
                        "path": path,
                        "missing": bool(missing),
                        "civitai": civitai if isinstance(civitai, dict) else None,
                        "update": update if isinstance(update, dict) else None,
                    }
                )
            )
        return found

    # ----------------------------------------------------------------- writing
    @retrying
    def upsert(
        self,
        data: dict[str, Any],
        tags: Iterable[TagRef] = (),
        *,
        on_conflict: str = "update",
    ) -> tuple[dict[str, Any], str]:
        """Insert a model, or update the one with the same sha256; never fails on a collision.

        ``data`` holds ``sha256`` and any of MODEL_DATA_COLUMNS, plus ``meta`` (a dict).
        On a collision, ``on_conflict="update"`` writes every given non-null column and
        merges meta with the new values winning; ``"merge"`` fills only the existing
        empty columns and merges meta with the existing values winning
        (see ``merge_meta_json``). Tags (ids, or names created when new) are added to
        the model's tags either way. Returns ``(record, action)`` with action
        ``created``, ``updated`` or ``merged``.
        """
        if on_conflict not in ("update", "merge"):
            raise ValidationError(f"unknown on_conflict {on_conflict!r}")
        sha = normalize_sha256(data.get("sha256"))
        values = model_values(data)
        incoming_meta = data.get("meta") or {}
        if not isinstance(incoming_meta, dict):
            raise ValidationError("meta must be a JSON object")
        with self.db.transaction():
            row = self._row_to_change("*", sha)
            if row is None and self._insert(sha, values, incoming_meta):
                action = "created"
            else:  # (a row another writer created since it was read: it is locked now)
                row = row or self._row_to_change("*", sha)
                action = self._change(sha, row, values, incoming_meta, on_conflict)
            self.db.tags.link(MODEL_LINKS, sha, self.db.tags.resolve(tags, create=True))
            record = self.get(sha)
        assert record is not None
        return record, action

    def _insert(self, sha: str, values: dict[str, Any], meta: dict[str, Any]) -> bool:
        """Insert a new model; False if another writer inserted it first."""
        if not values.get("path"):
            raise ValidationError("a new model needs a path")
        values = {"created_at": now_ms(), **values, "path": self._stored(values["path"])}
        values["type"] = values.get("type") or "other"
        values["name_key"] = natural_key(values.get("name"))
        columns = ["sha256", *values, "meta_json"]
        cur = self.db.conn.execute(
            f"INSERT INTO models ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT (sha256) DO NOTHING",
            [sha, *values.values(), dump_meta(meta)],
        )
        return cur.rowcount > 0

    @retrying
    def insert_new(self, models: Sequence[tuple[dict[str, Any], Sequence[int]]]) -> set[str]:
        """Insert new models with their tag ids (which must exist), several rows a
        statement; a hash another writer inserted first is skipped, as a model given twice
        is after its first row. ``data`` is ``upsert``'s, with ``probed``: a base read from
        the file's header, set as ``set_probed_base`` would set it after the insert.
        Returns the hashes inserted."""
        rows: dict[str, list[Any]] = {}
        links: dict[str, Sequence[int]] = {}
        for data, tags in models:
            sha = normalize_sha256(data.get("sha256"))
            if sha in rows:
                continue
            links[sha] = tags
            values = model_values(data)
            meta = data.get("meta") or {}
            if not isinstance(meta, dict):
                raise ValidationError("meta must be a JSON object")
            if not values.get("path"):
                raise ValidationError("a new model needs a path")
            values = {"created_at": now_ms(), **values, "path": self._stored(values["path"])}
            probed = probed_change(values.get("base"), meta, data.get("probed"))
            if probed is not None:
                values["base"], meta = probed
            rows[sha] = [
                sha,
                *(values.get(column) for column in _INSERTED),
                values.get("type") or "other",
                natural_key(values.get("name")),
                dump_meta(meta),
            ]
        inserted: set[str] = set()
        columns = ["sha256", *_INSERTED, "type", "name_key", "meta_json"]
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        ordered = [rows[sha] for sha in sorted(rows)]  # a fixed order: no deadlock
        with self.db.transaction() as conn:
            for chunk in chunks(ordered, _INSERT_ROWS):
                found = self.db.tuples(
                    f"INSERT INTO models ({', '.join(columns)}) VALUES "
                    f"{', '.join([marks] * len(chunk))} "
                    "ON CONFLICT (sha256) DO NOTHING RETURNING sha256",
                    [value for row in chunk for value in row],
                )
                inserted.update(sha for (sha,) in found)
            conn.executemany(
                f"INSERT INTO {MODEL_LINKS[0]} ({MODEL_LINKS[1]}, tag_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                sorted({(sha, tag) for sha in inserted for tag in links[sha]}),
            )
        return inserted

    def _change(
        self, sha: str, row: Any, values: dict[str, Any], meta: dict[str, Any], on_conflict: str
    ) -> str:
        """Update an existing model as ``upsert`` says; its action."""
        existing_meta = parse_meta(row["meta_json"])
        if on_conflict == "update":
            changes = {k: v for k, v in values.items() if v is not None}
            merged = merge_meta_json(meta, existing_meta)
            action = "updated"
        else:
            changes = {k: v for k, v in values.items() if v is not None and row[k] in (None, "")}
            merged = merge_meta_json(existing_meta, meta)
            action = "merged"
        changes["meta_json"] = dump_meta(merged)
        if "path" in changes:
            changes["missing"] = 0
        self._set(sha, changes)
        return action

    def _row_to_change(self, columns: str, sha: str) -> Any:
        """The model's row, read to be changed in this transaction: locked where rows
        have locks (PostgreSQL), so a concurrent read-modify-write waits for this one."""
        return self.db.conn.execute(
            f"SELECT {columns} FROM models WHERE sha256 = ?{self.db.row_lock()}", (sha,)
        ).fetchone()

    def _set(self, sha: str, changes: dict[str, Any]) -> bool:
        if "name" in changes:
            changes = {**changes, "name_key": natural_key(changes["name"])}
        if changes.get("path") is not None:
            changes = {**changes, "path": self._stored(changes["path"])}
        assignments = ", ".join(f"{k} = ?" for k in changes)
        cur = self.db.conn.execute(
            f"UPDATE models SET {assignments} WHERE sha256 = ?", [*changes.values(), sha]
        )
        return cur.rowcount > 0

    def update(self, sha256: str, **fields: Any) -> dict[str, Any]:
        """Set columns of an existing model (None clears a column); ``meta`` replaces meta."""
        sha = normalize_sha256(sha256)
        changes = model_values(fields)
        if "meta" in fields:
            if not isinstance(fields["meta"], dict):
                raise ValidationError("meta must be a JSON object")
            changes["meta_json"] = dump_meta(fields["meta"])
        if "missing" in fields:
            changes["missing"] = 1 if fields["missing"] else 0
        with self.db.transaction():
            if changes and not self._set(sha, changes):
                raise StorageNotFoundError(f"no model {sha}")
            record = self.get(sha)
        if record is None:
            raise StorageNotFoundError(f"no model {sha}")
        return record

    def mark_used(self, sha256: str) -> dict[str, Any]:
        """Stamp ``last_used_at`` and count one more use; the record after."""
        sha = normalize_sha256(sha256)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE models SET last_used_at = ?, use_count = use_count + 1 WHERE sha256 = ?",
                (now_ms(), sha),
            )
            if cur.rowcount == 0:
                raise StorageNotFoundError(f"no model {sha}")
            record = self.get(sha)
        assert record is not None
        return record

    def relink(self, sha256: str, path: str) -> bool:
        """Point a model at a new file (and clear ``missing``); False if it is gone. The
        new path, now the primary one, leaves the recorded extra copies."""
        sha = normalize_sha256(sha256)
        with self.db.transaction() as conn:
            if not self._set(sha, {"path": path, "missing": 0}):
                return False
            conn.execute("DELETE FROM model_files WHERE path = ?", (self._stored(path),))
            return True

    # ----------------------------------------------------------------- base probes
    def set_probed_base(self, sha256: str, base: str | None) -> bool:
        """Record a probed base: only over an empty base or one a probe set (never where a
        user set the base, even to nothing, nor over a sidecar's or Civitai's);
        ``meta.sources.base`` becomes ``"probe"``.
        True when the model changed."""
        if not base:
            return False
        sha = normalize_sha256(sha256)
        with self.db.transaction():
            row = self._row_to_change("base, meta_json", sha)
            if row is None:
                return False
            change = probed_change(row["base"], parse_meta(row["meta_json"]), base)
            if change is None:
                return False
            return self._set(sha, {"base": change[0], "meta_json": dump_meta(change[1])})

    def probe_targets(self, *, every: bool = False) -> list[tuple[str, str]]:
        """``(sha256, path)`` of the present models a probe may set the base of: those with
        no base, or (``every``) all but those whose base a user set."""
        user = f"COALESCE({self.db.dialect.meta_value()}, '') = 'user'"
        where = f"NOT {user}" if every else f"(base IS NULL OR base = '') AND NOT {user}"
        return self.db.locations.here(  # type: ignore[return-value]
            self.db.tuples(
                f"SELECT sha256, path FROM models WHERE missing = 0 AND {where} ORDER BY sha256",
                [self._path("sources.base")],
            ),
            1,
        )

    # ----------------------------------------------------------------- files (copies)
    @retrying
    def add_files(self, rows: Sequence[tuple[str, str, int | None]]) -> int:
        """Record ``(sha256, path, size)``: the model's content was found at ``path`` now.
        A model's primary path is not stored (a row there goes); a path holds one content
        (another model's row there is replaced); hashes that are no model are skipped.
        Returns how many copies were recorded."""
        now = now_ms()
        count = 0
        # One row a path (the last), in a fixed order: concurrent calls lock in one order.
        latest = {
            stored: (normalize_sha256(sha), stored, size)
            for sha, stored, size in ((s, self._stored(p), n) for s, p, n in rows)
        }
        rows = sorted(latest.values())
        with self.db.transaction() as conn:  # rows in a fixed order: no deadlock
            for sha, path, size in rows:
                row = self._row_to_change("path", sha)
                if row is None:
                    continue
                if row[0] == path:
                    conn.execute("DELETE FROM model_files WHERE path = ?", (path,))
                    continue
                conn.execute(
                    "INSERT INTO model_files (sha256, path, size_bytes, seen_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                    "sha256 = excluded.sha256, size_bytes = excluded.size_bytes, "
                    "seen_at = excluded.seen_at",
                    (sha, path, size, now),
                )
                count += 1
        return count

    def remove_files(self, paths: Sequence[str], *, sha256s: Sequence[str] | None = None) -> int:
        """Forget the recorded copies at these paths (their files are gone); with
        ``sha256s`` (one per path), only where the path holds that model's content."""
        removed = 0
        with self.db.transaction() as conn:
            if sha256s is not None:
                pairs = sorted(
                    {
                        (self._stored(p), normalize_sha256(s))
                        for p, s in zip(paths, sha256s, strict=True)
                    }
                )
                cur = conn.executemany(
                    "DELETE FROM model_files WHERE path = ? AND sha256 = ?", pairs
                )
                return cur.rowcount
            for chunk in chunks(list(dict.fromkeys(self._stored(p) for p in paths))):
                marks = ",".join("?" * len(chunk))
                removed += conn.execute(
                    f"DELETE FROM model_files WHERE path IN ({marks})", chunk
                ).rowcount
        return removed

    def files(self, sha256s: Sequence[str]) -> dict[str, list[str]]:
        """Every recorded path of these models, the primary (when present) first."""
        found: dict[str, list[str]] = {}
        for chunk in chunks(list(dict.fromkeys(normalize_sha256(s) for s in sha256s))):
            marks = ",".join("?" * len(chunk))
            rows = self.db.tuples(
                f"SELECT sha256, path, 0 FROM models WHERE sha256 IN ({marks}) AND missing = 0 "
                f"UNION SELECT sha256, path, 1 FROM model_files WHERE sha256 IN ({marks}) "
                "ORDER BY 1, 3, 2",
                [*chunk, *chunk],
            )
            for sha, path, _ in self.db.locations.here(rows, 1):
                paths = found.setdefault(sha, [])
                if path not in paths:
                    paths.append(path)
        return found

    def copies_below(self, folders: Sequence[str]) -> dict[str, str]:
        """``path -> sha256`` of the recorded extra copies below ``folders`` (one query)."""
        if not folders:
            return {}
        where, args = path_ranges("path", [self._stored(folder) for folder in folders])
        return dict(
            self.db.locations.here(
                self.db.tuples(f"SELECT path, sha256 FROM model_files WHERE {where}", args)
            )  # type: ignore[arg-type]
        )

    def duplicates(self) -> list[dict[str, Any]]:
        """Models found at more than one path: ``{sha256, name, size_bytes, paths,
        wasted_bytes}`` (wasted: size x (copies - 1)), the largest waste first."""
        rows = self.db.tuples(
            "WITH copies AS ("
            " SELECT sha256, path FROM model_files"
            " UNION SELECT sha256, path FROM models WHERE missing = 0),"
            " dup AS (SELECT sha256 FROM copies GROUP BY sha256 HAVING COUNT(*) > 1)"
            " SELECT m.sha256, m.name, m.size_bytes, m.path, c.path FROM dup"
            " JOIN models m ON m.sha256 = dup.sha256"
            " JOIN copies c ON c.sha256 = dup.sha256"
            " ORDER BY m.sha256, c.path != m.path, c.path"
        )
        groups: dict[str, dict[str, Any]] = {}
        for sha, name, size, _primary, path in rows:
            group = groups.setdefault(
                sha, {"sha256": sha, "name": name, "size_bytes": size, "paths": []}
            )
            group["paths"].append(self.db.locations.shown(path))
        result = list(groups.values())
        for group in result:
            group["wasted_bytes"] = (group["size_bytes"] or 0) * (len(group["paths"]) - 1)
        result.sort(key=lambda g: (-g["wasted_bytes"], g["sha256"]))
        return result

    @retrying
    def set_missing(self, sha256s: Sequence[str], missing: bool) -> int:
        """Flag (or unflag) models as missing in one transaction; returns rows changed."""
        if not sha256s:
            return 0
        flag = 1 if missing else 0
        with self.db.transaction() as conn:
            cur = conn.executemany(
                "UPDATE models SET missing = ? WHERE sha256 = ? AND missing != ?",
                [(flag, sha, flag) for sha in sorted(sha256s)],
            )
            return cur.rowcount

    def add_tags(self, sha256: str, tags: Iterable[TagRef]) -> list[int]:
        """Attach tags (ids, or names created when new); returns their ids."""
        sha = normalize_sha256(sha256)
        with self.db.transaction():
            if not self.exists(sha):
                raise StorageNotFoundError(f"no model {sha}")
            ids = self.db.tags.resolve(tags, create=True)
            self.db.tags.link(MODEL_LINKS, sha, ids)
        return ids

    def remove_tags(self, sha256: str, tags: Iterable[TagRef]) -> int:
        """Detach tags (ids or names; unknown ones are ignored); returns how many went."""
        sha = normalize_sha256(sha256)
        ids = self.db.tags.resolve(tags, create=False, missing_ok=True)
        return self.db.tags.unlink(MODEL_LINKS, sha, ids)

    @retrying
    def retag(self, sha256s: Sequence[str], *, add: Sequence[int], remove: Sequence[int]) -> None:
        """Remove then add tag ids on many models: one statement each, in one transaction
        (the ids must exist; links already there or already gone are left as they are)."""
        table, key = MODEL_LINKS
        owners = sorted(sha256s)  # a fixed order: concurrent calls lock in one order
        with self.db.transaction() as conn:
            conn.executemany(
                f"DELETE FROM {table} WHERE {key} = ? AND tag_id = ?", product(owners, remove)
            )
            conn.executemany(
                f"INSERT INTO {table} ({key}, tag_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                product(owners, add),
            )

    def delete(self, sha256: str) -> bool:
        sha = normalize_sha256(sha256)
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM models WHERE sha256 = ?", (sha,)).rowcount > 0
