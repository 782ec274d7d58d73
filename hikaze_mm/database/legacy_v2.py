"""Reading a legacy (schema v2) database: its rows, checked, from a private copy.

``hikaze_mm.legacy.snapshots`` copies the user's file (and its journal) into a folder of
its own and opens the copy with ``LegacyReader.open_checked``: a file that is not SQLite,
is corrupt, or lacks the v2 tables is a ``LegacyDatabaseError`` (422); rows are then
streamed. Nothing here writes the user's file or knows where the copy lives.
"""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from hikaze_mm.errors import UnprocessableError, ValidationError

# Columns the importer reads; a table lacking one of them is not a v2 database.
REQUIRED_COLUMNS: dict[str, frozenset[str]] = {
    "models": frozenset(
        {
            "id",
            "path",
            "name",
            "type",
            "size_bytes",
            "hash_hex",
            "created_at",
            "meta_json",
            "extra_json",
        }
    ),
    "tags": frozenset({"id", "name", "color", "created_at"}),
    "model_tags": frozenset({"model_id", "tag_id"}),
}
SUPPORTED_VERSION = 2
SQLITE_HEADER = b"SQLite format 3\x00"
_FETCH = 256


class LegacyDatabaseError(UnprocessableError):
    """The file is not a usable legacy v2 database (not SQLite, corrupt, other schema)."""

    error = "Not a legacy database"


@dataclass(frozen=True)
class LegacyTag:
    id: int
    name: object  # as stored: usually str, but v2 did not check
    color: object
    created_at: object


@dataclass(frozen=True)
class LegacyModel:
    id: int
    path: object
    name: object
    type: object
    size_bytes: object
    hash_hex: object
    created_at: object
    meta_json: object
    extra_json: object
    tag_ids: tuple[int, ...]


def check_legacy_file(path: Path) -> None:
    """A readable regular file that starts as SQLite does (ValidationError, LegacyDatabaseError)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValidationError(f"legacy database not found: {path}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(f"legacy database is not a file: {path}")
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not a SQLite database"
        raise LegacyDatabaseError(f"{path.name} is {what} (expected a legacy v2 database)")


class LegacyReader:
    """The rows of a checked legacy v2 database file, read through one connection (one
    thread at a time). ``hikaze_mm.legacy.snapshots`` opens it on a private copy."""

    def __init__(self, source: Path, conn: sqlite3.Connection) -> None:
        self.source = source
        self.conn = conn

    @classmethod
    def open_checked(cls, copy: Path, source: Path) -> LegacyReader:
        """Open the copy ``copy`` of ``source`` and check it (LegacyDatabaseError, 422)."""
        # Opened in one thread (a request's, for its 400/422) and read in another (the
        # import's); never by two at once.
        conn = sqlite3.connect(copy, isolation_level=None, check_same_thread=False)
        reader = cls(source, conn)
        try:
            reader._check()
        except BaseException:
            conn.close()
            raise
        return reader

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self.conn.close()

    # ------------------------------------------------------------------ checks
    def _check(self) -> None:
        name = self.source.name
        try:
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{name} is not a readable SQLite database ({exc})") from None
        if problems != ["ok"]:
            detail = "; ".join(" ".join(str(p).split()) for p in problems)
            raise LegacyDatabaseError(f"{name} is corrupt: {detail}")
        try:
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            missing = sorted(set(REQUIRED_COLUMNS) - tables)
            if missing:
                raise LegacyDatabaseError(
                    f"{name} is not a Hikaze Model Manager v2 database: it has no "
                    f"{', '.join(missing)} table{'s' if len(missing) > 1 else ''}"
                )
            for table, needed in REQUIRED_COLUMNS.items():
                columns = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                lacking = sorted(needed - columns)
                if lacking:
                    raise LegacyDatabaseError(
                        f"{name} is not a Hikaze Model Manager v2 database: table {table} "
                        f"lacks {', '.join(lacking)}"
                    )
            if "schema_version" in tables:
                row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                version = row[0] if row else None
                if version is not None and version != SUPPORTED_VERSION:
                    raise LegacyDatabaseError(
                        f"{name} has legacy schema version {version}; only version "
                        f"{SUPPORTED_VERSION} can be imported"
                    )
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{name} cannot be read: {exc}") from None

    # ------------------------------------------------------------------ reading
    def _query(self, sql: str) -> Iterator[tuple]:
        try:
            cursor = self.conn.execute(sql)
            while rows := cursor.fetchmany(_FETCH):
                yield from rows
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{self.source.name} cannot be read: {exc}") from None

    def _scalar(self, sql: str) -> int:
        try:
            return int(self.conn.execute(sql).fetchone()[0] or 0)
        except sqlite3.DatabaseError as exc:
            raise LegacyDatabaseError(f"{self.source.name} cannot be read: {exc}") from None

    def count_models(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM models")

    def count_orphan_links(self) -> int:
        """Links to a model id or tag id that does not exist (foreign keys were often off)."""
        return self._scalar(
            "SELECT COUNT(*) FROM model_tags WHERE model_id NOT IN (SELECT id FROM models) "
            "OR tag_id NOT IN (SELECT id FROM tags)"
        )

    def max_model_id(self) -> int:
        return self._scalar("SELECT MAX(id) FROM models")

    def iter_tags(self) -> Iterator[LegacyTag]:
        for row in self._query("SELECT id, name, color, created_at FROM tags ORDER BY id"):
            yield LegacyTag(*row)

    def iter_models(self) -> Iterator[LegacyModel]:
        """Every model in id order, each with the ids of the existing tags linked to it."""
        sql = (
            "SELECT m.id, m.path, m.name, m.type, m.size_bytes, m.hash_hex, m.created_at, "
            "m.meta_json, m.extra_json, (SELECT group_concat(l.tag_id) FROM model_tags l "
            "JOIN tags t ON t.id = l.tag_id WHERE l.model_id = m.id) "
            "FROM models m ORDER BY m.id"
        )
        for row in self._query(sql):
            raw_tags = row[9]
            tag_ids = tuple(sorted({int(t) for t in str(raw_tags).split(",")})) if raw_tags else ()
            yield LegacyModel(*row[:9], tag_ids=tag_ids)  # type: ignore[arg-type]
