"""The set of services one running manager uses, built from a Config.

The CLI and the HTTP server both open one ``Services`` and call its parts; tests open
their own against a temporary data dir. Nothing here is global.

``Services.open(config, access=...)`` opens a library in one of three ways:

* ``"shared"`` (the default; ComfyUI's mount, tests): creates what is missing, and
  recovers what a killed process left half done unless another live process holds the
  library's lock. It never refuses.
* ``"write"``: as the one process that writes the library. It refuses, having created
  nothing, when another process holds the library (LibraryBusyError, naming it), when
  the folder cannot be written (LibraryReadOnlyError), when ``create`` is False and there
  is no library (NoLibraryError), and when the database's folder is missing (only the data
  folder itself is created) or the file is not a library (LibraryOpenError).
* ``"read"``: reads an existing library without creating, upgrading, recovering or
  locking anything (SQLite ``mode=ro``); it works beside the writer and in a read-only
  folder.

Each gets its library from ``open_library(config)`` (the configuration picks the
backend) and knows it only as a ``Library`` (``database/interfaces.py``).
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

from hikaze_mm import __version__
from hikaze_mm.config import Config
from hikaze_mm.database import open_library
from hikaze_mm.database.errors import StorageError
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.open import backend_of
from hikaze_mm.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnprocessableError,
)
from hikaze_mm.hashing import HashService
from hikaze_mm.images import ImageStore
from hikaze_mm.jobs import JobRegistry
from hikaze_mm.legacy.job import LegacyImportJob
from hikaze_mm.legacy.snapshots import remove_stale_snapshots
from hikaze_mm.library.autov3_backfill import AutoV3Backfill
from hikaze_mm.library.change_feed import ChangeFeed
from hikaze_mm.library.civitai import CivitaiService
from hikaze_mm.library.download_sources import SourceSettings
from hikaze_mm.library.downloads import DownloadService
from hikaze_mm.library.generations_service import GenerationsService
from hikaze_mm.library.images_service import ImagesService
from hikaze_mm.library.inspect_service import InspectService
from hikaze_mm.library.models_service import ModelsService
from hikaze_mm.library.organizer import Organizer
from hikaze_mm.library.probing import BaseProber
from hikaze_mm.library.scan_walk import roots_from_config
from hikaze_mm.library.scanner import Scanner
from hikaze_mm.library.search_index import SearchIndexer
from hikaze_mm.library.sidecars import SidecarReader
from hikaze_mm.library.tags_service import TagsService
from hikaze_mm.library.updates import UpdateService
from hikaze_mm.library.watcher import LibraryWatcher
from hikaze_mm.library.workflow_service import WorkflowService
from hikaze_mm.pending.claims import Claims
from hikaze_mm.pending.manager import MigrationManager
from hikaze_mm.pending.operations import PendingService
from hikaze_mm.pending.promotion import Promoter
from hikaze_mm.process_lock import LockOwner, ProcessLock

ACCESS_MODES = ("shared", "write", "read")

log = logging.getLogger(__name__)


class NoLibraryError(NotFoundError):
    error = "No library"


class LibraryOpenError(UnprocessableError):
    """The library's files are not what they should be (a folder, not a database...)."""

    error = "Cannot open the library"


class LibraryReadOnlyError(ForbiddenError):
    error = "Read-only library"


class LibraryBusyError(ConflictError):
    """Another live process writes the library; ``owner`` says who, when it said so."""

    error = "Library in use"

    def __init__(self, detail: str, owner: LockOwner | None) -> None:
        super().__init__(detail)
        self.owner = owner


def _writable(path: os.PathLike[str]) -> bool:
    return os.access(path, os.W_OK)


def _library_file(config: Config) -> bool:
    """Whether the library is a file here (SQLite), which the file checks are about; a
    library on a server (``database_url``) is checked by opening it."""
    return backend_of(config)[0] == "sqlite"


def _check_files(config: Config) -> None:
    """The data folder is a folder and the database path is not one."""
    if config.data_dir.exists() and not config.data_dir.is_dir():
        raise LibraryOpenError(f"the data folder {config.data_dir} is a file")
    if _library_file(config) and config.db_path.is_dir():
        raise LibraryOpenError(f"{config.db_path} is a folder, not a library database")


def _no_library(config: Config) -> NoLibraryError:
    return NoLibraryError(
        f"no library in {config.data_dir} ({config.db_path} does not exist); "
        "hikaze-mm scan, serve or migrate-legacy creates one"
    )


def _not_a_library(exc: StorageError) -> LibraryOpenError:
    """A library that cannot be opened: too new, not readable as it is, not a database..."""
    return LibraryOpenError(f"cannot open the library: {exc.detail}")


def _read_only_database(config: Config) -> Library:
    _check_files(config)
    if _library_file(config) and not config.db_path.is_file():
        raise _no_library(config)
    try:
        db = open_library(config, read_only=True)
    except StorageError as exc:
        raise _not_a_library(exc) from None
    if not config.pending_images_dir.is_dir():
        db.close()
        raise LibraryOpenError(
            f"cannot open the library: {config.pending_images_dir} is missing "
            "(a command that writes, such as scan or serve, creates it)"
        )
    return db


