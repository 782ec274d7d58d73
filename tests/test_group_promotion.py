"""A group's new models promoted together (``pending.group_promotion.promote_new``) and
the multi-row store calls under it, on each backend: what it promotes, what it leaves to
``Promoter.promote`` (untouched), and a scan whose groups hold copies of one content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hikaze_mm.pending.group_promotion import promote_new
from hikaze_mm.pending.promotion import PromotionConflict, PromotionDeferred
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import write_model
from tests.promotion_helpers import add_pending

config = on_each_backend()


def hashed_ahead(services: Services, pending_ids: list[int]) -> None:
    files = [(services.db.pending.get(pid)["path"], "checkpoints") for pid in pending_ids]
    services.promoter.hash_ahead_many(files)


def test_promote_new_promotes_the_new_and_leaves_the_rest_untouched(
    services: Services, models_root: Path
) -> None:
    """Of a group, only the first copy of each content that is no model yet is promoted
    here (its tags kept); the rest go back in their order, exactly as they were."""
    db = services.db
    new, sha = add_pending(services, models_root, "new.safetensors", b"new", tags=("style",))
    copy, _ = add_pending(services, models_root, "copy.safetensors", b"new")
    known, known_sha = add_pending(services, models_root, "known.safetensors", b"known")
    db.models.upsert({"sha256": known_sha, "path": str(models_root / "elsewhere.bin")})
    unread, _ = add_pending(services, models_root, "unread.safetensors", b"unread")
    pictured, _ = add_pending(
        services, models_root, "pictured.safetensors", b"pictured", images=((1, 2, 3),)
    )
    held, _ = add_pending(services, models_root, "held.safetensors", b"held")
    # A journal entry of another live process (its parent's pid): that process has it.
    elsewhere, _ = add_pending(services, models_root, "elsewhere.safetensors", b"elsewhere")
    # One this process left (a failed attempt): converged, then promoted here.
    retried, retried_sha = add_pending(services, models_root, "retried.safetensors", b"again")
    journal = services.promoter.journal
    journal.plan(retried, retried_sha, [], [])
    journal.plan(elsewhere, "e" * 64, [], [])
    entry = journal.get(elsewhere)
    entry["owner"] = {"pid": os.getppid(), "token": "another process"}
    journal._put(elsewhere, entry)
    hashed_ahead(services, [new, copy, known, pictured, held, elsewhere, retried])
    gone = held + 1000
    before = {pid: db.pending.get(pid) for pid in (copy, known, unread, pictured, held, elsewhere)}
    assert services.promoter.locks.ids.try_acquire(held)
    try:
        with services.promoter.group():
            ids = [new, copy, known, unread, pictured, held, gone, elsewhere, retried]
            outcomes, rest = promote_new(services.promoter, ids)
            with pytest.raises(PromotionDeferred):  # still in the caller's group: not read
                services.promoter.promote(unread)
        assert services.promoter.locks.ids.held() == {held}  # the others' let go
    finally:
        services.promoter.locks.ids.release(held)
    assert [(pid, outcome["action_taken"], outcome["sha256"]) for pid, outcome in outcomes] == [
        (new, "created", sha),
        (retried, "created", retried_sha),
    ]
    assert rest == [copy, known, unread, pictured, held, gone, elsewhere]
    assert set(journal.entries()) == {elsewhere}
    model = db.models.get(sha)
    assert (model["name"], model["path"]) == (
        "new",
        str(models_root / "checkpoints/new.safetensors"),
    )
    assert [t["name"] for t in model["tags"]] == ["style"]
    assert db.pending.get(new) is None
    assert {pid: db.pending.get(pid) for pid in before} == before
    assert db.models.get(known_sha)["path"] == str(models_root / "elsewhere.bin")
    # What was left is ``promote``'s: the copy of the new model is a conflict now.
    with pytest.raises(PromotionConflict):
        services.promoter.promote(copy)


@pytest.mark.parametrize("strategy", [None, "merge"])
def test_a_scan_with_copies_inside_its_groups(
    services: Services, models_root: Path, strategy: str | None
) -> None:
    """Copies of one content inside a group: the first file is the model, each copy is
    recorded beside it, and then a conflict (no strategy) or merged, as one by one."""
    folder = models_root / "loras"
    shas = [write_model(folder / f"d{n}.safetensors", 1024, seed=n) for n in range(10)]
    for n in (3, 7):
        (folder / f"d{n}.safetensors").write_bytes((folder / "d1.safetensors").read_bytes())
    counts = services.scanner.scan(immediate_hashing=True, conf_strategy=strategy).counts
    assert (counts.new, counts.errors) == (10, 0)
    expected = (8, 2) if strategy is None else (10, 0)
    assert (counts.promoted, counts.conflicts) == expected
    db = services.db
    assert sorted(db.listing.all_sha256s()) == sorted(
        {s for n, s in enumerate(shas) if n not in (3, 7)}
    )
    # The copy queued first (the walk's order) is the model's file, the others copies.
    paths = [str(folder / f"d{n}.safetensors") for n in (1, 3, 7)]
    primary = db.models.get(shas[1])["path"]
    copies = sorted(set(paths) - {primary})
    assert primary in paths and db.models.files([shas[1]])[shas[1]] == [primary, *copies]
    waiting = sorted((p["path"], p["status"], p["sha256"]) for p in db.pending.list())
    if strategy is None:
        assert waiting == [(path, "conflict", shas[1]) for path in copies]
    else:
        assert waiting == []


def test_insert_new_sets_a_probed_base_as_set_probed_base_does(services: Services) -> None:
    """A header's base is set over an empty one (its source ``probe``), never over a
    user's choice; a hash already there is skipped."""
    db = services.db
    first, second, third = ("a" * 64, "b" * 64, "c" * 64)
    db.models.upsert({"sha256": third, "path": "/m/c", "name": "kept"})
    user = {"sources": {"base": "user"}}
    inserted = db.models.insert_new(
        [
            ({"sha256": first, "path": "/m/a", "probed": "SDXL"}, []),
            ({"sha256": second, "path": "/m/b", "meta": user, "probed": "SDXL"}, []),
            ({"sha256": third, "path": "/m/other", "name": "new"}, []),
        ]
    )
    assert inserted == {first, second}
    a, b, c = (db.models.get(sha) for sha in (first, second, third))
    assert (a["base"], a["meta"]["sources"], a["type"]) == ("SDXL", {"base": "probe"}, "other")
    assert (b["base"], b["meta"]) == (None, user)
    assert (c["name"], c["path"]) == ("kept", "/m/c")


def test_add_many_queues_as_add_does_and_skips_paths_already_pending(
    services: Services,
) -> None:
    db = services.db
    row = {"name": "x", "type": "loras", "base": "SDXL", "size_bytes": 5, "source": "scan"}
    one = db.pending.add({**row, "path": "/p/one", "meta": {"k": 1}})
    added = db.pending.add_many(
        [
            {**row, "path": "/p/two", "meta": {"k": 1}},
            {**row, "path": "/p/one"},
            {**row, "path": "/p/three", "status": "error"},
        ]
    )
    assert [path for _, path in added] == ["/p/two", "/p/three"]
    two = db.pending.get(added[0][0])
    assert (two["path"], two["status"]) == ("/p/two", "new")
    varying = ("id", "path", "created_at", "updated_at")
    assert {k: v for k, v in two.items() if k not in varying} == {
        k: v for k, v in db.pending.get(one).items() if k not in varying
    }
    assert db.pending.get(added[1][0])["status"] == "error"
    assert db.pending.count() == 3
