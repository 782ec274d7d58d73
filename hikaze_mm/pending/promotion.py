"""Promotion of one pending model into the active library (Stage 2).

``Promoter.promote(id, conf_strategy)`` is shared by the HTTP API, the background worker, the
CLI and the directory scanner:

1. Lock the pending id (a second caller gets 423 at once) and load the row. A missing or
   unreadable file marks the row ``error`` with the reason; nothing else changes.
2. Hash the file with the SHA-256 service (cache, pause/resume/cancel through
   ``JobControl``), then look the hash up in ``models``.
3. Apply, under a lock on the hash so two items with the same content go one by one:

   * no model with this hash: insert it (name, type, base, size, created_at, meta), move
     the tags, promote the pending images to seqs 0, 1, ..., delete the pending row;
   * a model exists and the conf_strategy is None: the library does not change; the row
     is recorded as a conflict (status ``conflict``, the existing model's hash, the reason)
     as ``skip`` does, and ``PromotionConflict`` (409) carries both full records;
   * ``override``: every non-null pending column replaces the existing one (path
     included), meta merged with the pending values winning, tags unioned; the first
     pending image replaces seq 0 (the others become new seqs);
   * ``merge``: only empty existing columns are filled (a path whose file is marked
     missing counts as empty), meta via ``merge_meta_json(existing, pending)``, tags
     unioned, pending images become new seqs;
   * ``delete``: the pending row and its images go; the model is untouched;
   * ``skip`` (worker policy only): the row is marked ``conflict`` for review.

Once the file is a model's (every branch but ``delete``), its sidecar files are read into
the model by the ``read_sidecars`` callable the promoter is handed (the library's sidecar
reader; this package sits below ``library/`` and never imports it); bad ones are listed
in ``sidecar_problems``.

Grouped promotion (``group()``): a caller promoting many files (a scan) promotes them in
one write transaction per group instead of about a dozen transactions each. In a group a
promotion never reads a file, waits for a lock or journals images: one that would (its
hash not cached, its hash locked by another thread, pending images to move) raises
``PromotionDeferred`` and the caller promotes it alone after the group commits. So the
write lock is never held while a file is hashed, and never while waiting for a lock.

Crash safety: images are written to freshly claimed seqs before the one DB transaction
that records the promotion; the pending originals are removed and ``override``'s rename
onto seq 0 happens after it. ``PromotionJournal`` records each step so that a retry or
the next start converges (no duplicate seqs, no orphan tiers, nothing lost).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError, LockedError, NotFoundError, UnprocessableError
from hikaze_mm.hashing import (
    FileChangedError,
    HashResult,
    HashService,
    ProgressCallback,
)
from hikaze_mm.images import ImageError, ImageStore, StoreSnapshot
from hikaze_mm.jobs import JobControl
from hikaze_mm.meta import strip_image_keys
from hikaze_mm.model_types import AUTOV3_TYPES
from hikaze_mm.params import check_pending_id, check_strategy
from hikaze_mm.pending.claims import Claims, host_of
from hikaze_mm.pending.journal import PromotionJournal
from hikaze_mm.pending.locks import PromotionLocks
from hikaze_mm.probe import probe_file

log = logging.getLogger("hikaze_mm.promotion")

ACTIONS = {"override": "overridden", "merge": "merged", "delete": "deleted"}

# Called inside the DB transaction that records an outcome ("created", "overridden",
# "merged", "deleted", "conflict" or "error"), with a short description of the item.
OutcomeHook = Callable[[str, dict[str, Any]], None]

# Reads the sidecar files next to a model file (its path) into the model (its hash);
# returns the problems as ``{path, kind, detail}``.
SidecarHook = Callable[[str, str], list[dict[str, str]]]


class PromotionConflict(ConflictError):
    """The pending model's content is already in the library and no conf_strategy was given."""

    def __init__(self, existing: dict[str, Any], pending: dict[str, Any]) -> None:
        name = existing.get("name") or existing.get("path")
        super().__init__(
            f"pending model {pending.get('id')} has the same content as the model "
            f"{existing['sha256']} ({name})"
        )
        self.existing = existing
        self.pending = pending

    def body(self) -> dict[str, Any]:
        """The 409 body: both full records, so a UI can show them side by side."""
        return {**super().body(), "existing": self.existing, "pending": self.pending}