def _probe(config: Config) -> None:
    """An existing database file that this release cannot write fails here, read-only,
    before anything is created."""
    try:
        db = open_library(config, read_only=True, prepare=False)
    except StorageError as exc:
        raise _not_a_library(exc) from None
    try:
        if db.schema_version() > db.head_revision:
            db.check_readable()  # raises SchemaTooNewError with its message
    except StorageError as exc:
        raise _not_a_library(exc) from None
    finally:
        db.close()


def _writer_lock(config: Config, *, create: bool, command: str | None) -> ProcessLock:
    """Check the library's folders and take its lock, creating at most the data folder."""
    _check_files(config)
    data, db_path = config.data_dir, config.db_path
    if db_path.exists() or not _library_file(config):
        _probe(config)
    elif not create:
        raise _no_library(config)
    elif db_path.parent != data and not db_path.parent.is_dir():
        raise LibraryOpenError(
            f"the database's folder {db_path.parent} does not exist (create it first)"
        )
    if not data.is_dir():
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryOpenError(
                f"cannot create the data folder {data}: {exc.strerror or exc}"
            ) from None
    folders = [data] if db_path.parent == data else [data, db_path.parent]
    readonly = [p for p in (*folders, db_path) if p.exists() and not _writable(p)]
    if readonly:
        raise LibraryReadOnlyError(
            f"the library in {data} is read-only (cannot write {readonly[0]}); "
            "status and list still work"
        )
    lock = ProcessLock(config.lock_path)
    try:
        acquired = lock.try_acquire()
    except OSError as exc:
        raise LibraryReadOnlyError(
            f"the library in {data} is read-only (cannot write {config.lock_path}: "
            f"{exc.strerror or exc}); status and list still work"
        ) from None
    if not acquired:
        owner = lock.owner()
        who = owner.describe() if owner else "another process"
        raise LibraryBusyError(f"the library in {data} is in use by {who}", owner)
    if command:
        lock.set_info(command=command)
    return lock


# How old a leftover of an interrupted image write in a shared images folder must be to go.
SHARED_LEFTOVER_S = 3600.0


def _image_store(config: Config, db: Library) -> ImageStore:
    """The images folder; in a shared catalog the catalog numbers its new images and keeps
    their order (``HIKAZE_IMAGES_DIR`` may be one folder that every host of a studio
    writes). A machine's own library numbers them by exclusive creates in its own folder,
    so a crash leaves no gap, and keeps their order in files there."""
    return ImageStore(
        config.images_dir,
        config.pending_images_dir,
        max_pixels=config.max_image_pixels,
        max_bytes=config.max_image_bytes,
        catalog=db.image_seqs if db.shared and not db.read_only else None,
    )


def _migration(
    config: Config, db: Library, images: ImageStore, hashes: HashService, recover: bool
) -> tuple[LegacyImportJob, Promoter, MigrationManager]:
    """Stage 1 (the legacy import), the promoter and Stage 2 (the migration manager); a
    process that alone works on the library first converges what a killed one left."""
    legacy_import = LegacyImportJob(
        db,
        images,
        work_dir=config.legacy_work_dir,
        lock_path=config.legacy_import_lock_path,
    )
    sidecars = SidecarReader(db, images)  # handed down: pending/ sits below library/
    promoter = Promoter(
        db,
        images,
        hashes,
        read_sidecars=sidecars.read_beside,
        claims=Claims(db, config.claim_lease_seconds),
    )
    if recover:
        # A shared images folder (a studio) may hold another host's write in progress.
        images.cleanup_partial(older_than_s=SHARED_LEFTOVER_S if db.shared else 0)
        remove_stale_snapshots(config.legacy_work_dir)  # copies a killed import left
        promoter.recover()  # converge promotions a killed process left half done
    migration = MigrationManager(
        db,
        promoter,
        legacy_import.run_blocking,
        workers=config.hash_workers,
        conf_strategy=config.worker_conf_strategy,
    )
    return legacy_import, promoter, migration


