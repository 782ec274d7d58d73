"""Reading a legacy (schema v2) database without ever writing it.

The legacy app ran its SQLite file in WAL mode, so the file may have a ``-wal`` beside it
holding committed rows that were never checkpointed, and it may sit in a folder the user
cannot write. Opening it in place is unsafe either way: a normal open may checkpoint
(writing the file), ``mode=ro`` fails without a ``-shm`` in a read-only folder, and
``immutable=1`` silently ignores the ``-wal`` (losing rows). So ``LegacySnapshot`` copies
the file and its journal (``-wal`` or ``-journal``) into a private temporary folder and
reads the copy; the originals are only ever read.

``LegacySnapshot.open`` also checks the copy before anything is imported: a path that
does not exist is a ``ValidationError`` (400); a file that is not SQLite, is corrupt, or
lacks the v2 tables is a ``LegacyDatabaseError`` (422). Rows are then streamed.
"""

from __future__ import annotations

import shutil
import sqlite3
import stat
import tempfile
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
_JOURNAL_SUFFIXES = ("-wal", "-journal")
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


def _check_source(path: Path) -> None:
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


class LegacySnapshot:
    """A private, checked copy of a legacy database, read through one connection.

    Use as a context manager (``with LegacySnapshot.open(path) as legacy``); the copy is
    deleted on exit. One thread at a time may read it.
    """

    def __init__(self, source: Path, folder: Path, conn: sqlite3.Connection) -> None:
        self.source = source
        self._folder = folder
        self.conn = conn

    @classmethod
    def open(cls, path: str | Path) -> LegacySnapshot:
        source = Path(path).expanduser()
        _check_source(source)
        folder = Path(tempfile.mkdtemp(prefix="hikaze-legacy-"))
        try:
            copy = folder / "legacy.sqlite3"
            try:
                shutil.copyfile(source, copy)
                for suffix in _JOURNAL_SUFFIXES:
                    journal = Path(f"{source}{suffix}")
                    if journal.is_file():
                        shutil.copyfile(journal, Path(f"{copy}{suffix}"))
            except OSError as exc:
                raise ValidationError(f"cannot read {source}: {exc.strerror or exc}") from None
            # Opened in one thread (a request's, for its 400/422) and read in another (the
            # import's); never by two at once.
            conn = sqlite3.connect(copy, isolation_level=None, check_same_thread=False)
            snapshot = cls(source, folder, conn)
            try:
                snapshot._check()
            except BaseException:
                conn.close()
                raise
            return snapshot
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self.conn.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> LegacySnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