class PendingFileMissing(NotFoundError):
    """The pending model's file does not exist (the row is marked ``error``)."""


class PendingFileError(UnprocessableError):
    """The pending model's file cannot be read or changed while hashed (row marked ``error``)."""


class PromotionDeferred(LockedError):
    """Inside ``group()``: this promotion must run alone, after the group commits."""


class _ModelChanged(Exception):
    """Another writer inserted or removed the model between the decision and the commit."""


class Promoter:
    def __init__(
        self,
        db: Library,
        images: ImageStore,
        hashes: HashService,
        locks: PromotionLocks | None = None,
        *,
        read_sidecars: SidecarHook | None = None,
        claims: Claims | None = None,
    ) -> None:
        """``read_sidecars`` (the library's sidecar reader) fills a promoted model from
        the files next to it; without it, sidecars are left alone. ``claims``: this
        process's leases on pending rows (``pending/claims.py``)."""
        self.db = db
        self.images = images
        self.hashes = hashes
        self.locks = locks or PromotionLocks()
        self.claims = claims or Claims(db)
        self.journal = PromotionJournal(db, images)
        self.read_sidecars = read_sidecars
        self._grouped = threading.local()

    def snapshot(self, pending_ids: Iterable[int]) -> StoreSnapshot:
        """The image folders as a batch promoting ``pending_ids`` begins (one listing of
        each), for ``promote``'s ``batch``."""
        return self.images.snapshot(pending_ids)

    @contextmanager
    def group(self) -> Iterator[None]:
        """Promotions on this thread inside the block share one write transaction; see
        the module docstring. Keep a group short: it holds the library's write lock.
        A group inside a group joins it."""
        outer = getattr(self._grouped, "active", False)
        self._grouped.active = True
        try:
            with self.db.transaction():
                yield
        finally:
            self._grouped.active = outer

    def hash_ahead(
        self, path: str, model_type: str | None, control: JobControl | None = None
    ) -> None:
        """Hash ``path`` (a pending model of ``model_type``) into the cache, outside any
        transaction, so that a promotion of it in a group finds its hash there. A file
        that cannot be hashed is left for the promotion alone to report."""
        self.hash_ahead_many([(path, model_type)], control)

    def hash_ahead_many(
        self,
        files: Sequence[tuple[str, str | None]],
        control: JobControl | None = None,
        on_file: Callable[[str], None] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """``hash_ahead`` of each ``(path, model_type)``: the cache asked once for them
        all, the hashes read recorded together (those read before a cancellation too);
        ``on_file(path)`` before each file read."""
        hits = self.hashes.lookup_cache_many(path for path, _ in files)
        read: list[HashResult] = []
        try:
            for path, model_type in files:
                if path in hits:
                    continue
                if on_file is not None:
                    on_file(path)
                with suppress(OSError, FileChangedError):
                    autov3 = model_type in AUTOV3_TYPES
                    read.append(
                        self.hashes.hash_file(
                            path,
                            control=control,
                            progress=progress,
                            autov3=autov3,
                            use_cache=False,
                            store=False,
                        )
                    )
        finally:
            self.hashes.store_many(read)

    def recover(self) -> int:
        """Converge promotions a dead process left half done; returns how many."""
        return self.journal.recover_dead(skip=self.locks.ids.held())

    # ------------------------------------------------------------ records for clients
    def pending_view(self, pending_id: int) -> dict[str, Any]:
        """A pending model with its tags and the names of its pending images."""
        record = self.db.pending.get(pending_id)
        if record is None:
            raise NotFoundError(f"no pending model {pending_id}")
        record["images"] = [p.name for p in self.images.pending_images(pending_id)]
        return record

    # ------------------------------------------------------------ promotion
    def promote(
        self,
        pending_id: int,
        conf_strategy: str | None = None,
        *,
        control: JobControl | None = None,
        progress: ProgressCallback | None = None,
        on_outcome: OutcomeHook | None = None,
        read_sidecars: SidecarHook | None = None,
        batch: StoreSnapshot | None = None,
    ) -> dict[str, Any]:
        """Promote one pending model; see the module docstring for the rules.

        For a caller promoting a batch (a scan), so that nothing lists a folder once per
        model: ``read_sidecars`` replaces the promoter's own hook for this call (a scan
        hands the sidecars its walk found), and ``batch`` is the image folders as the batch
        began (``snapshot``): a new model whose hash had no tier file has no orphan to
        sweep, and the pending originals come from it while their folder is unchanged.
        None: the folders are listed.

        Returns ``{"status": "success", "id", "sha256", "action_taken"}``. Raises
        PromotionConflict (409), LockedError (423), NotFoundError / PendingFileMissing
        (404), PendingFileError (422), ValidationError (400), or HashCancelled when
        ``control`` is cancelled (the row is left as it was).
        """
        conf_strategy = check_strategy(conf_strategy)
        pid = check_pending_id(pending_id)
        grouped = getattr(self._grouped, "active", False)
        with self.locks.ids.hold(pid), self._claimed(pid):
            self.journal.recover_entry(pid)
            pending = self.db.pending.get(pid)
            if pending is None:
                raise NotFoundError(f"no pending model {pid}")
            if grouped:
                hashed = self._cached_hash(pending)
            else:
                hashed = self._hash(pending, control, progress, on_outcome)
            sha = hashed.sha256
            busy = PromotionDeferred(f"the model {sha} is being promoted") if grouped else None
            with self.locks.hashes.hold(sha, busy=busy):
                for _attempt in range(5):
                    try:
                        result = self._apply(
                            pending, hashed, conf_strategy, on_outcome, batch, grouped
                        )
                    except _ModelChanged:
                        continue
                    return self.with_sidecars(result, pending, read_sidecars)
                raise ConflictError(f"the model {sha} keeps changing; try again")

    @contextmanager
    def _claimed(self, pid: int) -> Iterator[None]:
        """This process's claim on the row for the block (``claims``): NotFoundError for a
        row that is gone, LockedError while another process (maybe on another host)
        holds it."""
        with self.claims.holding([pid]) as claimed:
            if not claimed:
                pending = self.db.pending.get(pid)
                if pending is None:
                    raise NotFoundError(f"no pending model {pid}")
                holder = host_of(pending.get("claimed_by")) or "another host"
                raise LockedError(f"pending model {pid} is being hashed on {holder}")
            yield

    def _cached_hash(self, pending: dict[str, Any]) -> HashResult:
        """In a group: the hash from the cache, or ``PromotionDeferred`` (it must be read)."""
        try:
            hit = self.hashes.lookup_cache(pending["path"])
        except OSError:
            hit = None
        if hit is None:
            raise PromotionDeferred(f"pending model {pending['id']} must be hashed first")
        return hit

    def _hash(
        self,
        pending: dict[str, Any],
        control: JobControl | None,
        progress: ProgressCallback | None,
        on_outcome: OutcomeHook | None,
    ) -> HashResult:
        pid, path = pending["id"], pending["path"]
        self.db.pending.update(pid, status="hashing")
        autov3 = pending.get("type") in AUTOV3_TYPES
        try:
            result = self.hashes.hash_file(
                path,
                control=control,
                progress=self.claims.beating([pid], progress),
                autov3=autov3,
            )
        except FileNotFoundError:
            self._record_error(pending, f"file not found: {path}", on_outcome)
            raise PendingFileMissing(
                f"the file of pending model {pid} is missing: {path}"
            ) from None
        except FileChangedError as exc:
            self._record_error(pending, f"file changed while hashed: {exc}", on_outcome)
            raise PendingFileError(f"pending model {pid}: {exc}; try again") from None
        except OSError as exc:
            reason = f"cannot read {path}: {exc.strerror or exc}"
            self._record_error(pending, reason, on_outcome)
            raise PendingFileError(f"pending model {pid}: {reason}") from None
        except BaseException:  # HashCancelled, KeyboardInterrupt...: no outcome
            self.db.pending.update(pid, status=_resting_status(pending))
            raise
        return result

    def _record_error(
        self, pending: dict[str, Any], reason: str, on_outcome: OutcomeHook | None
    ) -> None:
        with self.db.transaction():
            self.db.pending.update(pending["id"], status="error", error=reason)
            if on_outcome is not None:
                on_outcome("error", {"id": pending["id"], "path": pending["path"], "error": reason})

    def _conflict(
        self,
        pending: dict[str, Any],
        sha: str,
        existing: dict[str, Any],
        on_outcome: OutcomeHook | None,
    ) -> PromotionConflict:
        # Recorded whoever found it (the worker's "skip", an import that asks, the CLI):
        # the row keeps the existing model's hash, so the "conflict" filter lists it and
        # "Resolve" can compare both records later. The library itself does not change.
        pid = pending["id"]
        reason = f"same content as the model {sha} ({existing['path']})"
        with self.db.transaction():
            self.db.pending.update(pid, status="conflict", sha256=sha, error=reason)
            if on_outcome is not None:
                on_outcome("conflict", {"id": pid, "path": pending["path"], "sha256": sha})
        view = self.pending_view(pid)
        view["sha256"] = sha
        existing = dict(existing)
        existing["images"] = self.images.image_names(sha)
        return PromotionConflict(existing, view)

    def _apply(
        self,
        pending: dict[str, Any],
        hashed: HashResult,
        conf_strategy: str | None,
        on_outcome: OutcomeHook | None,
        batch: StoreSnapshot | None = None,
        grouped: bool = False,
    ) -> dict[str, Any]:
        pid, sha, size = pending["id"], hashed.sha256, hashed.stat.size
        sources = (batch or self.images).pending_images(pid)
        if grouped and sources:
            raise PromotionDeferred(f"pending model {pid} has images to move")
        existing = self.db.models.get(sha)
        if existing is not None:  # another copy of a model: record where it was found
            self.db.models.add_files([(sha, pending["path"], size)])
        if existing is None:
            branch = "created"
        elif conf_strategy is None or conf_strategy == "skip":
            raise self._conflict(pending, sha, existing, on_outcome)
        else:
            branch = conf_strategy
        covers, staged = self._stage_images(sha, branch, sources, batch)
        journaled = bool(staged or sources)
        probed = probe_file(pending["path"]).base if branch != "delete" else None
        if journaled:
            self.journal.plan(pid, sha, [seq for _, seq in staged], sources)
        try:
            written, skipped = self._write_images(sha, staged)
            moves = (
                [(written[0], covers[0] if covers else 0)]
                if branch == "override" and written
                else []
            )
            with self.db.transaction():
                if self.db.models.exists(sha) == (branch == "created"):
                    raise _ModelChanged
                self._record(pending, hashed, branch, existing, probed)
                self.db.pending.remove(pid)
                if journaled:
                    self.journal.mark_committed(pid, moves)
                action = ACTIONS.get(branch, branch)
                if on_outcome is not None:
                    on_outcome(action, {"id": pid, "path": pending["path"], "sha256": sha})
        except BaseException:
            if journaled:
                self.journal.converge(pid)
            raise
        if journaled:
            self.journal.finish(pid)
        return self.result(pending, sha, action, skipped)

    def _stage_images(
        self, sha: str, branch: str, sources: list[Path], batch: StoreSnapshot | None
    ) -> tuple[list[int], list[tuple[Path, int]]]:
        """The cover ``override`` replaces (the first image in display order), and a
        freshly claimed seq for each pending original (``sources``) the model gets."""
        covers = self.images.list_seqs(sha)[:1] if branch == "override" else []
        staged: list[tuple[Path, int]] = []
        if branch != "delete":
            if branch == "created" and (batch is None or batch.may_have_tiers(sha)):
                # No model has this hash, so any tier of it on disk is an orphan.
                self.images.delete_all(sha)
            staged = [(src, self.images.claim_seq(sha)) for src in sources]
        return covers, staged

    def result(
        self,
        pending: dict[str, Any],
        sha: str,
        action: str,
        skipped: list[dict[str, str]],
    ) -> dict[str, Any]:
        """The outcome for clients."""
        result: dict[str, Any] = {
            "status": "success",
            "id": pending["id"],
            "sha256": sha,
            "action_taken": action,
        }
        if skipped:
            result["skipped_images"] = skipped
        return result

    def with_sidecars(
        self, result: dict[str, Any], pending: dict[str, Any], hook: SidecarHook | None
    ) -> dict[str, Any]:
        """The file is the model's now (but for ``delete``): its sidecars are read into
        it, by ``hook`` or the promoter's own ``read_sidecars``."""
        read_sidecars = hook or self.read_sidecars
        if result["action_taken"] != ACTIONS["delete"] and read_sidecars is not None:
            problems = read_sidecars(result["sha256"], pending["path"])
            if problems:
                result["sidecar_problems"] = problems
        return result

    def _write_images(
        self, sha: str, staged: list[tuple[Path, int]]
    ) -> tuple[list[int], list[dict[str, str]]]:
        """Encode each pending original into its claimed seq; a bad image is skipped."""
        written: list[int] = []
        skipped: list[dict[str, str]] = []
        for src, seq in staged:
            try:
                self.images.promote_pending_image(src, sha, seq)
            except ImageError as exc:
                self.images.delete_image(sha, seq)
                skipped.append({"image": src.name, "reason": exc.detail})
                log.warning("skipped pending image %s: %s", src, exc.detail)
                continue
            written.append(seq)
        return written, skipped

    def _record(
        self,
        pending: dict[str, Any],
        hashed: HashResult,
        branch: str,
        existing: dict[str, Any] | None,
        probed: str | None = None,
    ) -> None:
        """The model side of one promotion (inside the caller's transaction): the record,
        the file among the model's copies, and the base its header names (``probed``)."""
        if branch == "delete":
            return
        sha, size = hashed.sha256, hashed.stat.size
        data, tags = model_data(pending, hashed, branch)
        self.db.models.upsert(data, tags, on_conflict="merge" if branch == "merge" else "update")
        # A file on a root this host does not mount is another host's: it stays the model's.
        here = existing if existing is not None and existing.get("mounted", True) else None
        if branch == "merge" and here is not None and here.get("missing"):
            # The existing path points at a file that is gone: treat it as empty.
            self.db.models.update(sha, path=pending["path"], missing=False)
        found = [(sha, pending["path"], size)]
        if here is not None and Path(here["path"]).is_file():
            found.append((sha, here["path"], size))  # override moved the primary
        self.db.models.add_files(found)
        self.db.models.set_probed_base(sha, probed)


def model_data(
    pending: dict[str, Any], hashed: HashResult, branch: str
) -> tuple[dict[str, Any], list[int]]:
    """The model a promotion of ``pending`` (its content ``hashed``) writes in ``branch``
    (``models.upsert``'s data), and its tag ids."""
    data: dict[str, Any] = {
        "sha256": hashed.sha256,
        "path": pending["path"],
        "name": pending.get("name"),
        "type": pending.get("type"),
        "base": pending.get("base"),
        "size_bytes": hashed.stat.size,
        "created_at": pending.get("created_at"),
        "meta": strip_image_keys(pending.get("meta") or {}),
        "autov3": hashed.autov3,
    }
    if branch == "created":
        data["name"] = data["name"] or Path(pending["path"]).stem
    return data, [tag["id"] for tag in pending.get("tags", [])]


def _resting_status(pending: dict[str, Any]) -> str:
    """The status to put back when a promotion stops without an outcome."""
    status = pending.get("status") or "new"
    return "new" if status == "hashing" else status
