"""The SHA-256 service: chunked, cancellable, pausable hashing with a persistent cache.

* ``HashJob`` hashes one file chunk by chunk into a reused buffer. It keeps its digest
  state and byte offset when paused, so a resumed job reads only the bytes it has not
  hashed yet (within one process: a hash state cannot be saved to disk).
* ``JobControl`` (of ``hikaze_mm.jobs``) is the switch a caller flips to pause, resume or
  cancel running hash jobs; they look at it between chunks.
* ``HashService`` runs jobs in a thread pool (hashlib and file reads release the GIL, so
  threads hash in parallel on all cores) and keeps a cache keyed on
  (path, size, mtime_ns, inode): an unchanged file is never read twice.
* A file whose stat changes while it is hashed is reported with ``FileChangedError`` and
  its digest is thrown away.
* Only regular files are hashed: a FIFO, a device, a socket or a folder is refused with
  ``NotARegularFileError`` (an OSError) without a byte read, so no caller can hang on one.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_module
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hikaze_mm.jobs import JobCancelled, JobControl

if TYPE_CHECKING:
    from hikaze_mm.database.interfaces import Library

DEFAULT_CHUNK = 4 * 1024 * 1024
ProgressCallback = Callable[[int, int], None]


def short_hash(sha256: str) -> str:
    """The AutoV2 short hash (as shown by A1111 and Civitai): the first 10 hex characters."""
    return sha256[:10]


class TailHash:
    """AutoV3 in the same read as the SHA-256: the SHA-256 of a safetensors file's bytes
    after its header (8 bytes of little-endian length N, then N bytes of JSON); its first
    12 hex digits, upper case, are the AutoV3 that A1111 and Civitai name LoRAs and
    embeddings by."""

    def __init__(self) -> None:
        self._head = b""
        self.start: int | None = None  # where the tensors begin
        self._hasher = hashlib.sha256()

    def update(self, data: memoryview, offset: int) -> None:
        """Feed the bytes read at ``offset`` (chunks come in file order)."""
        if self.start is None:
            if offset < 8:
                self._head += bytes(data[: 8 - offset])
            if len(self._head) < 8:
                return
            self.start = 8 + int.from_bytes(self._head[:8], "little")
        skip = self.start - offset
        if skip < len(data):
            self._hasher.update(data[max(0, skip) :])

    def autov3(self, size: int) -> str:
        """The AutoV3 of a file of ``size`` bytes; "" when it has no safetensors header
        (known to have none, unlike None: not computed)."""
        if self.start is None or self.start > size:
            return ""
        return self._hasher.hexdigest()[:12].upper()


class HashCancelled(JobCancelled):
    """The job was cancelled; nothing was returned."""


class HashPaused(Exception):
    """The job stopped at a chunk boundary; ``run()`` again continues where it stopped."""


class FileChangedError(Exception):
    """The file changed while it was hashed; the digest was thrown away."""


class NotARegularFileError(OSError):
    """Only regular files are hashed; ``strerror`` says what the path is instead."""

    def __init__(self, path: str, mode: int) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({_file_kind(mode)})", path)


def _file_kind(mode: int) -> str:
    kinds = (
        (stat_module.S_ISDIR, "a folder"),
        (stat_module.S_ISFIFO, "a FIFO"),
        (stat_module.S_ISCHR, "a character device"),
        (stat_module.S_ISBLK, "a block device"),
        (stat_module.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def open_regular(path: str) -> int:
    """A read-only descriptor of the regular file ``path``; NotARegularFileError otherwise.

    The path is checked before it is opened (opening some devices has effects), and the
    descriptor after (the path may have been replaced in between); it is opened with
    O_NONBLOCK, so a FIFO with no writer cannot block the open.
    """
    mode = os.stat(path).st_mode
    if not stat_module.S_ISREG(mode):
        raise NotARegularFileError(path, mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat_module.S_ISREG(mode):
            raise NotARegularFileError(path, mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class HashResult:
    path: str
    sha256: str
    stat: FileStat
    cached: bool
    bytes_read: int
    # When asked for (``hash_file(autov3=True)``) or cached: "" for a file without a
    # safetensors header, None when never computed.
    autov3: str | None = None

    @property
    def short_hash(self) -> str:
        return short_hash(self.sha256)


class HashJob:
    """One file's hash, resumable at any chunk boundary within this process."""

    def __init__(
        self, path: str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK, *, autov3: bool = False
    ) -> None:
        self.path = str(path)
        self.tail = TailHash() if autov3 else None
        self.chunk_size = chunk_size
        self.offset = 0
        self.bytes_read = 0
        self.total: int | None = None
        self._hasher = hashlib.sha256()
        self._start_stat: FileStat | None = None

    def run(
        self, control: JobControl | None = None, progress: ProgressCallback | None = None
    ) -> str:
        """Hash from the current offset to the end; return the hex digest.

        Raises HashPaused (state kept), HashCancelled, FileChangedError or OSError
        (NotARegularFileError for anything but a regular file).
        """
        buf = bytearray(self.chunk_size)
        view = memoryview(buf)
        with open(open_regular(self.path), "rb", buffering=0) as f:
            stat = FileStat.of(os.fstat(f.fileno()))
            if self._start_stat is None:
                self._start_stat = stat
                self.total = stat.size
            elif stat != self._start_stat:
                raise FileChangedError(f"{self.path} changed while its hashing was paused")
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            if self.offset:
                f.seek(self.offset)
            update = self._hasher.update
            tail = self.tail
            while True:
                if control is not None:
                    if control.cancelled:
                        raise HashCancelled(self.path)
                    if control.paused:
                        raise HashPaused(self.path)
                n = f.readinto(buf)
                if not n:
                    break
                update(view[:n])
                if tail is not None:
                    tail.update(view[:n], self.offset)
                self.offset += n
                self.bytes_read += n
                if progress is not None:
                    progress(self.offset, self.total or 0)
            end_stat = FileStat.of(os.fstat(f.fileno()))
        try:
            path_stat = FileStat.of(os.stat(self.path))
        except OSError as exc:
            raise FileChangedError(f"{self.path} vanished while it was hashed") from exc
        if end_stat != self._start_stat or path_stat != self._start_stat:
            raise FileChangedError(f"{self.path} changed while it was hashed")
        if self.offset != self._start_stat.size:
            raise FileChangedError(f"{self.path} changed size while it was hashed")
        return self._hasher.hexdigest()

    @property
    def start_stat(self) -> FileStat | None:
        return self._start_stat


