"""TagStore: the ``tags`` table and the tag links of models and pending models."""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.errors import StorageConflictError, StorageNotFoundError
from hikaze_mm.database.retry import retrying
from hikaze_mm.database.sql import chunks
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import TagRef, normalize_color, normalize_tag_name, now_ms
from hikaze_mm.errors import ValidationError

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# The columns of a tag record (PostgreSQL's table also holds its folded name).
TAG_COLUMNS = "id, name, color, created_at"
# The link tables: (table, owner column).
MODEL_LINKS = ("model_tags", "model_hash")
PENDING_LINKS = ("pending_model_tags", "model_id")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def nocase(name: str) -> str:
    """The key under which SQLite's NOCASE collation compares a name (ASCII case only);
    the stores compare it with their dialect's ``tag_key`` column."""
    return name.translate(_ASCII_LOWER)


@translate_errors()
class TagStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def create(self, name: str, color: str | None = None) -> dict[str, Any]:
        """Create a tag; a name already taken (in any case) is a StorageConflictError."""
        clean = normalize_tag_name(name)
        hex_color = normalize_color(color)
        key = self.db.dialect.tag_key
        with self.db.transaction() as conn:
            if conn.execute(f"SELECT 1 FROM tags WHERE {key} = ?", (nocase(clean),)).fetchone():
                raise StorageConflictError(f"a tag named {clean!r} exists already")
            row = conn.execute(
                "INSERT INTO tags (name, color, created_at) VALUES (?, ?, ?) RETURNING id",
                (clean, hex_color, now_ms()),
            ).fetchone()
            tag = self.get(int(row[0]))
        assert tag is not None
        return tag

    def insert(self, name: str, color: str | None, created_at: int | None, *, id: int) -> int:
        """Insert a new tag under ``id`` when that id is free, else under a new id.

        For the legacy import, which keeps a tag's old id where it can. The name must be
        free (check with ``get`` first); returns the id the tag got.
        """
        values = (normalize_tag_name(name), color, created_at)
        with self.db.transaction() as conn:
            free = conn.execute("SELECT 1 FROM tags WHERE id = ?", (id,)).fetchone() is None
            if not free:
                return int(
                    conn.execute(
                        "INSERT INTO tags (name, color, created_at) VALUES (?, ?, ?) RETURNING id",
                        values,
                    ).fetchone()[0]
                )
            conn.execute(
                "INSERT INTO tags (id, name, color, created_at) VALUES (?, ?, ?, ?)", (id, *values)
            )
            self.db.after_explicit_ids("tags")
            return id

    def ensure(self, name: str, color: str | None = None) -> dict[str, Any]:
        """Get the tag with this name (any case), creating it if needed."""
        return self.get(self.ensure_ids([name], color)[0])  # type: ignore[return-value]

    @retrying
    def ensure_ids(self, names: Sequence[str], color: str | None = None) -> list[int]:
        """The ids of these tag names (any case), creating the new ones; in the given order."""
        clean = [normalize_tag_name(n) for n in names]
        if not clean:
            return []
        hex_color = normalize_color(color)
        created = now_ms()
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO tags (name, color, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(n, hex_color, created) for n in dict.fromkeys(clean)],
            )
            found = self.ids_by_name(clean)
        return [found[nocase(n)] for n in clean]

    def ids_by_name(self, names: Sequence[str]) -> dict[str, int]:
        """``nocase(name)`` -> id, for the names that exist (any case); one query a chunk."""
        found: dict[str, int] = {}
        key = self.db.dialect.tag_key
        for chunk in chunks(list(dict.fromkeys(map(nocase, names)))):
            marks = ",".join("?" * len(chunk))
            for tag_id, name in self.db.tuples(
                f"SELECT id, name FROM tags WHERE {key} IN ({marks})", chunk
            ):
                found[nocase(name)] = int(tag_id)
        return found

    def item_json_by_id(self, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """id -> (``nocase`` name, ``{id, name, color}`` as JSON text) for these ids (those
        that exist): what a listing item's ``tags`` holds; one query a chunk."""
        found: dict[int, tuple[str, str]] = {}
        for chunk in chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            for tag_id, name, color in self.db.tuples(
                f"SELECT id, name, color FROM tags WHERE id IN ({marks})", chunk
            ):
                text = json.dumps(
                    {"id": tag_id, "name": name, "color": color},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                found[int(tag_id)] = (nocase(name), text)
        return found

    def get(self, tag: TagRef) -> dict[str, Any] | None:
        if isinstance(tag, int) and not isinstance(tag, bool):
            row = self.db.conn.execute(
                f"SELECT {TAG_COLUMNS} FROM tags WHERE id = ?", (tag,)
            ).fetchone()
        elif isinstance(tag, str):
            row = self.db.conn.execute(
                f"SELECT {TAG_COLUMNS} FROM tags WHERE {self.db.dialect.tag_key} = ?",
                (nocase(" ".join(tag.split())),),
            ).fetchone()
        else:
            raise ValidationError(f"a tag is named by its id or name, not {tag!r}")
        return dict(row) if row else None

    def list(self) -> list[dict[str, Any]]:
        """All tags, with the number of models and pending models that carry each."""
        rows = self.db.conn.execute(
            "SELECT t.id, t.name, t.color, t.created_at, "
            "(SELECT COUNT(*) FROM model_tags mt WHERE mt.tag_id = t.id) AS model_count, "
            "(SELECT COUNT(*) FROM pending_model_tags pt WHERE pt.tag_id = t.id) AS pending_count "
            f"FROM tags t ORDER BY {self.db.dialect.nocase_order('t.name')}"
        )
        return [dict(r) for r in rows]

    def count(self) -> dict[str, int]:
        """``{tags, links}``: how many tags, and how many model-tag links."""
        row = self.db.conn.execute(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM model_tags) FROM tags"
        ).fetchone()
        return {"tags": int(row[0]), "links": int(row[1])}

    def update(
        self, tag_id: int, *, name: str | None = None, color: str | object | None = ...
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = normalize_tag_name(name)
        if color is not ...:
            changes["color"] = normalize_color(color)
        with self.db.transaction() as conn:
            if self.get(tag_id) is None:
                raise StorageNotFoundError(f"no tag {tag_id}")
            if "name" in changes:
                clash = conn.execute(
                    f"SELECT id FROM tags WHERE {self.db.dialect.tag_key} = ? AND id != ?",
                    (nocase(changes["name"]), tag_id),
                ).fetchone()
                if clash:
                    raise StorageConflictError(f"a tag named {changes['name']!r} exists already")
            if changes:
                assignments = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(
                    f"UPDATE tags SET {assignments} WHERE id = ?", [*changes.values(), tag_id]
                )
            tag = self.get(tag_id)
        assert tag is not None
        return tag

    def delete(self, tag_id: int) -> bool:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM tags WHERE id = ?", (tag_id,)).rowcount > 0

    def resolve(
        self, refs: Iterable[TagRef], *, create: bool, missing_ok: bool = False
    ) -> list[int]:
        """Tag ids for refs: names are created when new (with ``create``); an unknown id
        (or name, without ``create``) is a StorageNotFoundError, or left out with ``missing_ok``."""
        refs = list(refs)
        names = [r for r in refs if isinstance(r, str)]
        by_name = (
            dict(
                zip(
                    map(nocase, map(normalize_tag_name, names)), self.ensure_ids(names), strict=True
                )
            )
            if create
            else self.ids_by_name([normalize_tag_name(n) for n in names])
        )
        ids: list[int] = []
        for ref in refs:
            if isinstance(ref, str):
                tag_id = by_name.get(nocase(normalize_tag_name(ref)))
            elif self.get(ref) is not None:
                tag_id = ref
            else:
                tag_id = None
            if tag_id is not None:
                ids.append(tag_id)
            elif not missing_ok:
                raise StorageNotFoundError(f"no tag {ref!r}")
        return ids

    # ----------------------------------------------------------------- links
    def link(self, links: tuple[str, str], owner: Any, tag_ids: Iterable[int]) -> None:
        """Attach tags to one owner (a model's sha256 or a pending id); one statement."""
        table, key = links
        with self.db.transaction() as conn:
            conn.executemany(
                f"INSERT INTO {table} ({key}, tag_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(owner, tag_id) for tag_id in sorted(set(tag_ids))],  # a fixed order
            )

    def unlink(self, links: tuple[str, str], owner: Any, tag_ids: Iterable[int]) -> int:
        table, key = links
        with self.db.transaction() as conn:
            cur = conn.executemany(
                f"DELETE FROM {table} WHERE {key} = ? AND tag_id = ?",
                [(owner, tag_id) for tag_id in sorted(set(tag_ids))],
            )
            return cur.rowcount

    def of(self, links: tuple[str, str], owners: Sequence[Any]) -> dict[Any, list[dict[str, Any]]]:
        """Each owner's tags ``[{id, name, color}]`` by name; one query per 500 owners."""
        table, key = links
        result: dict[Any, list[dict[str, Any]]] = {}
        for chunk in chunks(owners):
            marks = ",".join("?" * len(chunk))
            rows = self.db.tuples(
                f"SELECT l.{key}, t.id, t.name, t.color FROM {table} l "
                f"JOIN tags t ON t.id = l.tag_id WHERE l.{key} IN ({marks}) "
                f"ORDER BY {self.db.dialect.nocase_order('t.name')}",
                chunk,
            )
            for owner, tag_id, name, color in rows:
                result.setdefault(owner, []).append({"id": tag_id, "name": name, "color": color})
        return result

    def for_models(self, sha256s: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return self.of(MODEL_LINKS, sha256s)