@dataclass
class Services:
    config: Config
    db: Library
    hashes: HashService
    images: ImageStore
    models: ModelsService
    tags: TagsService
    model_images: ImagesService
    generations: GenerationsService
    inspect: InspectService
    workflows: WorkflowService
    organizer: Organizer
    pending: PendingService
    legacy_import: LegacyImportJob
    promoter: Promoter
    migration: MigrationManager
    scanner: Scanner
    search_index: SearchIndexer
    watcher: LibraryWatcher
    civitai: CivitaiService
    updates: UpdateService
    prober: BaseProber
    autov3: AutoV3Backfill
    downloads: DownloadService
    jobs: JobRegistry
    changes: ChangeFeed
    lock: ProcessLock

    @classmethod
    def open(
        cls,
        config: Config,
        *,
        access: str = "shared",
        create: bool = True,
        command: str | None = None,
    ) -> Services:
        """The services of the library ``config`` names, opened as ``access`` says (see the
        module's docstring). ``create`` (write access) may make a new library; ``command``
        (write access) is what the lock file says this process runs."""
        if access not in ACCESS_MODES:
            raise ValueError(f"access must be one of {', '.join(ACCESS_MODES)}")
        if access == "read":
            db = _read_only_database(config)
            try:
                return cls._assemble(config, db, ProcessLock(config.lock_path), recover=False)
            except BaseException:
                db.close()
                raise
        if access == "write":
            lock = _writer_lock(config, create=create, command=command)
        else:
            config.ensure_dirs()
            lock = ProcessLock(config.lock_path)
        try:
            if access == "write":
                config.ensure_dirs()
            db = open_library(config)
        except BaseException as exc:
            lock.release()
            if access == "write" and isinstance(exc, StorageError):
                raise _not_a_library(exc) from None
            raise
        try:
            if access == "shared":
                lock.try_acquire()  # held: no other live process works on this library
            with suppress(StorageError):  # the catalog's record of its hosts: not a reason to fail
                db.see_host(__version__)
            return cls._assemble(config, db, lock, recover=lock.held)
        except BaseException:
            db.close()
            lock.release()
            raise

    @classmethod
    def _assemble(
        cls, config: Config, db: Library, lock: ProcessLock, *, recover: bool
    ) -> Services:
        hashes = HashService(db, chunk_size=config.hash_chunk_bytes, workers=config.hash_workers)
        images = _image_store(config, db)
        legacy_import, promoter, migration = _migration(config, db, images, hashes, recover)
        roots = partial(roots_from_config, config)
        scanner = Scanner(db, hashes, roots=roots, images=images, promoter=promoter)
        organizer = Organizer(db, roots, config.download_template)
        if recover:
            organizer.recover()  # converge moves a killed process left half done
        search_index = SearchIndexer(db)
        search_index.start()  # an upgraded library's text index, built in the background
        models = ModelsService(db, images, config)
        prober = BaseProber(db)
        if recover:  # this process alone works on the library
            prober.start_upgrade()  # an upgraded library's bases, probed once
        civitai = CivitaiService(db, images, models, config.civitai)
        model_images = ImagesService(db, images)
        autov3 = AutoV3Backfill(db, hashes)
        updates = UpdateService(db, config.civitai, bucket=civitai.bucket)
        owners = (scanner, legacy_import, migration, prober, civitai, updates, search_index, autov3)
        jobs = JobRegistry(owner.job for owner in owners)
        changes = ChangeFeed(db)
        jobs.watch(changes.job_changed)
        downloads = DownloadService(db, config, hashes, promoter)
        if recover:  # this process alone works on the library: its downloads go on
            downloads.recover()
        return cls(
            config=config,
            db=db,
            hashes=hashes,
            images=images,
            models=models,
            tags=TagsService(db),
            model_images=model_images,
            generations=GenerationsService(db, model_images, config.output_dir),
            inspect=InspectService(db),
            workflows=WorkflowService(db, SourceSettings.from_config(config), downloads.enqueue),
            organizer=organizer,
            pending=PendingService(db, images, hashes, promoter, config),
            legacy_import=legacy_import,
            promoter=promoter,
            migration=migration,
            scanner=scanner,
            search_index=search_index,
            watcher=LibraryWatcher(
                scanner, roots, mode=config.watch, interval=config.rescan_interval
            ),
            civitai=civitai,
            updates=updates,
            prober=prober,
            autov3=autov3,
            downloads=downloads,
            jobs=jobs,
            changes=changes,
            lock=lock,
        )

    def start_watching(
        self, *, immediate_hashing: bool = False, conf_strategy: str | None = None
    ) -> None:
        """Follow the model roots from now on, as ``config.watch`` says (a serving process:
        ``serve``, or ComfyUI); ``immediate_hashing`` promotes the new files it finds. The
        AutoV3 of LoRAs and embeddings hashed before it existed is filled in the background."""
        self.watcher.start(immediate_hashing=immediate_hashing, conf_strategy=conf_strategy)
        self.autov3.start_if_needed()

    def resume_migration(self) -> None:
        """A Stage 2 run that was RUNNING when the last process died continues, unless
        another live process owns this library (and its run)."""
        if self.lock.held:
            self.migration.recover()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the watcher, cancel every job and wait for them (each stops within a step:
        a hash chunk, a folder, a legacy row), then close the library."""
        self.watcher.close()
        self.civitai.close_lookups()
        self.downloads.close()
        stuck = self.jobs.close(timeout)
        if stuck:
            log.warning("jobs still running at close: %s", ", ".join(stuck))
        self.changes.close()
        self.hashes.close()
        self.promoter.journal.close()
        self.organizer.journal.close()
        self.db.close()
        self.lock.release()
