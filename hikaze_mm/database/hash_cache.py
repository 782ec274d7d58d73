"""HashCacheStore: the ``hash_cache`` table, a file's hash by (path, size, mtime_ns, inode).

Each host keeps its own rows (``host``: the library's ``cache_host``), since the clients of
one share see other inodes and mtimes. A path below a named root is kept as its location
(``database/locations.py``), so a model's file and its cached version join on the path.
A host that has no row of its own for a location the catalog knows as a model's file of
the same size takes the model's hash without reading the file (``_adopt``): another host
hashed it, and each file is hashed once in a studio."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING

from hikaze_mm.database.locations import MARK
from hikaze_mm.database.retry import retrying
from hikaze_mm.database.sql import chunks, path_ranges
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import normalize_sha256, now_ms

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# A row as a scan compares it: (path, size, mtime_ns, inode, sha256). The plain tuple
# SQLite returns, because a rescan compares one per file in its hottest loop.
CacheRow = tuple[str, int, int, int, str]


# A file version's hash recorded; an AutoV3 already known for the same content is kept
# when the new row has none.
_STORE = (
    "INSERT INTO hash_cache (host, path, size_bytes, mtime_ns, inode, sha256, hashed_at, "
    "autov3) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(host, path) DO UPDATE SET "
    "size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns, "
    "inode = excluded.inode, hashed_at = excluded.hashed_at, "
    "autov3 = CASE WHEN hash_cache.sha256 = excluded.sha256 "
    "THEN COALESCE(excluded.autov3, hash_cache.autov3) ELSE excluded.autov3 END, "
    "sha256 = excluded.sha256"
)


def file_key(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """One file version as text: ``size:mtime_ns:inode:path`` (``model_file_keys``' unit).

    The stat part holds no ``:`` of its own, so the text decodes one way; no path holds
    a NUL, which separates keys.
    """
    return f"{size}:{mtime_ns}:{inode}:{path}"


@translate_errors()
class HashCacheStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def _stored(self, path: str) -> str:
        return self.db.locations.stored(path)

    def lookup(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The cached hash of this exact file version, or None."""
        entry = self.entry(path, size, mtime_ns, inode)
        return entry[0] if entry else None

    def entry(
        self, path: str, size: int, mtime_ns: int, inode: int
    ) -> tuple[str, str | None] | None:
        """``(sha256, autov3)`` of this exact file version (autov3 None when it was never
        computed), or None."""
        stored = self._stored(path)
        row = self.db.conn.execute(
            "SELECT size_bytes, mtime_ns, inode, sha256, autov3 FROM hash_cache "
            "WHERE host = ? AND path = ?",
            (self.db.cache_host, stored),
        ).fetchone()
        if row is None:
            return self._adopt({stored: (size, mtime_ns, inode)}).get(stored)
        return (row[3], row[4]) if tuple(row[:3]) == (size, mtime_ns, inode) else None

    def _adopt(self, files: dict[str, tuple[int, int, int]]) -> dict[str, tuple[str, str | None]]:
        """``(sha256, autov3)`` of the files at locations (``stored path -> (size,
        mtime_ns, inode)``, none cached by this host) that the catalog holds as a model's
        file of that size, each now cached for this host as that model's: another host
        read it. Paths that are no location are never taken (a machine's own file is
        read)."""
        located = [path for path in files if path.startswith(MARK)]
        found: dict[str, tuple[str, str | None]] = {}
        for chunk in chunks(located):
            marks = ",".join("?" * len(chunk))
            for path, sha, size, autov3 in self.db.tuples(
                f"SELECT path, sha256, size_bytes, autov3 FROM models WHERE path IN ({marks}) "
                "AND missing = 0 UNION ALL "
                "SELECT f.path, f.sha256, m.size_bytes, m.autov3 FROM model_files f "
                f"JOIN models m ON m.sha256 = f.sha256 WHERE f.path IN ({marks})",
                [*chunk, *chunk],
            ):
                if size == files[path][0]:
                    found[path] = (sha, autov3)
        if found and not self.db.read_only:
            self._store_stored(
                [(path, *files[path], sha, autov3) for path, (sha, autov3) in found.items()]
            )
        return found

    def entries(self, paths: Sequence[str]) -> dict[str, tuple[int, int, int, str, str | None]]:
        """``(size, mtime_ns, inode, sha256, autov3)`` of these paths (those cached), by
        path; one query per 500."""
        found: dict[str, tuple[int, int, int, str, str | None]] = {}
        given = {self._stored(path): path for path in paths}
        for chunk in chunks(list(given)):
            marks = ",".join("?" * len(chunk))
            for path, *entry in self.db.tuples(
                "SELECT path, size_bytes, mtime_ns, inode, sha256, autov3 FROM hash_cache "
                f"WHERE host = ? AND path IN ({marks})",
                [self.db.cache_host, *chunk],
            ):
                found[given[path]] = tuple(entry)  # type: ignore[assignment]
        return found

    def adopt(self, files: dict[str, tuple[int, int, int]]) -> dict[str, tuple[str, str | None]]:
        """``_adopt`` of files by this host's path (``path -> (size, mtime_ns, inode)``):
        the hashes taken, by the path given. A file this host has a row for (a version it
        hashed, maybe since changed) is left to be read."""
        given = {stored: path for path in files if (stored := self._stored(path)).startswith(MARK)}
        if not given:
            return {}
        cached = self.rows(list(given.values()))
        taken = self._adopt(
            {stored: files[path] for stored, path in given.items() if path not in cached}
        )
        return {given[stored]: entry for stored, entry in taken.items()}

    @retrying
    def store(
        self,
        path: str,
        size: int,
        mtime_ns: int,
        inode: int,
        sha256: str,
        autov3: str | None = None,
    ) -> None:
        """Record a file version's hash; an AutoV3 already known for the same content is
        kept when this one has none."""
        self._store_stored([(self._stored(path), size, mtime_ns, inode, sha256, autov3)])

    @retrying
    def store_many(self, rows: Sequence[tuple[str, int, int, int, str, str | None]]) -> None:
        """``store`` each ``(path, size, mtime_ns, inode, sha256, autov3)``, in one unit of
        work (one statement run for every row)."""
        self._store_stored([(self._stored(path), *rest) for path, *rest in rows])  # type: ignore[misc]

    def _store_stored(self, rows: Sequence[tuple[str, int, int, int, str, str | None]]) -> None:
        """``store_many`` of rows whose paths are as the catalog keeps them."""
        if not rows:
            return
        stamp, host = now_ms(), self.db.cache_host
        latest = {path: (path, *rest) for path, *rest in rows}  # one row a path: the last
        with self.db.transaction() as conn:
            conn.executemany(
                _STORE,
                [
                    (host, path, size, mtime_ns, inode, normalize_sha256(sha), stamp, autov3)
                    for path, size, mtime_ns, inode, sha, autov3 in sorted(latest.values())
                ],
            )

    def forget(self, path: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM hash_cache WHERE host = ? AND path = ?",
                (self.db.cache_host, self._stored(path)),
            )

    def below(self, folders: Sequence[str]) -> dict[str, CacheRow]:
        """Rows for every path below ``folders``, by path, in one query.

        The query reads the table straight through (``NOT INDEXED``) and filters on path
        ranges: nearly every cached path lies below the roots, and walking the path index
        instead would add a row lookup per entry (measured ~30% slower at 20,000 rows).
        """
        if not folders:
            return {}
        where, args = path_ranges("path", [self._stored(folder) for folder in folders])
        found = self.db.locations.here(
            self.db.tuples(
                f"SELECT path, size_bytes, mtime_ns, inode, sha256 FROM hash_cache"
                f"{self.db.dialect.not_indexed()} WHERE host = ? AND ({where})",
                [self.db.cache_host, *args],
            )
        )
        return dict(zip(map(itemgetter(0), found), found, strict=True))  # type: ignore[arg-type]

    def rows(self, paths: Sequence[str]) -> dict[str, CacheRow]:
        """The rows of these paths (those cached), by path; one query per 500."""
        found: dict[str, CacheRow] = {}
        given = {self._stored(path): path for path in paths}
        for chunk in chunks(list(given)):
            marks = ",".join("?" * len(chunk))
            for row in self.db.tuples(
                f"SELECT path, size_bytes, mtime_ns, inode, sha256 FROM hash_cache "
                f"WHERE host = ? AND path IN ({marks})",
                [self.db.cache_host, *chunk],
            ):
                found[given[row[0]]] = (given[row[0]], *row[1:])  # type: ignore[assignment]
        return found

    def model_file_keys(self, folders: Sequence[str]) -> tuple[set[str], int, int]:
        """``(keys, expected, outside)`` for a rescan's quick check of the files below
        ``folders``.

        ``keys``: the ``file_key`` of every cached file there that is its model's file (a
        model not flagged missing has that path and that hash). ``expected``: how many
        models not flagged missing have a path there. A walk that finds ``expected`` of
        these keys has found every such model unchanged, without loading a row per file.
        ``outside``: how many models have a path elsewhere.

        One statement, so SQLite builds the text without the GIL (a scan runs it in a
        thread while it walks); Python only splits it.
        """
        if not folders:
            return set(), 0, 0
        stored = [self._stored(folder) for folder in folders]
        where_h, args_h = path_ranges("h.path", stored)
        where_m, args_m = path_ranges("path", stored)
        dialect = self.db.dialect
        text, expected, outside = self.db.tuples(
            "SELECT (SELECT "
            + dialect.group_concat(
                "h.size_bytes || ':' || h.mtime_ns || ':' || h.inode || ':' || h.path"
            )
            + f" FROM hash_cache h{dialect.not_indexed()} "
            f"JOIN models m{dialect.hint('idx_models_path')} "
            "ON m.path = h.path AND m.sha256 = h.sha256 AND m.missing = 0 "
            f"WHERE h.host = ? AND ({where_h})), "
            f"(SELECT COUNT(*) FROM models WHERE missing = 0 AND ({where_m})), "
            f"(SELECT COUNT(*) FROM models) - (SELECT COUNT(*) FROM models WHERE {where_m})",
            [self.db.cache_host, *args_h, *args_m, *args_m],
        )[0]
        keys = set(text.split(dialect.text_separator)) if text else set()
        if any(folder.startswith(MARK) for folder in stored):
            keys = {self._key_here(key) for key in keys}
        return keys, int(expected), int(outside)

    def _key_here(self, key: str) -> str:
        """A ``file_key`` with its stored path as this host's."""
        size, mtime, inode, path = key.split(":", 3)
        return f"{size}:{mtime}:{inode}:{self.db.locations.shown(path)}"
