"""The contract of the library's stores: what a second backend must implement.

Everything above ``database/`` names a ``Library`` (never ``DatabaseManager``) and reaches
the rows through its stores, never through SQL, so a backend is added by implementing
these protocols and teaching ``open_library`` its configuration; nothing above them
changes. ``DatabaseManager`` is the SQLite library and ``postgres.PostgresLibrary`` the
PostgreSQL one; both hand their stores (one implementation each, taking the SQL that
differs from the library's ``dialect``) connections, units of work and locks.
``tests/test_database.py`` checks that the SQLite library has every method, and
``tests/test_store_contract.py`` runs the behaviour every backend must show against each
library factory (SQLite and PostgreSQL).

Rules every implementation keeps:

* **Units of work.** ``Library.transaction()`` makes the calls inside it one atomic
  change; nested calls join the outer unit (savepoints). A store call outside one is
  atomic by itself. A model or a state document read inside a unit is read to be
  changed: no other writer changes it until the unit ends (SQLite's write lock holds the
  whole library from the unit's start; PostgreSQL locks the row, or the document's key),
  so a read-modify-write (a PATCH's meta merge, a journal) loses no one's change.
* **Threads.** Any thread may call; ``release_thread()`` frees what a finished thread
  held (a job calls it when it ends).
* **Records.** A model or pending record is a dict of its columns plus ``meta`` (a dict)
  and ``tags`` (``[{id, name, color}]`` by name); a model's ``missing`` is a bool.
* **Errors.** Bad values raise ``ValidationError``; everything else is one of the storage
  errors of ``database/errors.py``: unknown rows ``StorageNotFoundError``, a clash (a tag
  name, a pending path) ``StorageConflictError``, a library another writer holds too long
  ``StorageBusyError``, one that cannot be reached or read ``StorageUnavailableError``.
  Never a driver's exception (the SQLite stores translate theirs: ``sqlite_errors``).
* **Hashes** are 64 lowercase hex characters (``normalize_sha256``); tag names are
  unique regardless of (ASCII) case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hikaze_mm.database.changes import ChangeCallback
from hikaze_mm.database.hash_cache import CacheRow
from hikaze_mm.database.holds import Hold
from hikaze_mm.database.listing import ModelQuery
from hikaze_mm.database.locations import Locations
from hikaze_mm.database.pending import PendingLocation
from hikaze_mm.database.values import TagRef

Record = dict[str, Any]


@runtime_checkable
class ModelStoreContract(Protocol):
    """The library's models, by SHA-256."""

    def get(self, sha256: str) -> Record | None: ...
    def get_by_path(self, path: str | Path) -> Record | None: ...
    def exists(self, sha256: str) -> bool: ...
    def paths(self, *, missing: bool) -> list[tuple[str, str]]:
        """``(path, sha256)`` of every model flagged missing (or of every other)."""

    def outside(self, folders: Sequence[str]) -> list[tuple[str, str, bool]]:
        """``(path, sha256, missing)`` of every model whose path is not below ``folders``."""

    def locate(
        self, *, sha256s: Sequence[str] = (), paths: Sequence[str] = ()
    ) -> list[tuple[str, str, bool]]:
        """``(path, sha256, missing)`` of the models with one of these hashes or paths."""

    def find_by_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """sha256 of the models whose hash starts with ``prefix`` (an AutoV2, say)."""

    def find_by_autov3(self, autov3: str) -> list[str]: ...
    def with_file_name(self, name: str, limit: int = 10) -> list[str]:
        """sha256 of the models whose file is ``name`` (or ends with that path tail)."""

    def without_autov3(self, types: Sequence[str]) -> list[tuple[str, str]]:
        """``(sha256, path)`` of the present models of these types without an AutoV3."""

    def with_sizes(self, sizes: Sequence[int]) -> list[tuple[str, str, bool]]:
        """``(path, sha256, missing)`` of the models of these sizes."""

    def sizes(self, sha256s: Sequence[str]) -> dict[str, int | None]: ...
    def meta_values(self, sha256s: Sequence[str], key: str) -> dict[str, Any]:
        """``meta[key]`` (a key or a dotted path) of those models that have it, in one
        batch (a listing page's trigger words)."""

    def meta_fields(
        self, sha256s: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Any]]: ...
    def without_meta(self, key: str, *, unless_after: str | None = None, now: int = 0) -> list[str]:
        """Every model whose ``meta[key]`` is absent or null, except, with ``unless_after``
        (a meta key holding a time in ms), those whose time is after ``now``."""

    def with_meta(self, key: str) -> list[str]:
        """Every model whose ``meta[key]`` (a dotted path) is set and not null."""

    def with_updates(self) -> list[Record]:
        """The models whose ``meta.update`` names a version, with their Civitai block."""

    def upsert(
        self, data: Record, tags: Iterable[TagRef] = (), *, on_conflict: str = "update"
    ) -> tuple[Record, str]:
        """Insert, or update (``update``: new values win; ``merge``: fill empty fields);
        returns the record and ``created``, ``updated`` or ``merged``."""

    def update(self, sha256: str, **fields: Any) -> Record: ...
    def mark_used(self, sha256: str) -> Record:
        """``last_used_at`` now, ``use_count`` + 1."""

    def relink(self, sha256: str, path: str) -> bool:
        """New path, ``missing`` cleared (and no longer an extra copy); False if the model
        is gone."""

    def insert_new(self, models: Sequence[tuple[Record, Sequence[int]]]) -> set[str]:
        """Insert new models (``upsert``'s data, plus ``probed``: a header's base) with
        their tag ids; hashes already there are skipped. The hashes inserted."""

    def set_missing(self, sha256s: Sequence[str], missing: bool) -> int: ...
    def set_probed_base(self, sha256: str, base: str | None) -> bool:
        """Set a probed base over an empty one or a probe's (``meta.sources.base`` =
        ``"probe"``), never over another source's; True when the model changed."""

    def probe_targets(self, *, every: bool = False) -> list[tuple[str, str]]:
        """``(sha256, path)`` of present models with no base (``every``: all but user-set)."""

    def add_files(self, rows: Sequence[tuple[str, str, int | None]]) -> int:
        """Record ``(sha256, path, size)``: the content of a model was found at ``path``
        (an extra copy; the primary path, ``models.path``, is not stored)."""

    def remove_files(self, paths: Sequence[str], *, sha256s: Sequence[str] | None = None) -> int:
        """Forget the copies at ``paths`` (with ``sha256s``: only those of that model)."""

    def files(self, sha256s: Sequence[str]) -> dict[str, list[str]]:
        """Every recorded path of these models, the present primary path first."""

    def copies_below(self, folders: Sequence[str]) -> dict[str, str]:
        """``path -> sha256`` of the recorded extra copies below ``folders``."""

    def duplicates(self) -> list[Record]:
        """``{sha256, name, size_bytes, paths, wasted_bytes}`` of models found at several
        paths, the largest waste first."""

    def add_tags(self, sha256: str, tags: Iterable[TagRef]) -> list[int]: ...
    def remove_tags(self, sha256: str, tags: Iterable[TagRef]) -> int: ...
    def retag(
        self, sha256s: Sequence[str], *, add: Sequence[int], remove: Sequence[int]
    ) -> None: ...
    def delete(self, sha256: str) -> bool: ...


