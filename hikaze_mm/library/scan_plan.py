"""The steps of a scan that decide, before anything is written (see ``scanner``).

Each step takes the snapshot of what the library knows (and what the steps before it
found) and returns what it found; none of them writes:

* ``Snapshot.load``: the hash cache below the roots, every model's path, every pending
  path, a few bulk queries;
* ``walk``: one ``stat`` per file; a file whose (size, mtime_ns, inode) matches its cache
  row is known by its hash without being read;
* ``settle``: which models are present, which vanished, which are unknown (their folder
  could not be read);
* ``move_candidates``: the unknown files that may be a vanished model (same size): the
  only files a scan reads, hashed by the scanner;
* ``resolve``: relinks, duplicates, new files and the scan's stale pending rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from hikaze_mm.database import DatabaseManager
from hikaze_mm.database.hash_cache import CacheRow
from hikaze_mm.database.pending import PendingLocation
from hikaze_mm.library.scan_walk import SeenFile, Walker, WalkProblem


def prefixes(folders: Iterable[str]) -> tuple[str, ...]:
    return tuple(f.rstrip(os.sep) + os.sep for f in folders)


def below(path: str, folder_prefixes: tuple[str, ...]) -> bool:
    return bool(folder_prefixes) and (path + os.sep).startswith(folder_prefixes)


@dataclass(slots=True)
class ModelLocation:
    """A model that may have vanished: where it was, its size, whether flagged missing."""

    sha256: str
    path: str
    size: int | None
    missing: bool


@dataclass
class Snapshot:
    """What the library knows, loaded in bulk (a few queries) at the start of a scan."""

    roots: tuple[str, ...]  # the scanned roots, as path prefixes
    cache: dict[str, CacheRow]  # hash-cache rows below the roots, by path
    pending: dict[str, PendingLocation]  # pending imports by path
    model_path: dict[str, str]  # sha256 -> path, every model
    model_at: dict[str, str]  # path -> sha256 (a present model wins a path it shares)
    missing: set[str]  # models flagged missing

    @classmethod
    def load(cls, db: DatabaseManager, root_paths: Sequence[str]) -> Snapshot:
        cache = db.hash_cache.below(root_paths)
        pending = db.pending.locations()
        lost = db.models.paths(missing=True)
        kept = db.models.paths(missing=False)
        model_at = dict(lost)
        model_at.update(kept)
        model_path = {sha: path for path, sha in lost}
        model_path.update({sha: path for path, sha in kept})
        missing = {sha for _, sha in lost}
        return cls(prefixes(root_paths), cache, pending, model_path, model_at, missing)


@dataclass
class Walked:
    """Every file under the roots, sorted by what the cache says of it."""

    seen: int = 0
    present: set[str] = field(default_factory=set)  # models at their path, unchanged
    known: list[tuple[SeenFile, str]] = field(default_factory=list)  # other cached files
    unresolved: list[SeenFile] = field(default_factory=list)  # files the cache does not know
    seen_pending: set[str] = field(default_factory=set)  # pending files found
    problems: list[WalkProblem] = field(default_factory=list)
    unreadable: tuple[str, ...] = ()  # folders that could not be read, as prefixes


def walk(snap: Snapshot, walker: Walker, on_count: Callable[[int], None]) -> Walked:
    """Walk every file once (one stat each); ``on_count(seen)`` every 1024 files.

    This loop runs once per file of the library, so it keeps to local names and dict
    lookups. (Loading the snapshot in another thread during the walk was tried: the GIL
    hand-offs around each stat made the whole scan slower.)
    """
    found = Walked()
    cache, model_at, pending = snap.cache, snap.model_at, snap.pending
    present, known, unresolved = found.present, found.known, found.unresolved
    seen_pending = found.seen_pending
    seen = 0
    for f in walker.walk():
        seen += 1
        path = f.path
        if path in pending:
            seen_pending.add(path)
            continue
        row = cache.get(path)
        if row is not None and row[1] == f.size and row[2] == f.mtime_ns and row[3] == f.inode:
            if model_at.get(path) == row[4]:
                present.add(row[4])
            else:
                known.append((f, row[4]))
        else:
            unresolved.append(f)
        if not seen & 1023:
            on_count(seen)
    found.seen = seen
    found.problems = list(walker.problems)
    found.unreadable = prefixes(walker.unreadable)
    return found


@dataclass
class Settled:
    """Each model's state after the walk."""

    restore: list[str]  # flagged missing, but found again
    vanished: dict[str, ModelLocation]  # not found where the library says