def _with_hook(
    progress: ProgressCallback | None, hook: Callable[[str, int], None], path: str
) -> ProgressCallback:
    def both(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)
        hook(path, done)

    return both


class HashService:
    """Hashes files in a thread pool, with the cache in the library database."""

    def __init__(
        self,
        db: Library | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        workers: int | None = None,
    ) -> None:
        self.db = db
        self.chunk_size = chunk_size
        self.workers = workers or max(1, os.cpu_count() or 1)
        # Called as (path, bytes done) after every chunk read, in the hashing thread: a
        # point where a test (or a tool) can act at a known chunk, e.g. pause a run.
        self.on_chunk: Callable[[str, int], None] | None = None
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="hikaze-hash")
        self._counted = threading.Lock()
        self._hashed_files = 0
        self._hashed_bytes = 0

    def totals(self) -> dict[str, int]:
        """``{hashed_files, hashed_bytes}``: the files this process has read to hash since
        it started (not the cache's answers), and their bytes."""
        with self._counted:
            return {"hashed_files": self._hashed_files, "hashed_bytes": self._hashed_bytes}

    def lookup_cache(self, path: str | os.PathLike[str]) -> HashResult | None:
        """The cached hash of ``path`` if its (size, mtime_ns, inode) still match; reads no data."""
        if self.db is None:
            return None
        key = str(Path(path).absolute())
        stat = FileStat.of(os.stat(key))
        entry = self.db.hash_cache.entry(key, stat.size, stat.mtime_ns, stat.inode)
        if entry is None:
            return None
        return HashResult(key, entry[0], stat, cached=True, bytes_read=0, autov3=entry[1])

    def lookup_cache_many(self, paths: Iterable[str | os.PathLike[str]]) -> dict[str, HashResult]:
        """``lookup_cache`` of many files in one query: the hits, by the path given (a
        file that cannot be stat'ed is no hit)."""
        if self.db is None:
            return {}
        stats: dict[str, tuple[str, FileStat]] = {}
        for path in paths:
            key = str(Path(path).absolute())
            try:
                stats[str(path)] = (key, FileStat.of(os.stat(key)))
            except OSError:
                continue
        entries = self.db.hash_cache.entries([key for key, _ in stats.values()])
        absent = {key: (st.size, st.mtime_ns, st.inode) for key, st in stats.values()}
        adopted = self.db.hash_cache.adopt({k: v for k, v in absent.items() if k not in entries})
        entries.update((key, (*absent[key], *found)) for key, found in adopted.items())
        hits: dict[str, HashResult] = {}
        for path, (key, stat) in stats.items():
            entry = entries.get(key)
            if entry is not None and entry[:3] == (stat.size, stat.mtime_ns, stat.inode):
                hits[path] = HashResult(
                    key, entry[3], stat, cached=True, bytes_read=0, autov3=entry[4]
                )
        return hits

    def hash_file(
        self,
        path: str | os.PathLike[str],
        *,
        control: JobControl | None = None,
        progress: ProgressCallback | None = None,
        use_cache: bool = True,
        on_job: Callable[[HashJob], None] | None = None,
        autov3: bool = False,
        store: bool = True,
    ) -> HashResult:
        """Hash ``path`` in the calling thread, blocking while ``control`` is paused.

        A pause keeps the job's state, so resuming reads only the remaining bytes. With
        ``autov3`` (LoRAs and embeddings) the AutoV3 is computed in the same read; a
        cache hit returns the cached one, or None when it was never computed (the file is
        not read again for it: the AutoV3 backfill job does that). ``store=False``: the
        caller records the result in the cache (``store_many``).
        """
        key = str(Path(path).absolute())
        if use_cache:
            hit = self.lookup_cache(key)
            if hit is not None:
                return hit
        if self.on_chunk is not None:
            progress = _with_hook(progress, self.on_chunk, key)
        job = HashJob(key, self.chunk_size, autov3=autov3)
        if on_job is not None:
            on_job(job)
        while True:
            try:
                sha = job.run(control, progress)
                break
            except HashPaused:
                assert control is not None
                control.wait_until_running()
        stat = job.start_stat
        assert stat is not None
        with self._counted:
            self._hashed_files += 1
            self._hashed_bytes += job.bytes_read
        v3 = job.tail.autov3(stat.size) if job.tail is not None else None
        if store and self.db is not None and not self.db.read_only:  # a reader only reads
            self.db.hash_cache.store(key, stat.size, stat.mtime_ns, stat.inode, sha, v3)
        return HashResult(key, sha, stat, cached=False, bytes_read=job.bytes_read, autov3=v3)

    def store_many(self, results: Iterable[HashResult]) -> None:
        """Record files' hashes (read, not cached ones) in the cache, in one unit of work."""
        rows = [
            (r.path, r.stat.size, r.stat.mtime_ns, r.stat.inode, r.sha256, r.autov3)
            for r in results
            if not r.cached
        ]
        if rows and self.db is not None and not self.db.read_only:  # a reader only reads
            self.db.hash_cache.store_many(rows)

    def submit(self, fn: Callable[..., object], *args: object):
        """Run ``fn`` on the hashing pool (for callers that hash several files at once)."""
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
