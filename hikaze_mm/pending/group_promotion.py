"""A group's new models promoted together, in a few statements (a scan's immediate hashing).

``promote_new(promoter, ids)``: of the pending ids it is given, it promotes those whose
content is no model yet, as ``Promoter.promote`` would one by one (branch ``created``),
in one ``Promoter.group()``: the records are read in one query, the hashes taken from the
cache in one query, the models inserted (with their tags, their header's base and no
stale copy at their path) and the pending rows deleted in a few statements for the whole
group, instead of some thirty round trips a model. Each model's sidecars are read after
the group commits, so the write lock is not held while image files are encoded; a crash
in between leaves them for the next scan, which reads the sidecars it has not read.

Everything else is left to ``promote``, one by one, after this call, in the order given:
an id another caller holds, a row gone, a hash not cached or held by another promotion,
pending images to move, a content that is a model already (or appears earlier in the
group), a journal entry another live process owns. Nothing of theirs has been changed.
Should the group's statements fail, they are rolled back and every id is left to
``promote``, so a bad row costs the group nothing but its speed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from hikaze_mm.database.errors import StorageUnavailableError
from hikaze_mm.errors import LockedError
from hikaze_mm.hashing import HashResult
from hikaze_mm.images import StoreSnapshot
from hikaze_mm.pending.promotion import (
    OutcomeHook,
    Promoter,
    PromotionDeferred,
    SidecarHook,
    model_data,
)
from hikaze_mm.probe import probe_file

log = logging.getLogger("hikaze_mm.promotion")

# What ``promote_new`` did with each id it promoted: ``promote``'s result, or what
# ``promote`` would have raised after the model was recorded (reading its sidecars).
Outcome = tuple[int, dict[str, Any] | Exception]


@dataclass
class _New:
    """A pending model whose content is no model yet."""

    pending: dict[str, Any]
    hashed: HashResult


def promote_new(
    promoter: Promoter,
    pending_ids: Sequence[int],
    *,
    read_sidecars: SidecarHook | None = None,
    batch: StoreSnapshot | None = None,
    on_outcome: OutcomeHook | None = None,
) -> tuple[list[Outcome], list[int]]:
    """Promote the new models among ``pending_ids`` (see the module docstring); returns
    their outcomes, and the ids left for ``promote``, in the order given."""
    ids = promoter.locks.ids
    held = [pid for pid in dict.fromkeys(pending_ids) if ids.try_acquire(pid)]
    try:
        with ExitStack() as locks:
            with promoter.group():
                new = _claim(promoter, held, batch, locks)
                done = _commit(promoter, new, batch, on_outcome)
            outcomes = [
                (item.pending["id"], _sidecars(promoter, item, read_sidecars)) for item in done
            ]
    finally:
        for pid in held:
            ids.release(pid)
    promoted = {pid for pid, _ in outcomes}
    return outcomes, [pid for pid in pending_ids if pid not in promoted]


def _claim(
    promoter: Promoter, held: list[int], batch: StoreSnapshot | None, locks: ExitStack
) -> list[_New]:
    """The held ids whose content is no model yet (the first of each content), each
    with its hash's lock held in ``locks``."""
    journal = promoter.journal.entries()
    ready = list(held)
    for pid in [pid for pid in held if pid in journal]:
        try:
            promoter.journal.recover_entry(pid)
        except LockedError:
            ready.remove(pid)  # another live process promotes it: ``promote`` says so
    records = promoter.db.pending.get_many(ready)
    pendings = [records[pid] for pid in ready if pid in records]
    hits = promoter.hashes.lookup_cache_many(p["path"] for p in pendings)
    images = batch or promoter.images
    found = [
        _New(p, hits[p["path"]])
        for p in pendings
        if p["path"] in hits and not images.pending_images(p["id"])
    ]
    known = {
        sha for _, sha, _ in promoter.db.models.locate(sha256s=[n.hashed.sha256 for n in found])
    }
    new: list[_New] = []
    for item in found:
        sha = item.hashed.sha256
        if sha in known:
            continue
        known.add(sha)  # a later copy of it in the group is a duplicate: ``promote``'s
        try:
            busy = PromotionDeferred(f"the model {sha} is being promoted")
            locks.enter_context(promoter.locks.hashes.hold(sha, busy=busy))
        except PromotionDeferred:
            continue
        new.append(item)
    return new


def _commit(
    promoter: Promoter,
    new: list[_New],
    batch: StoreSnapshot | None,
    on_outcome: OutcomeHook | None,
) -> list[_New]:
    """Record the new models and drop their pending rows (one unit of work: a savepoint
    of the group's); the items recorded. An orphan image tier of a hash is removed
    first, as ``promote`` removes it."""
    if not new:
        return []
    db = promoter.db
    rows = []
    for item in new:
        sha = item.hashed.sha256
        if batch is None or batch.may_have_tiers(sha):
            promoter.images.delete_all(sha)  # no model has this hash: orphans
        data, tags = model_data(item.pending, item.hashed, "created")
        data["probed"] = probe_file(item.pending["path"]).base
        rows.append((data, tags))
    try:
        with db.transaction():
            inserted = db.models.insert_new(rows)
            done = [item for item in new if item.hashed.sha256 in inserted]
            db.models.remove_files([item.pending["path"] for item in done])
            db.pending.remove_many([item.pending["id"] for item in done])
            if on_outcome is not None:
                for item in done:
                    p = item.pending
                    on_outcome(
                        "created",
                        {"id": p["id"], "path": p["path"], "sha256": item.hashed.sha256},
                    )
    except StorageUnavailableError:
        raise
    except Exception:  # each is promoted on its own, where its own error is reported
        log.warning("a group's promotion failed; its models go one by one", exc_info=True)
        return []
    return done


def _sidecars(
    promoter: Promoter, item: _New, read_sidecars: SidecarHook | None
) -> dict[str, Any] | Exception:
    """``promote``'s result for a model recorded here, its sidecars read into it."""
    result = promoter.result(item.pending, item.hashed.sha256, "created", [])
    try:
        return promoter.with_sidecars(result, item.pending, read_sidecars)
    except StorageUnavailableError:
        raise
    except Exception as exc:  # ``promote`` would raise it, with the model recorded
        return exc