def settle(
    snap: Snapshot, walked: Walked, sizes: Callable[[list[str]], dict[str, int | None]]
) -> Settled:
    """A model not present has vanished, unless its folder could not be read (unknown) or
    it lies outside the scanned roots and its file is there. ``sizes`` loads the sizes of
    the vanished ones (the only models whose size matters)."""
    restore: list[str] = []
    vanished_at: dict[str, str] = {}
    for sha, path in snap.model_path.items():
        if sha in walked.present:
            if sha in snap.missing:
                restore.append(sha)
        elif below(path, walked.unreadable):
            continue
        elif not below(path, snap.roots) and os.path.isfile(path):
            if sha in snap.missing:
                restore.append(sha)
        else:
            vanished_at[sha] = path
    found = sizes(list(vanished_at))
    vanished = {
        sha: ModelLocation(sha, path, found.get(sha), sha in snap.missing)
        for sha, path in vanished_at.items()
    }
    return Settled(restore, vanished)


def move_candidates(walked: Walked, settled: Settled) -> list[SeenFile]:
    """Unknown files whose size is a vanished model's: a move, a rename, or a touch."""
    sizes = {m.size for m in settled.vanished.values() if m.size}
    return [f for f in walked.unresolved if f.size in sizes]


@dataclass
class Plan:
    """What a scan found, before anything is written."""

    relinks: list[tuple[ModelLocation, SeenFile]] = field(default_factory=list)
    new_files: list[SeenFile] = field(default_factory=list)
    still_missing: list[ModelLocation] = field(default_factory=list)
    restore: list[str] = field(default_factory=list)  # missing models found again in place
    stale_pending: list[int] = field(default_factory=list)
    duplicates: int = 0  # extra copies of a model that is present


def resolve(
    snap: Snapshot,
    walked: Walked,
    settled: Settled,
    candidates: list[SeenFile],
    hashed: list[tuple[SeenFile, str]],
) -> Plan:
    """Confirmations at a model's own path first, then relinks, duplicates, new files."""
    plan = Plan(restore=list(settled.restore))
    vanished = dict(settled.vanished)
    rest: list[tuple[SeenFile, str]] = []
    for f, sha in walked.known + hashed:
        model = vanished.get(sha)
        if model is not None and model.path == f.path:
            del vanished[sha]  # touched in place, same content
            if model.missing:
                plan.restore.append(sha)
        else:
            rest.append((f, sha))
    candidate_paths = {f.path for f in candidates}
    plan.new_files = [f for f in walked.unresolved if f.path not in candidate_paths]
    claimed: set[str] = set()
    for f, sha in rest:
        where = snap.model_path.get(sha)
        if where is None:
            plan.new_files.append(f)
        elif where == f.path:
            continue
        elif sha in vanished and sha not in claimed:
            claimed.add(sha)
            plan.relinks.append((vanished[sha], f))
        else:
            plan.duplicates += 1
    plan.still_missing = [m for sha, m in vanished.items() if sha not in claimed]
    plan.stale_pending = [
        p.id
        for path, p in snap.pending.items()
        if path not in walked.seen_pending
        and p.source == "scan"
        and p.status in ("new", "error")
        and below(path, snap.roots)
        and not below(path, walked.unreadable)
    ]
    return plan
