"""The steps of a scan that decide, before anything is written (see ``scanner``).

Each step takes what the library knows (and what the steps before it found) and returns
what it found; none of them writes:

* ``Prefetch``: the quick check's data (``hash_cache.model_file_keys``: each model's
  file as a ``file_key`` text, and how many present models the scope holds), one SQLite
  statement run in a thread while the main thread walks;
* ``walk``: the walk's folders, one ``stat`` per file;
* ``sort_files``: each file is a *hit* (its key is in the set: the model's own file,
  unchanged), pending, or one of the *rest*;
* ``Snapshot.load``: what the rest need. When the hits are as many as the present models
  in scope, every one of them is there, and the rest are known by their cache rows
  (duplicates, say), the snapshot is *partial*: the cache rows of the rest, the models
  flagged missing, the models the rest name and (full scans) those outside the roots: a
  few narrow queries. Otherwise it is *complete*: the cache below the scope and every
  model's path, in bulk;
* ``Walked.resolve_rest``: a rest file whose (size, mtime_ns, inode) matches its cache row
  is known by its hash without being read; the others are unresolved;
* ``settle``: which models are present, which vanished, which are unknown (their folder
  could not be read, or their file is still being written);
* ``move_candidates``: the unknown files that may be a vanished model (same size): the
  only files a scan reads, hashed by the scanner;
* ``resolve``: relinks, duplicates (each copy's path, for ``model_files``), new files and
  the scan's stale pending rows; ``lost_copies``: the recorded copies the walk missed.

A scan covers a *scope*: the roots (a full scan), or folders below them (the watcher's
incremental scans, ``partial``), each with everything below it. A partial scan decides
for the models and pending rows in its folders exactly as a full scan would, looks at
nothing else, and may relink a model flagged missing anywhere to a file it finds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hikaze_mm.database.hash_cache import CacheRow
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.pending import PendingLocation
from hikaze_mm.library.scan_walk import SeenFile, Sidecar, Walker, WalkProblem
from hikaze_mm.library.sidecars import kind_of

T = TypeVar("T")
# A partial snapshot looks the rest up by path; past this many, bulk loads are cheaper.
MAX_LOOKUPS = 2000


def prefixes(folders: Iterable[str]) -> tuple[str, ...]:
    return tuple(f.rstrip(os.sep) + os.sep for f in folders)


def below(path: str, folder_prefixes: tuple[str, ...]) -> bool:
    return bool(folder_prefixes) and (path + os.sep).startswith(folder_prefixes)


def _gone(path: str) -> bool:
    """Whether no file is at ``path`` (a folder that cannot be read says nothing)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def outermost(folders: Iterable[str]) -> list[str]:
    """``folders`` without those below another one (each scope folder covers its tree)."""
    result: list[str] = []
    for folder in sorted({f.rstrip(os.sep) or os.sep for f in folders}, key=len):
        if not below(folder, prefixes(result)):  # shorter first: parents come before
            result.append(folder)
    return sorted(result)


@dataclass(slots=True)
class ModelLocation:
    """A model that may have vanished: where it was, its size, whether flagged missing."""

    sha256: str
    path: str
    size: int | None
    missing: bool