@runtime_checkable
class TagStoreContract(Protocol):
    """Tags, and the links of models and pending models to them."""

    def create(self, name: str, color: str | None = None) -> Record: ...
    def insert(self, name: str, color: str | None, created_at: int | None, *, id: int) -> int:
        """A new tag under ``id`` when free (the legacy import keeps old ids)."""

    def ensure(self, name: str, color: str | None = None) -> Record: ...
    def ensure_ids(self, names: Sequence[str], color: str | None = None) -> list[int]: ...
    def ids_by_name(self, names: Sequence[str]) -> dict[str, int]: ...
    def get(self, tag: TagRef) -> Record | None: ...
    def list(self) -> list[Record]:
        """Every tag with ``model_count`` and ``pending_count``."""

    def count(self) -> dict[str, int]: ...
    def update(self, tag_id: int, *, name: str | None = None, color: object = ...) -> Record: ...
    def delete(self, tag_id: int) -> bool: ...
    def resolve(
        self, refs: Iterable[TagRef], *, create: bool, missing_ok: bool = False
    ) -> list[int]: ...
    def for_models(self, sha256s: Sequence[str]) -> dict[str, list[Record]]: ...


@runtime_checkable
class PendingStoreContract(Protocol):
    """Models whose hash is not known yet (Stage 2 promotes them)."""

    def add(self, data: Record, tags: Iterable[TagRef] = ()) -> int: ...
    def add_many(self, rows: Sequence[Record]) -> list[tuple[int, str]]:
        """Queue many (no ids, no tags); paths already pending are skipped. ``(id, path)``
        of each row added."""

    def add_tags(self, pending_id: int, tags: Iterable[TagRef]) -> None: ...
    def get(self, pending_id: int) -> Record | None: ...
    def get_many(self, pending_ids: Sequence[int]) -> dict[int, Record]: ...
    def get_by_path(self, path: str | Path) -> Record | None: ...
    def list(
        self, *, status: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[Record]: ...
    def count(self, status: str | None = None) -> int: ...
    def counts(self) -> dict[str, int]: ...
    def ids(self, statuses: Sequence[str]) -> list[tuple[int, str, int | None]]: ...
    def locations(self) -> dict[str, PendingLocation]: ...
    def next_free_id(self, at_least: int) -> int: ...
    def update(self, pending_id: int, **fields: Any) -> None: ...
    def reset_status(self, old: str, new: str, *, keep: Iterable[int] = ()) -> int: ...
    def remove(self, pending_id: int) -> bool: ...
    def remove_many(self, pending_ids: Sequence[int]) -> int: ...
    def remove_stale_scan_rows(self, pending_ids: Sequence[int]) -> list[int]: ...
    def claim(
        self, pending_ids: Sequence[int], owner: str, lease_ms: int, *, dead: Sequence[str] = ()
    ) -> list[int]:
        """Claim the rows nobody holds (or whose lease ran out, or whose owner is among
        ``dead``) for ``owner``."""

    def renew(self, pending_ids: Sequence[int], owner: str, lease_ms: int) -> int: ...
    def release(self, pending_ids: Sequence[int], owner: str) -> None: ...


@runtime_checkable
class HashCacheStoreContract(Protocol):
    """A file's hash by (path, size, mtime_ns, inode)."""

    def lookup(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None: ...
    def entry(
        self, path: str, size: int, mtime_ns: int, inode: int
    ) -> tuple[str, str | None] | None:
        """``(sha256, autov3)`` of this exact file version, or None."""

    def entries(self, paths: Sequence[str]) -> dict[str, tuple[int, int, int, str, str | None]]:
        """``(size, mtime_ns, inode, sha256, autov3)`` of the cached paths among ``paths``."""

    def store(
        self,
        path: str,
        size: int,
        mtime_ns: int,
        inode: int,
        sha256: str,
        autov3: str | None = None,
    ) -> None: ...
    def store_many(self, rows: Sequence[tuple[str, int, int, int, str, str | None]]) -> None:
        """``store`` of each ``(path, size, mtime_ns, inode, sha256, autov3)``, as one unit."""

    def adopt(self, files: dict[str, tuple[int, int, int]]) -> dict[str, tuple[str, str | None]]:
        """``(sha256, autov3)`` of the files (``path -> (size, mtime_ns, inode)``) at
        locations another host hashed, now cached here too; none read."""

    def forget(self, path: str) -> None: ...
    def below(self, folders: Sequence[str]) -> dict[str, CacheRow]: ...
    def rows(self, paths: Sequence[str]) -> dict[str, CacheRow]: ...
    def model_file_keys(self, folders: Sequence[str]) -> tuple[set[str], int, int]:
        """The ``file_key`` of each cached file below ``folders`` that is its (present)
        model's file, how many present models lie below ``folders``, how many elsewhere."""


@runtime_checkable
class ImageSeqStoreContract(Protocol):
    """The numbers of models' images, claimed across every host of the catalog, and the
    orders chosen for them."""

    def claim(self, sha256: str, at_least: int = 0) -> int: ...
    def orders(self) -> dict[str, list[int]]: ...
    def set_order(self, sha256: str, seqs: list[int] | None) -> None: ...


@runtime_checkable
class SidecarStoreContract(Protocol):
    """Sidecar files read, by path with (size, mtime_ns); preview pixel digests by model."""

    def below(self, folders: Sequence[str]) -> dict[str, tuple[int, int]]: ...
    def record(self, rows: Sequence[tuple[str, int, int, str | None]]) -> None: ...
    def forget(self, paths: Sequence[str]) -> None: ...
    def rename(self, moves: Sequence[tuple[str, str]]) -> int:
        """Rows of moved sidecars follow them: ``(old path, new path)`` pairs."""

    def has_pixels(self, sha256: str, digest: str) -> bool: ...
    def add_pixels(self, sha256: str, digest: str, seq: int) -> None: ...


@runtime_checkable
class StateStoreContract(Protocol):
    """Small JSON documents by key (run states, the promotion journal, reports)."""

    def hold(self, key: str) -> None: ...
    def get(self, key: str) -> Record | None: ...
    def set(self, key: str, value: Record) -> None: ...


@runtime_checkable
class LegacyLedgerStoreContract(Protocol):
    """What the one-time legacy import has done (so a re-run duplicates nothing)."""

    def is_imported(self, path: str) -> bool: ...
    def sha_imported(self, sha256: str) -> bool: ...
    def record_model(
        self, path: str, legacy_id: int, *, sha256: str | None = None, pending_id: int | None
    ) -> None: ...
    def tag_for(self, name: str) -> int | None: ...
    def record_tag(self, name: str, tag_id: int) -> None: ...
    def reservation(self, sha256: str, source_sha: str) -> tuple[int, bool] | None: ...
    def reserve(self, sha256: str, source_sha: str, seq: int) -> None: ...
    def mark_done(self, sha256: str, source_shas: Iterable[str]) -> None: ...


@runtime_checkable
class ListingStoreContract(Protocol):
    """The library as clients list it: a page, facets and totals."""

    def page(self, query: ModelQuery) -> tuple[int, list[Record]]: ...
    def page_json(self, query: ModelQuery) -> tuple[int, list[tuple[str, str]]]:
        """The same page as ``(total, [(sha256, item)])``, each item the text of a JSON
        object still open (no closing brace) for the caller's fields."""

    def type_counts(self, *, include_missing: bool = False) -> list[Record]: ...
    def base_counts(self, *, include_missing: bool = False) -> list[Record]: ...
    def totals(self) -> dict[str, int]: ...
    def all_sha256s(self) -> list[str]: ...
    def search_ready(self) -> bool:
        """Whether the text index covers every model (else ``q`` falls back to a scan)."""

    def build_search_index(self, limit: int = 2000) -> bool:
        """Index the next ``limit`` models lacking a document; True once all have one."""

    def rebuild_search_index(self) -> None:
        """Drop every document and mark the index unready (then build it again)."""

    def tidy_search_index(self, max_segments: int = 8) -> bool:
        """Compact the text index after bulk writes when it needs it; True if it did
        (a reader never does)."""


@runtime_checkable
class GenerationStoreContract(Protocol):
    """The images the HikazeSaveImage node saved, and the library's models each used."""

    def add(self, record: Record, resources: Sequence[Record]) -> int:
        """One generation (``file``, prompt... ``params``) and its resources
        (``{sha256, role, name, weight}``; those not in the library left out); its id."""

    def get(self, generation_id: int) -> Record | None: ...
    def for_model(self, sha256: str, offset: int = 0, limit: int = 50) -> tuple[int, list[Record]]:
        """``(total, page)`` of the model's generations, newest first, with resources."""


@runtime_checkable
class DownloadStoreContract(Protocol):
    """The download queue and its history (a record: its columns, ``request``, ``meta``)."""

    def add(self, source: str, **fields: Any) -> int:
        """A new download (status ``queued`` unless given); its id."""

    def get(self, download_id: int) -> Record | None: ...
    def list(self, limit: int = 500) -> list[Record]:
        """The queue (oldest first), then the history (newest first)."""

    def unfinished(self) -> list[Record]:
        """The downloads not over (queued, running, paused, verifying), oldest first."""

    def update(self, download_id: int, **fields: Any) -> Record:
        """Set fields (``StorageNotFoundError`` for an unknown id); the record."""

    def delete(self, download_id: int) -> bool: ...


@runtime_checkable
class Library(Protocol):
    """One library: its stores, its units of work, its schema.

    ``read_only``: opened to read only (it never creates, upgrades or writes anything).
    """

    read_only: bool
    head_revision: int  # the revision this release builds and reads (each backend its own)
    host_name: str  # the host its change events name
    locations: Locations  # this host's root names: how stored paths map to its own
    cache_host: str  # whose rows of the hash and sidecar caches are this process's
    shared: bool  # several hosts may use it at once (and number images in it)

    models: ModelStoreContract
    tags: TagStoreContract
    pending: PendingStoreContract
    hash_cache: HashCacheStoreContract
    sidecars: SidecarStoreContract
    image_seqs: ImageSeqStoreContract
    state: StateStoreContract
    legacy_ledger: LegacyLedgerStoreContract
    listing: ListingStoreContract
    generations: GenerationStoreContract
    downloads: DownloadStoreContract

    def transaction(self) -> AbstractContextManager[Any]: ...
    def release_thread(self) -> None: ...
    def init_db(self) -> int:
        """Create or upgrade the library (backing it up first); returns its revision."""

    def schema_version(self) -> int: ...
    def check_readable(self) -> int:
        """For a read-only library: its revision, if this release reads it as it is; else
        ``StorageUnavailableError`` (``SchemaTooNewError``, ``SchemaNotReadableError``)."""

    def watch_changes(self, callback: ChangeCallback | None) -> None:
        """Call ``callback`` with each committed change (``database.changes``), from a
        thread of the library's; None stops."""

    def see_host(self, release: str) -> None:
        """Record that this host (``host_name``) uses the catalog, running ``release``."""

    def hosts(self) -> list[dict[str, Any]]:
        """``[{name, release, first_seen, last_seen}]``: the hosts the catalog has seen."""

    def hold(self, name: str, *, record: bool = True) -> Hold:
        """Hold ``name`` across the catalog (``database.holds``; ``HeldElsewhereError``);
        ``record=False``: without naming this host in ``catalog_holds``."""

    def held(self, name: str) -> bool:
        """Whether a session of the catalog holds ``name`` now (its process is alive)."""

    def wait_listening(self, timeout: float) -> bool:
        """Whether the changes of every process reach the callback (within ``timeout``)."""

    def notify(self, kind: str, keys: Iterable[str]) -> None:
        """Send a change that is not a table's (a job's run began or ended)."""

    def open_connections(self) -> int:
        """How many connections (or sessions) the library holds open now."""

    def close(self) -> None: ...
