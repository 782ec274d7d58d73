"""The set of services one running manager uses, built from a Config.

The CLI and the HTTP server both open one ``Services`` and call its parts; tests open
their own against a temporary data dir. Nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass

from hikaze_mm.config import Config
from hikaze_mm.database import DatabaseManager
from hikaze_mm.hashing import HashService
from hikaze_mm.images import ImageStore
from hikaze_mm.legacy.job import LegacyImportJob
from hikaze_mm.library.images_service import ImagesService
from hikaze_mm.library.models_service import ModelsService
from hikaze_mm.library.scan_walk import roots_from_config
from hikaze_mm.library.scanner import Scanner
from hikaze_mm.library.tags_service import TagsService
from hikaze_mm.pending.manager import MigrationManager
from hikaze_mm.pending.operations import PendingService
from hikaze_mm.pending.promotion import Promoter
from hikaze_mm.process_lock import ProcessLock


@dataclass
class Services:
    config: Config
    db: DatabaseManager
    hashes: HashService
    images: ImageStore
    models: ModelsService
    tags: TagsService
    model_images: ImagesService
    pending: PendingService
    legacy_import: LegacyImportJob
    promoter: Promoter
    migration: MigrationManager
    scanner: Scanner
    lock: ProcessLock

    @classmethod
    def open(cls, config: Config) -> Services:
        config.ensure_dirs()
        db = DatabaseManager(config.db_path)
        db.init_db()
        hashes = HashService(db, chunk_size=config.hash_chunk_bytes, workers=config.hash_workers)
        images = ImageStore(
            config.images_dir,
            config.pending_images_dir,
            max_pixels=config.max_image_pixels,
            max_bytes=config.max_image_bytes,
        )
        legacy_import = LegacyImportJob(db, images)
        promoter = Promoter(db, images, hashes)
        lock = ProcessLock(config.data_dir / "hikaze_mm.lock")
        if lock.try_acquire():  # no other live process works on this library
            images.cleanup_partial()
            promoter.recover()  # converge promotions a killed process left half done
        migration = MigrationManager(
            db,
            promoter,
            legacy_import.run_blocking,
            workers=config.hash_workers,
            conf_strategy=config.worker_conf_strategy,
        )
        scanner = Scanner(
            db, hashes, roots=lambda: roots_from_config(config), images=images, promoter=promoter
        )
        return cls(
            config=config,
            db=db,
            hashes=hashes,
            images=images,
            models=ModelsService(db, images, config),
            tags=TagsService(db),
            model_images=ImagesService(db, images),
            pending=PendingService(db, images, hashes, promoter, config),
            legacy_import=legacy_import,
            promoter=promoter,
            migration=migration,
            scanner=scanner,
            lock=lock,
        )

    def close(self) -> None:
        self.migration.shutdown()
        self.scanner.close()
        self.hashes.close()
        self.db.close()
        self.lock.release()
