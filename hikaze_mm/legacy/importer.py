"""Stage 1: the one-time import of a legacy (v2) database and its images.

``import_legacy_data(legacy_db_path, legacy_images_dir, db=..., images=...)`` is the
whole of it; the CLI, the HTTP route and Stage 2's full migration call it (through
``LegacyImportJob``). The legacy files are only read, never written.

How it goes:

1. **Check** the inputs before changing anything: the paths exist, and a private copy of
   the legacy DB (with its ``-wal``) is SQLite, intact and has the v2 tables
   (``LegacySnapshot``). Otherwise one ValidationError (400) or LegacyDatabaseError (422).
2. **Tags**, in one transaction: each legacy tag keeps its id (when free in v3), name,
   color and created_at; a name v3 has already (any case) is reused and mapped.
3. **Models**, streamed in id order. A row with a valid hash (64 hex, any case) goes to
   ``models`` (two rows with one hash become one model, tags unioned); any other row goes
   to ``pending_import`` under its legacy id. meta = legacy extra_json + meta_json minus
   the image-path keys. Images named by every image key are looked up by file name in the
   legacy images folder: for an active model encoded to WebP tiers (in worker processes,
   a bounded number in flight), for a pending model validated and copied to
   ``<data>/images/pending/<id>_<n>.<ext>`` (n = its position in the legacy list). Bad
   images are reported and skipped.
   **Lost image lists.** A row whose ``extra_json`` is not a JSON object (NULL, empty,
   invalid JSON, or JSON of another type: ``null``, a list, a string, a number) has lost
   its ``images`` list. The legacy app named every upload ``model_<legacy id>_<ms>_<name>``
   and never reused an id, so such a row also gets the files named for its id, newest
   first (by ``<ms>``), after any its ``meta_json`` names (``images_recovered_by_name``).
   A row whose ``extra_json`` IS an object (even ``{}``) gets only what it lists: the legacy
   app never deleted a replaced upload, so its other ``model_<id>_`` files are the images
   the user replaced. The folder is listed once per import (``list_legacy_images``); files
   no row claims either way are counted as ``images_unreferenced`` and not imported.
4. Models are committed in batches. Image files are written BEFORE the commit of their
   model, their seqs reserved in the ledger first (see ``database.legacy_ledger``), so a kill at
   any point leaves v3 consistent and a new run finishes the job without duplicates. A
   model recorded in the ledger is skipped by later runs (``already_imported``).

The private copy of the legacy DB lives in Stage 1's work folder (``work_dir``) and is
deleted when the run ends; one a killed run left is deleted by the next run (and when the
library is opened): see ``legacy.snapshots``.

The report is returned, and also kept in ``migration_state`` under ``legacy_import``.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hikaze_mm.database import (
    normalize_color,
    normalize_sha256,
    normalize_tag_name,
    now_ms,
)
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.legacy_v2 import LegacyModel, LegacyTag
from hikaze_mm.errors import HikazeError, ValidationError
from hikaze_mm.images import ImageError, ImageStore
from hikaze_mm.jobs import JobControl
from hikaze_mm.legacy.images import (
    EncodedImage,
    LegacyImagesListing,
    default_workers,
    encode_legacy_image,
    image_refs,
    list_legacy_images,
    locate_image,
    make_encoder_pool,
    media_file_name,
    regular_file_stat,
)
from hikaze_mm.legacy.report import ImportReport
from hikaze_mm.legacy.snapshots import LegacySnapshot
from hikaze_mm.library.scan_walk import MODEL_EXTENSIONS
from hikaze_mm.meta import merge_meta_json, strip_image_keys
from hikaze_mm.model_types import canonical_type
from hikaze_mm.params import parse_path
from hikaze_mm.probe import probe_file

__all__ = ["ImportReport", "ProgressFn", "import_legacy_data", "import_snapshot"]

ProgressFn = Callable[[str, int, int], None]

STATE_KEY = "legacy_import"
MODEL_BATCH = 64  # models per DB transaction
WINDOW_MODELS = 64  # models read ahead of the one being finished
IMAGES_PER_WORKER = 3  # images in flight per worker process

_SHORT_COLOR = re.compile(r"#([0-9a-fA-F])([0-9a-fA-F])([0-9a-fA-F])")


def import_legacy_data(
    legacy_db_path: str | Path,
    legacy_images_dir: str | Path | None = None,
    *,
    db: Library,
    images: ImageStore,
    work_dir: Path,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    control: JobControl | None = None,
) -> ImportReport:
    """Import a legacy v2 DB (and its images folder) into the v3 library; see the module doc.

    ``progress(phase, done, total)`` is called from this thread with phases ``reading``,
    ``tags``, ``models`` and ``done``. ``workers`` image encoding processes (default: one
    per core; 1 encodes in one thread). Raises ValidationError (400) for a missing path and
    LegacyDatabaseError (422) for a file that is not a usable v2 DB; nothing changes then.
    The private copy of the legacy DB goes under ``work_dir`` (``Config.legacy_work_dir``).
    A cancelled ``control`` stops it between rows (see ``import_snapshot``).
    """
    images_dir = check_images_dir(legacy_images_dir)
    if progress is not None:
        progress("reading", 0, 0)
    with LegacySnapshot.open(legacy_db_path, root=work_dir) as legacy:
        return import_snapshot(
            legacy,
            images_dir,
            db=db,
            images=images,
            progress=progress,
            workers=workers,
            control=control,
        )


def import_snapshot(
    legacy: LegacySnapshot,
    images_dir: Path | None,
    *,
    db: Library,
    images: ImageStore,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    control: JobControl | None = None,
) -> ImportReport:
    """``import_legacy_data`` for a snapshot already opened and checked (the caller closes it).

    A cancelled ``control`` stops the import between rows: the models whose images are
    in flight are finished and committed, then JobCancelled is raised. What was committed
    stays imported (the ledger), so the next import of the same database goes on from there
    and imports nothing twice.
    """
    notify = progress or (lambda phase, done, total: None)
    report = ImportReport(str(legacy.source), str(images_dir) if images_dir else None)
    workers = workers or default_workers()
    run = _Run(legacy, images_dir, db, images, report, notify, workers, control or JobControl())
    run.run_all()
    report.finish()
    db.state.set(STATE_KEY, report.to_dict())
    return report


def check_images_dir(value: str | Path | None) -> Path | None:
    if value is None or value == "":
        return None
    path = parse_path(os.fspath(value), "legacy images folder")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValidationError(f"legacy images folder not found: {path}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(mode):
        raise ValidationError(f"legacy images folder is not a folder: {path}")
    return path


# --------------------------------------------------------------------------- legacy values


def legacy_sha(value: object) -> str | None:
    """The lowercase hash of a legacy ``hash_hex``, or None when the model was not hashed."""
    if isinstance(value, str):
        with suppress(ValidationError):
            return normalize_sha256(value.strip())
    return None


def legacy_json(value: object, column: str) -> tuple[dict[str, Any], str | None]:
    """A legacy JSON column as a dict, plus a problem (or None).

    Nothing is lost: invalid JSON, or JSON that is not an object, is kept whole under
    ``legacy_<column>`` and the problem says so.
    """
    meta, problem, _is_object = parse_legacy_json(value, column)
    return meta, problem


def parse_legacy_json(value: object, column: str) -> tuple[dict[str, Any], str | None, bool]:
    """``legacy_json`` plus whether the column held a JSON object (even ``{}``); False for
    NULL, empty text, invalid JSON and JSON of another type (``null`` included)."""
    key = f"legacy_{column}"
    if value is None:
        return {}, None, False
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return {key: value}, f"{column} is not JSON text; kept as meta.{key}", False
    if not value.strip():
        return {}, None, False
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return {key: value}, f"{column} is not valid JSON; kept as text in meta.{key}", False
    if isinstance(parsed, dict):
        return parsed, None, True
    if parsed is None:
        return {}, None, False
    kind = type(parsed).__name__
    problem = f"{column} is a JSON {kind}, not an object; kept in meta.{key}"
    return {key: parsed}, problem, False


def _name_from_path(path: str) -> str:
    base = re.split(r"[\\/]", path.rstrip("\\/"))[-1]
    stem, dot, _ext = base.rpartition(".")
    return stem if dot and stem else base


def _model_name(name: str | None, path: str) -> str:
    """The legacy name, or the file's name; a name that is the file's own name with its
    model extension (the legacy app's default) loses the extension, as a scanned model's
    name never has one (schema revision 10 applies the same rule to earlier imports)."""
    base = re.split(r"[\\/]", path.rstrip("\\/"))[-1]
    if name is None or (name == base and base.lower().endswith(MODEL_EXTENSIONS)):
        return _name_from_path(path)
    return name


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _color(value: object) -> str | None:
    """A legacy color as #rrggbb (``#abc`` expanded); ValidationError if unusable."""
    if isinstance(value, str):
        short = _SHORT_COLOR.fullmatch(value.strip())
        if short:
            value = "#" + "".join(c * 2 for c in short.groups())
    return normalize_color(value)


# --------------------------------------------------------------------------- work items


@dataclass
class _ImageJob:
    ref: str
    n: int
    path: Path
    recovered: bool = False  # found by its file name (the row's image list was lost)
    future: Future[Any] | None = None
    retried: bool = False


@dataclass
class _ModelWork:
    legacy_id: int
    path: str
    data: dict[str, Any]  # name, type, size_bytes, created_at, meta
    sha: str | None
    pending_id: int | None
    merge_pending: bool
    tag_ids: list[int]
    jobs: list[_ImageJob]
    source_shas: list[str] = field(default_factory=list)
    probed_base: str | None = None  # the base the file's header names (when it exists)


class _Window:
    """Models read ahead, with at most ``limit`` image jobs submitted and not consumed.

    Jobs are submitted in model order, so the oldest model's images are done first and
    memory holds at most ``limit`` encoded results however many models there are.
    """

    def __init__(self, submit: Callable[[_ModelWork, _ImageJob], Future[Any]], limit: int):
        self._submit = submit
        self.limit = max(1, limit)
        self.models: deque[_ModelWork] = deque()
        self.in_flight = 0

    def add(self, work: _ModelWork) -> None:
        self.models.append(work)
        self._pump()

    def full(self) -> bool:
        return self.in_flight >= self.limit or len(self.models) >= WINDOW_MODELS

    def _pump(self) -> None:
        for work in self.models:
            for job in work.jobs:
                if job.future is None:
                    if self.in_flight >= self.limit:
                        return
                    job.future = self._submit(work, job)
                    self.in_flight += 1

    def results(self, work: _ModelWork) -> Iterator[tuple[_ImageJob, Any]]:
        """Each job of ``work`` (already popped) with its result or its ImageError."""
        for job in work.jobs:
            if job.future is None:
                job.future = self._submit(work, job)
                self.in_flight += 1
            while True:
                try:
                    outcome: Any = job.future.result()
                except ImageError as exc:
                    outcome = exc
                except BrokenExecutor:
                    # A worker died (e.g. killed for memory): retry once in a fresh one.
                    if job.retried:
                        outcome = ImageError("the image worker crashed on this file")
                    else:
                        job.retried = True
                        job.future = self._submit(work, job)
                        continue
                break
            self.in_flight -= 1
            job.future = None
            self._pump()
            yield job, outcome


class _Run:
    def __init__(
        self,
        legacy: LegacySnapshot,
        images_dir: Path | None,
        db: Library,
        images: ImageStore,
        report: ImportReport,
        notify: ProgressFn,
        workers: int,
        control: JobControl,
    ) -> None:
        self.legacy = legacy
        self.images_dir = images_dir
        self.db = db
        self.images = images
        self.report = report
        self.notify = notify
        self.workers = max(1, workers)
        self.ledger = db.legacy_ledger
        self.tag_map: dict[int, int | None] = {}
        self._encoder: Executor | None = None
        self._copier: ThreadPoolExecutor | None = None
        self._spare_pending_id: int | None = None
        self._refs_without_folder = 0
        self._placed: set[tuple[str, str]] = set()  # images written in the open batch
        self.listing: LegacyImagesListing | None = None  # the images folder, read once
        self.control = control  # looked at between legacy rows

    # ------------------------------------------------------------------ phases
    def run_all(self) -> None:
        total = self.legacy.count_models()
        self.report.dangling_links = self.legacy.count_orphan_links()
        if self.images_dir is not None:
            self.listing = list_legacy_images(self.images_dir)
            if self.listing.error:
                self.report.warnings.append(
                    f"{self.listing.error}: no image was recovered by file name, and "
                    "unreferenced files were not counted"
                )
        self._import_tags()
        try:
            self._import_models(total)
        finally:
            for pool in (self._encoder, self._copier):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
        if self.listing is not None:
            self.report.images_unreferenced = len(self.listing.unclaimed)
        if self._refs_without_folder:
            self.report.warnings.append(
                f"no legacy images folder was given: {self._refs_without_folder} image "
                "reference(s) were not imported"
            )
        self.notify("done", total, total)

    def _import_tags(self) -> None:
        tags = list(self.legacy.iter_tags())
        self.notify("tags", 0, len(tags))
        with self.db.transaction():
            for done, tag in enumerate(tags, 1):
                self.tag_map[tag.id] = self._import_tag(tag)
                self.notify("tags", done, len(tags))

    def _import_tag(self, tag: LegacyTag) -> int | None:
        try:
            name = normalize_tag_name(tag.name)
        except ValidationError as exc:
            self.report.add_error("tag", tag.id, None, f"tag {tag.name!r} skipped: {exc.detail}")
            return None
        recorded = self.ledger.tag_for(name)
        if recorded is not None:
            # Imported by an earlier run; if the user deleted it since, leave it deleted.
            if self.db.tags.get(recorded) is None:
                return None
            self.report.tags += 1
            return recorded
        existing = self.db.tags.get(name)
        if existing is not None:
            tag_id = int(existing["id"])
            self.report.tags_reused += 1
        else:
            try:
                color = _color(tag.color)
            except ValidationError:
                color = None
                self.report.add_error(
                    "tag",
                    tag.id,
                    None,
                    f"tag {name!r}: color {tag.color!r} is not #RRGGBB; dropped",
                )
            tag_id = self.db.tags.insert(name, color, _int_or_none(tag.created_at), id=tag.id)
            self.report.tags_created += 1
        self.ledger.record_tag(name, tag_id)
        self.report.tags += 1
        return tag_id

    def _import_models(self, total: int) -> None:
        window = _Window(self._submit, self.workers * IMAGES_PER_WORKER)
        batch: list[_ModelWork] = []
        done = 0
        self.notify("models", 0, total)

        def finish_one() -> None:
            nonlocal done
            work = window.models.popleft()
            self._finish(work, window)
            batch.append(work)
            if len(batch) >= MODEL_BATCH:
                self._commit(batch)
                batch.clear()
            done += 1
            self.notify("models", done, total)

        for row in self.legacy.iter_models():
            if self.control.cancelled:
                break
            work = self._prepare(row)
            if work is None:
                done += 1
                self.notify("models", done, total)
                continue
            window.add(work)
            while window.full() and window.models:
                finish_one()
        while window.models:
            finish_one()
        self._commit(batch)
        self.control.check()  # stopped between rows: what is committed stays imported

    # ------------------------------------------------------------------ one model
    def _prepare(self, row: LegacyModel) -> _ModelWork | None:
        """Decide what a legacy row becomes; None if it is skipped (already imported, bad)."""
        extra, extra_problem, extra_is_object = parse_legacy_json(row.extra_json, "extra_json")
        old_meta, meta_problem = legacy_json(row.meta_json, "meta_json")
        refs = image_refs(extra, old_meta)
        # Every row claims its files (even one skipped below), so none is miscounted as
        # unreferenced; a row whose image list was lost also claims its uploads by name.
        uploads = self._claim_images(row.id, refs, by_name=not extra_is_object)
        path = row.path
        if not isinstance(path, str) or not path.strip():
            self.report.add_error("model", row.id, None, "the legacy row has no path")
            return None
        if self.ledger.is_imported(path):
            self.report.already_imported += 1
            return None
        for problem in (extra_problem, meta_problem):
            if problem:
                self.report.add_error("meta", row.id, path, problem)
        meta = strip_image_keys(merge_meta_json(extra, old_meta))
        name = row.name.strip() if isinstance(row.name, str) and row.name.strip() else None
        size = _int_or_none(row.size_bytes)
        data = {
            "name": _model_name(name, path),
            "type": canonical_type(row.type if isinstance(row.type, str) else None),
            "size_bytes": size if size is not None and size >= 0 else None,
            "created_at": _int_or_none(row.created_at) or now_ms(),
            "meta": meta,
        }
        tag_ids: list[int] = []
        for legacy_tag in row.tag_ids:
            mapped = self.tag_map.get(legacy_tag)
            if mapped is None:
                self.report.dangling_links += 1
            elif mapped not in tag_ids:
                tag_ids.append(mapped)
        jobs: list[_ImageJob] = []
        named: set[str] = set()
        for n, ref in enumerate(refs):
            if self.images_dir is None:
                self._refs_without_folder += 1
                continue
            try:
                located = locate_image(self.images_dir, ref)
            except ValueError as exc:
                self.report.add_error("image", row.id, None, str(exc))
                continue
            jobs.append(_ImageJob(ref, n, located))
            named.add(os.path.normcase(located.name))
        if self.images_dir is not None:
            for k, name in enumerate(uploads):  # newest first, after the ones named above
                if os.path.normcase(name) not in named:
                    job = _ImageJob(name, len(refs) + k, self.images_dir / name, recovered=True)
                    jobs.append(job)
        sha = legacy_sha(row.hash_hex)
        pending_id, merge_pending = (None, False) if sha else self._pending_target(row.id, path)
        work = _ModelWork(row.id, path, data, sha, pending_id, merge_pending, tag_ids, jobs)
        work.probed_base = probe_file(path).base  # header only; nothing if the file is gone
        return work

    def _claim_images(self, legacy_id: int, refs: list[str], *, by_name: bool) -> list[str]:
        """Mark the files ``refs`` name as claimed; with ``by_name``, also take (and return,
        newest first) the uploads the legacy app named for ``legacy_id``."""
        if self.listing is None:
            return []
        for ref in refs:
            with suppress(ValueError):
                self.listing.claim(media_file_name(ref))
        return self.listing.take_uploads(legacy_id) if by_name else []

    def _pending_target(self, legacy_id: int, path: str) -> tuple[int, bool]:
        """The pending id for a legacy model: a pending row with its path, its legacy id, or
        (when another row holds that id) a spare id above every legacy and pending id."""
        existing = self.db.pending.get_by_path(path)
        if existing is not None:
            return int(existing["id"]), True
        if self.db.pending.get(legacy_id) is None:
            return legacy_id, False
        if self._spare_pending_id is None:
            self._spare_pending_id = self.db.pending.next_free_id(self.legacy.max_model_id() + 1)
        spare = self._spare_pending_id
        self._spare_pending_id += 1
        return spare, False

    def _submit(self, work: _ModelWork, job: _ImageJob) -> Future[Any]:
        if work.sha is not None:
            if self._encoder is None:
                self._encoder = make_encoder_pool(self.workers)
            return self._encoder.submit(
                encode_legacy_image, str(job.path), self.images.max_pixels, self.images.max_bytes
            )
        if self._copier is None:
            self._copier = ThreadPoolExecutor(self.workers, thread_name_prefix="legacy-copy")
        assert work.pending_id is not None
        return self._copier.submit(_copy_pending, self.images, work.pending_id, job.path, job.n)

    def _finish(self, work: _ModelWork, window: _Window) -> None:
        """Collect a model's images: write tiers (active) or note the copies (pending)."""
        for job, outcome in window.results(work):
            if isinstance(outcome, ImageError):
                self.report.add_error("image", work.legacy_id, str(job.path), outcome.detail)
            elif work.sha is None:
                self.report.images_copied += 1
                self.report.images_recovered_by_name += int(job.recovered)
            elif self._place(work, outcome):
                self.report.images_recovered_by_name += int(job.recovered)

    def _place(self, work: _ModelWork, encoded: EncodedImage) -> bool:
        """Write one encoded image at a seq reserved in the ledger (reused after a crash);
        False when it was skipped (already placed for this model)."""
        sha = work.sha
        assert sha is not None
        key = (sha, encoded.source_sha)
        if encoded.source_sha not in work.source_shas:
            work.source_shas.append(encoded.source_sha)
        reserved = self.ledger.reservation(sha, encoded.source_sha)
        if key in self._placed or (reserved is not None and reserved[1]):
            self.report.images_skipped += 1  # the same original again, or imported before
            return False
        if reserved is not None:
            seq = reserved[0]
            try:
                current = self.images.tier_path(sha, seq, "high").read_bytes()
            except FileNotFoundError:
                current = b""
            if current in (b"", encoded.tiers["high"]):  # our own unfinished or finished write
                if current != encoded.tiers["high"]:
                    self.images.write_tiers(sha, encoded.tiers, target_seq=seq)
                self._placed.add(key)
                self.report.images_encoded += 1
                return True
            # Another image took that seq meanwhile: reserve a new one below.
        seq = self.images.claim_seq(sha)
        try:
            self.ledger.reserve(sha, encoded.source_sha, seq)
        except BaseException:
            self.images.delete_image(sha, seq)
            raise
        self.images.write_tiers(sha, encoded.tiers, target_seq=seq)
        self._placed.add(key)
        self.report.images_encoded += 1
        return True

    # ------------------------------------------------------------------ commit
    def _commit(self, batch: list[_ModelWork]) -> None:
        if not batch:
            return
        with self.db.transaction():
            for work in batch:
                try:
                    with self.db.transaction():
                        self._apply(work)
                except HikazeError as exc:
                    self.report.add_error("model", work.legacy_id, work.path, exc.detail)
        self._placed.clear()

    def _apply(self, work: _ModelWork) -> None:
        data = {"path": work.path, **work.data}
        if work.sha is not None:
            _record, action = self.db.models.upsert(
                {"sha256": work.sha, **data}, work.tag_ids, on_conflict="merge"
            )
            existed = action == "merged"
            self.db.models.set_probed_base(work.sha, work.probed_base)
            # Asked before record_model: did an EARLIER legacy row create this model?
            from_legacy = existed and self.ledger.sha_imported(work.sha)
            self.ledger.record_model(work.path, work.legacy_id, sha256=work.sha, pending_id=None)
            self.ledger.mark_done(work.sha, work.source_shas)
            if from_legacy:
                self.report.merged_duplicates += 1
            else:
                self.report.active_models += 1
                self.report.merged_into_existing += int(existed)
        else:
            assert work.pending_id is not None
            if work.merge_pending:
                existing = self.db.pending.get(work.pending_id)
                meta = merge_meta_json(existing["meta"] if existing else {}, work.data["meta"])
                self.db.pending.update(work.pending_id, meta=meta)
                self.db.pending.add_tags(work.pending_id, work.tag_ids)
            else:
                if work.probed_base:
                    sources = data["meta"].get("sources")
                    sources = sources if isinstance(sources, dict) else {}
                    meta = {**data["meta"], "sources": {**sources, "base": "probe"}}
                    data = {**data, "base": work.probed_base, "meta": meta}
                self.db.pending.add(
                    {"id": work.pending_id, "source": "legacy", **data}, work.tag_ids
                )
            self.ledger.record_model(work.path, work.legacy_id, pending_id=work.pending_id)
            self.report.pending_models += 1
        self.report.links += len(work.tag_ids)


def _copy_pending(images: ImageStore, pending_id: int, path: Path, n: int) -> Path:
    """Thread job: validate a pending model's original and copy it as ``<id>_<n>.<ext>``."""
    regular_file_stat(path)
    return images.add_pending_image(pending_id, path, n=n)