class Prefetch(Generic[T]):
    """``load()`` in a thread of its own (with its own connection, released after).

    For a single SQLite statement: SQLite runs it without the GIL, so it overlaps the
    walk. (Loading rows one by one this way was slower than not at all: the GIL changed
    hands around every row and every ``stat``.)
    """

    def __init__(self, db: Library, load: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = load()
            except BaseException as exc:  # handed to the caller of result()
                self._error = exc
            finally:
                db.release_thread()

        self._thread = threading.Thread(target=run, name="hikaze-scan-prefetch", daemon=True)
        self._thread.start()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass
class Walked:
    """Every file in scope, sorted by what the library says of it."""

    seen: int = 0
    # Each folder's file type and its files' ``file_key`` texts (size:mtime_ns:inode:path):
    # small strings instead of stat results, so 50,000 files take little memory.
    folders: list[tuple[str, list[str]]] = field(default_factory=list)
    hits: int = 0  # files whose key is a present model's: unchanged, at their model's path
    hit_keys: list[str] = field(default_factory=list)
    rest: list[SeenFile] = field(default_factory=list)  # files that are no hit, not pending
    seen_pending: set[str] = field(default_factory=set)  # pending files found
    present: set[str] = field(default_factory=set)  # models found at their path, unchanged
    known: list[tuple[SeenFile, str]] = field(default_factory=list)  # other cached files
    unresolved: list[SeenFile] = field(default_factory=list)  # files the cache does not know
    skipped: set[str] = field(default_factory=set)  # files still being written: left alone
    problems: list[WalkProblem] = field(default_factory=list)
    unreadable: tuple[str, ...] = ()  # folders that could not be read, as prefixes
    # Each sidecar found, with the model file it belongs to:
    # (model file path, sidecar path, sidecar kind, size, mtime_ns).
    sidecars: list[tuple[str, str, str, int, int]] = field(default_factory=list)

    @property
    def hit_paths(self) -> list[str]:
        return [key.split(":", 3)[3] for key in self.hit_keys]

    def resolve_rest(self, snap: Snapshot) -> None:
        """Sort the rest by their cache rows: present, known elsewhere, or unresolved."""
        cache, model_at = snap.cache, snap.model_at
        if snap.complete:  # the hits' models, by their rows (a path two models share)
            self.present.update(cache[path][4] for path in self.hit_paths if path in cache)
        for f in self.rest:
            row = cache.get(f.path)
            if row is not None and (row[1], row[2], row[3]) == (f.size, f.mtime_ns, f.inode):
                if model_at.get(f.path) == row[4]:
                    self.present.add(row[4])
                else:
                    self.known.append((f, row[4]))
            else:
                self.unresolved.append(f)

    def defer_unsettled(self, settled: Callable[[SeenFile], bool]) -> None:
        """Leave out the unresolved files ``settled`` says are still being written."""
        keep: list[SeenFile] = []
        for f in self.unresolved:
            if settled(f):
                keep.append(f)
            else:
                self.skipped.add(f.path)
        self.unresolved = keep


def walk(walker: Walker, on_count: Callable[[int], None]) -> Walked:
    """Walk every folder once (one stat per model file), keeping each file's ``file_key``;
    ``on_count(seen)`` as it goes."""
    found = Walked()
    folders = found.folders
    seen = 0
    reported = 0
    for prefix, folder_type, files, sidecars in walker.folders():
        if sidecars:
            found.sidecars.extend(_pair_sidecars(prefix, files, sidecars))
        folders.append(
            (
                folder_type,
                [f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{prefix}{name}" for name, st in files],
            )
        )
        seen += len(files)
        if seen - reported >= 1024:
            reported = seen
            on_count(seen)
    found.seen = seen
    found.problems = list(walker.problems)
    found.unreadable = prefixes(walker.unreadable)
    return found


def _pair_sidecars(
    prefix: str, files: list[tuple[str, os.stat_result]], sidecars: Sequence[Sidecar]
) -> Iterator[tuple[str, str, str, int, int]]:
    """Each sidecar of a folder with each model file of its stem."""
    by_stem: dict[str, list[str]] = {}
    for name, _ in files:
        by_stem.setdefault(os.path.splitext(name)[0], []).append(prefix + name)
    for name, stem, size, mtime_ns in sidecars:
        for model_path in by_stem.get(stem, ()):
            yield model_path, prefix + name, kind_of(name, stem), size, mtime_ns


def _seen_file(key: str, folder_type: str) -> SeenFile:
    size, mtime_ns, inode, path = key.split(":", 3)
    return SeenFile(path, int(size), int(mtime_ns), int(inode), folder_type)


def sort_files(walked: Walked, keys: set[str], pending: dict[str, PendingLocation]) -> None:
    """Hits, pending files and the rest. This loop runs once per file of the library: a
    set lookup per file (the keys were built during the walk)."""
    hit_keys, rest, seen_pending = walked.hit_keys, walked.rest, walked.seen_pending
    for folder_type, folder_keys in walked.folders:
        if pending:
            for key in folder_keys:
                path = key.split(":", 3)[3]
                if path in pending:
                    seen_pending.add(path)
                elif key in keys:
                    hit_keys.append(key)
                else:
                    rest.append(_seen_file(key, folder_type))
            continue
        for key in folder_keys:
            if key in keys:
                hit_keys.append(key)
            else:
                rest.append(_seen_file(key, folder_type))
    walked.hits = len(hit_keys)
    walked.folders = []  # done with


@dataclass
class Snapshot:
    """What the library knows that a scan needs (see the module's docstring)."""

    scope: tuple[str, ...]  # the scanned folders, as path prefixes
    partial: bool  # folders below the roots (the watcher's), not the roots themselves
    cache: dict[str, CacheRow]  # hash-cache rows, by path (at least the rest's)
    pending: dict[str, PendingLocation]  # pending imports by path
    model_path: dict[str, str]  # sha256 -> path of the models this scan considers
    model_at: dict[str, str]  # path -> sha256 (a present model wins a path it shares)
    missing: set[str]  # models flagged missing
    # True: model_path holds every model. False: it holds those the partial snapshot
    # loads, and every other model in scope not flagged missing is present.
    complete: bool = True
    # A partial scan's models outside its folders whose file is gone (``look_elsewhere``).
    gone: set[str] = field(default_factory=set)

    def look_elsewhere(
        self, walked: Walked, with_sizes: Callable[[list[int]], list[tuple[str, str, bool]]]
    ) -> None:
        """A partial scan: the models outside its folders that an unknown file here may be,
        whose own file is gone, count as vanished (a full scan would relink them), even if
        the event for their old folder has not come yet."""
        if not self.partial or not walked.unresolved:
            return
        for path, sha, missing in with_sizes(sorted({f.size for f in walked.unresolved})):
            if missing or below(path, self.scope) or not _gone(path):
                continue
            self.gone.add(sha)
            self.model_path.setdefault(sha, path)
            self.model_at.setdefault(path, sha)

    @classmethod
    def load(
        cls,
        db: Library,
        scope: Sequence[str],
        walked: Walked,
        expected: int,
        pending: dict[str, PendingLocation],
        *,
        partial: bool = False,
        outside: int = 1,
    ) -> Snapshot:
        """A partial snapshot when the quick check holds (see the module), else complete."""
        rest = walked.rest
        if walked.hits == expected and len(rest) <= MAX_LOOKUPS:
            cache = db.hash_cache.rows([f.path for f in rest]) if rest else {}
            if all(
                (row := cache.get(f.path)) is not None
                and (row[1], row[2], row[3]) == (f.size, f.mtime_ns, f.inode)
                for f in rest
            ):
                found = db.models.locate(
                    sha256s=[row[4] for row in cache.values()], paths=[f.path for f in rest]
                )
                if not partial and outside:  # a full scan checks those files one by one
                    found += db.models.outside(scope)
                lost = db.models.paths(missing=True)
                lost += [(path, sha) for path, sha, missing in found if missing]
                kept = [(path, sha) for path, sha, missing in found if not missing]
                return cls._of(scope, partial, cache, pending, lost, kept, complete=False)
        cache = db.hash_cache.below(scope)
        lost, kept = db.models.paths(missing=True), db.models.paths(missing=False)
        return cls._of(scope, partial, cache, pending, lost, kept, complete=True)

    @classmethod
    def _of(
        cls,
        scope: Sequence[str],
        partial: bool,
        cache: dict[str, CacheRow],
        pending: dict[str, PendingLocation],
        lost: list[tuple[str, str]],
        kept: list[tuple[str, str]],
        *,
        complete: bool,
    ) -> Snapshot:
        """From ``(path, sha256)`` of the models flagged missing and of the others."""
        model_at = dict(lost)
        model_at.update(kept)  # a present model wins a path it shares
        model_path = {sha: path for path, sha in lost}
        model_path.update({sha: path for path, sha in kept})
        missing = {sha for _, sha in lost}
        return cls(
            prefixes(scope), partial, cache, pending, model_path, model_at, missing, complete
        )


@dataclass
class Settled:
    """Each model's state after the walk."""

    restore: list[str]  # flagged missing, but found again
    vanished: dict[str, ModelLocation]  # not found where the library says


def settle(
    snap: Snapshot, walked: Walked, sizes: Callable[[list[str]], dict[str, int | None]]
) -> Settled:
    """A model in scope not present has vanished, unless its folder could not be read or
    its file is still being written (unknown). Outside the scope: a full scan checks the
    file (outside every root); a partial scan leaves the model alone, except that one
    flagged missing may be relinked to a file it found. ``sizes`` loads the sizes of the
    vanished ones (the only models whose size matters)."""
    restore: list[str] = []
    vanished_at: dict[str, str] = {}
    for sha, path in snap.model_path.items():
        if sha in walked.present:
            if sha in snap.missing:
                restore.append(sha)
        elif below(path, walked.unreadable) or path in walked.skipped:
            continue
        elif below(path, snap.scope):
            if snap.complete or sha in snap.missing:
                vanished_at[sha] = path
        elif snap.partial:
            if sha in snap.missing or sha in snap.gone:
                vanished_at[sha] = path
        elif os.path.isfile(path):
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


def walked_paths(walked: Walked) -> set[str]:
    """Every path the walk found (hits, the rest, pending and unsettled files)."""
    found = set(walked.hit_paths)
    found.update(f.path for f in walked.rest)
    found.update(walked.seen_pending)
    found.update(walked.skipped)
    return found


def lost_copies(recorded: dict[str, str], walked: Walked) -> list[str]:
    """The recorded copies in scope (``recorded``: path -> sha256) the walk did not find
    (a folder that could not be read says nothing)."""
    if not recorded:
        return []
    found = walked_paths(walked)
    return sorted(p for p in recorded if p not in found and not below(p, walked.unreadable))


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
    copies: list[tuple[str, str, int]] = field(default_factory=list)  # (sha256, path, size)
    lost_copies: list[str] = field(default_factory=list)  # recorded copies not found
    sidecars: list[tuple[str, str, str, int, int]] = field(default_factory=list)  # Walked's
    unreadable: tuple[str, ...] = ()  # Walked's
    # (id, path) of the files an earlier scan queued and did not promote (it failed, was
    # cancelled or killed first), found again: an immediate-hashing scan promotes them.
    waiting: list[tuple[int, str]] = field(default_factory=list)


def resolve(
    snap: Snapshot,
    walked: Walked,
    settled: Settled,
    candidates: list[SeenFile],
    hashed: list[tuple[SeenFile, str]],
) -> Plan:
    """Confirmations at a model's own path first, then relinks, duplicates, new files.
    (A partial snapshot has no unresolved file, so nothing was hashed.)"""
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
            plan.copies.append((sha, f.path, f.size))
    plan.still_missing = [m for sha, m in vanished.items() if sha not in claimed]
    plan.stale_pending = [
        p.id
        for path, p in snap.pending.items()
        if path not in walked.seen_pending
        and p.source == "scan"
        and p.status in ("new", "error")
        and below(path, snap.scope)
        and not below(path, walked.unreadable)
        and path not in walked.skipped
    ]
    return plan
