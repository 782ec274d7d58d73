"""Promoter: each branch and strategy, on a real library (SQLite, files, WebP tiers)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hikaze_mm.errors import LockedError, NotFoundError, ValidationError
from hikaze_mm.hashing import HashCancelled
from hikaze_mm.jobs import JobControl
from hikaze_mm.pending.journal import JOURNAL_KEY
from hikaze_mm.pending.promotion import (
    PendingFileError,
    PendingFileMissing,
    PromotionConflict,
)
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.promotion_helpers import add_pending, library_snapshot, make_png, tier_bytes

config = on_each_backend()


def test_no_conflict_creates_model_with_tags_and_images(
    services: Services, models_root: Path
) -> None:
    pid, sha = add_pending(
        services,
        models_root,
        "a.safetensors",
        9000,
        tags=("style", "anime"),
        images=((255, 0, 0), (0, 255, 0)),
        base="SDXL",
        meta={"trigger": ["x"], "image": "/old/a.png"},
        created_at=1234,
    )
    result = services.promoter.promote(pid)
    assert result == {"status": "success", "id": pid, "sha256": sha, "action_taken": "created"}
    model = services.db.models.get(sha)
    assert model is not None
    assert model["path"] == str(models_root / "checkpoints" / "a.safetensors")
    assert (model["name"], model["type"], model["base"]) == ("a", "checkpoints", "SDXL")
    assert model["size_bytes"] == 9000 and model["created_at"] == 1234
    assert model["meta"] == {"trigger": ["x"]}  # image path keys are dropped
    assert sorted(t["name"] for t in model["tags"]) == ["anime", "style"]
    assert services.images.list_seqs(sha) == [0, 1]
    assert services.db.pending.get(pid) is None
    assert services.images.pending_images(pid) == []
    assert services.db.state.get(JOURNAL_KEY) == {"entries": {}}


def test_conflict_without_strategy_is_recorded_only(services: Services, models_root: Path) -> None:
    """Without a strategy the library is untouched; the pending row is marked ``conflict``
    with the existing model's hash (as Stage 2's "skip" does), so the conflict survives."""
    first, sha = add_pending(services, models_root, "one.safetensors", b"same bytes", tags=("a",))
    services.promoter.promote(first)
    second, _ = add_pending(
        services, models_root, "two.safetensors", b"same bytes", tags=("b",), images=((1, 2, 3),)
    )
    before = library_snapshot(services)
    with pytest.raises(PromotionConflict) as info:
        services.promoter.promote(second)
    after = library_snapshot(services)
    for key in ("models", "tier_files", "pending_files"):
        assert after[key] == before[key]
    row = services.db.pending.get(second)
    assert (row["status"], row["sha256"]) == ("conflict", sha)
    body = info.value.body()
    assert body["error"] == "Conflict"
    assert body["existing"]["sha256"] == sha
    assert body["existing"]["path"].endswith("one.safetensors")
    assert [t["name"] for t in body["existing"]["tags"]] == ["a"]
    assert body["existing"]["images"] == []
    assert body["pending"]["id"] == second and body["pending"]["sha256"] == sha
    assert [t["name"] for t in body["pending"]["tags"]] == ["b"]
    assert body["pending"]["images"] == [f"{second}_0.png"]
    assert body["pending"]["status"] == "conflict"


def _existing_and_pending(services: Services, root: Path):
    """A model with two images and sparse data, and a pending item with the same content."""
    first, sha = add_pending(
        services,
        root,
        "old.safetensors",
        b"shared content",
        tags=("old",),
        images=((10, 10, 10), (20, 20, 20)),
        meta={"a": 1, "list": [1, 2], "nested": {"x": "keep"}},
    )
    services.promoter.promote(first)
    services.db.models.update(sha, base=None)
    second, _ = add_pending(
        services,
        root,
        "new.safetensors",
        b"shared content",
        tags=("new", "old"),
        images=((200, 200, 200),),
        base="SD15",
        meta={"a": 2, "b": 3, "list": [2, 3], "nested": {"x": "lose", "y": "add"}},
    )
    return sha, second


def test_override(services: Services, models_root: Path) -> None:
    sha, pid = _existing_and_pending(services, models_root)
    old_seq1 = tier_bytes(services, sha, 1)
    old_seq0 = tier_bytes(services, sha, 0)
    result = services.promoter.promote(pid, "override")
    assert result["action_taken"] == "overridden" and result["sha256"] == sha
    model = services.db.models.get(sha)
    assert model is not None
    assert model["path"].endswith("new.safetensors") and model["name"] == "new"
    assert model["base"] == "SD15"
    assert model["meta"] == {"a": 2, "b": 3, "list": [2, 3, 1], "nested": {"x": "lose", "y": "add"}}
    assert sorted(t["name"] for t in model["tags"]) == ["new", "old"]
    # The pending image replaced seq 0; seq 1 stayed; no extra seq left behind.
    assert services.images.list_seqs(sha) == [0, 1]
    assert tier_bytes(services, sha, 1) == old_seq1
    assert tier_bytes(services, sha, 0) != old_seq0
    assert services.db.pending.get(pid) is None
    assert services.images.pending_images(pid) == []


def test_override_replaces_the_chosen_cover(services: Services, models_root: Path) -> None:
    sha, pid = _existing_and_pending(services, models_root)
    services.images.set_order(sha, [1, 0])  # the user made seq 1 the cover
    old_seq0 = tier_bytes(services, sha, 0)
    old_seq1 = tier_bytes(services, sha, 1)
    services.promoter.promote(pid, "override")
    assert services.images.list_seqs(sha) == [1, 0]
    assert tier_bytes(services, sha, 1) != old_seq1
    assert tier_bytes(services, sha, 0) == old_seq0


def test_merge(services: Services, models_root: Path) -> None:
    sha, pid = _existing_and_pending(services, models_root)
    before = {seq: tier_bytes(services, sha, seq) for seq in (0, 1)}
    result = services.promoter.promote(pid, "merge")
    assert result["action_taken"] == "merged"
    model = services.db.models.get(sha)
    assert model is not None
    assert model["path"].endswith("old.safetensors") and model["name"] == "old"
    assert model["base"] == "SD15"  # was empty: filled
    assert model["meta"] == {"a": 1, "b": 3, "list": [1, 2, 3], "nested": {"x": "keep", "y": "add"}}
    assert sorted(t["name"] for t in model["tags"]) == ["new", "old"]
    assert services.images.list_seqs(sha) == [0, 1, 2]  # the pending image is a NEW seq
    assert {seq: tier_bytes(services, sha, seq) for seq in (0, 1)} == before
    assert services.db.pending.get(pid) is None


def test_merge_replaces_a_missing_path(services: Services, models_root: Path) -> None:
    sha, pid = _existing_and_pending(services, models_root)
    services.db.models.update(sha, missing=True)
    services.promoter.promote(pid, "merge")
    model = services.db.models.get(sha)
    assert model is not None and model["path"].endswith("new.safetensors")
    assert model["missing"] is False


def test_delete(services: Services, models_root: Path) -> None:
    sha, pid = _existing_and_pending(services, models_root)
    model_before = services.db.models.get(sha)
    tiers_before = sorted(p.name for p in services.images.images_dir.glob("*.webp"))
    result = services.promoter.promote(pid, "delete")
    assert result == {"status": "success", "id": pid, "sha256": sha, "action_taken": "deleted"}
    assert services.db.models.get(sha) == model_before
    assert sorted(p.name for p in services.images.images_dir.glob("*.webp")) == tiers_before
    assert services.db.pending.get(pid) is None
    assert services.images.pending_images(pid) == []


def test_strategy_applies_only_on_conflict(services: Services, models_root: Path) -> None:
    pid, sha = add_pending(services, models_root, "solo.safetensors", 100)
    assert services.promoter.promote(pid, "delete")["action_taken"] == "created"
    assert services.db.models.get(sha) is not None


def test_unknown_strategy_is_rejected(services: Services, models_root: Path) -> None:
    pid, _ = add_pending(services, models_root, "x.safetensors", 100)
    for bad in ("overwrite", "", 1, "OVERRIDE"):
        with pytest.raises(ValidationError):
            services.promoter.promote(pid, bad)  # type: ignore[arg-type]
    assert services.db.pending.get(pid)["status"] == "new"


def test_unknown_id(services: Services) -> None:
    with pytest.raises(NotFoundError):
        services.promoter.promote(999)


def test_skip_policy_marks_conflict(services: Services, models_root: Path) -> None:
    sha, pid = _existing_and_pending(services, models_root)
    with pytest.raises(PromotionConflict):
        services.promoter.promote(pid, "skip")
    row = services.db.pending.get(pid)
    assert row["status"] == "conflict" and row["sha256"] == sha and sha in row["error"]


def test_missing_file_marks_error_and_keeps_row(services: Services, models_root: Path) -> None:
    pid, _ = add_pending(services, models_root, "gone.safetensors", 100, images=((1, 1, 1),))
    os.unlink(models_root / "checkpoints" / "gone.safetensors")
    with pytest.raises(PendingFileMissing):
        services.promoter.promote(pid)
    row = services.db.pending.get(pid)
    assert row["status"] == "error" and "not found" in row["error"]
    assert len(services.images.pending_images(pid)) == 1


def test_unreadable_file_marks_error(services: Services, models_root: Path) -> None:
    # A directory where the file should be cannot be read, even by root.
    path = models_root / "checkpoints" / "dir.safetensors"
    path.mkdir(parents=True)
    pid = services.db.pending.add({"path": str(path), "name": "dir"})
    with pytest.raises(PendingFileError):
        services.promoter.promote(pid)
    row = services.db.pending.get(pid)
    assert row["status"] == "error" and "cannot read" in row["error"]


def test_file_changing_during_hashing(services: Services, models_root: Path, config) -> None:
    pid, _ = add_pending(services, models_root, "grow.safetensors", 3 * config.hash_chunk_bytes)
    path = models_root / "checkpoints" / "grow.safetensors"

    def progress(done: int, total: int) -> None:
        if done == config.hash_chunk_bytes:
            with open(path, "ab") as f:
                f.write(b"appended")

    with pytest.raises(PendingFileError):
        services.promoter.promote(pid, progress=progress)
    row = services.db.pending.get(pid)
    assert row["status"] == "error" and "changed" in row["error"]
    # Once the file is stable again, a retry succeeds.
    assert services.promoter.promote(pid)["action_taken"] == "created"


def test_same_content_in_two_pending_items(services: Services, models_root: Path) -> None:
    a, sha = add_pending(services, models_root, "a.safetensors", b"twin")
    b, sha_b = add_pending(services, models_root, "b.safetensors", b"twin")
    assert sha == sha_b
    assert services.promoter.promote(a)["action_taken"] == "created"
    with pytest.raises(PromotionConflict) as info:
        services.promoter.promote(b)
    assert info.value.existing["path"].endswith("a.safetensors")
    assert info.value.pending["id"] == b


def test_second_caller_for_same_id_is_locked(services: Services, models_root: Path) -> None:
    pid, _ = add_pending(services, models_root, "lock.safetensors", 4 * 1024 * 1024)
    control = JobControl()
    control.pause()
    started = threading.Event()
    results: dict[str, object] = {}

    def first() -> None:
        results["first"] = services.promoter.promote(
            pid, control=control, progress=lambda d, t: started.set()
        )

    thread = threading.Thread(target=first)
    thread.start()
    try:
        for _ in range(200):
            if pid in services.promoter.locks.ids.held():
                break
            threading.Event().wait(0.01)
        with pytest.raises(LockedError):
            services.promoter.promote(pid)
    finally:
        control.resume()
        thread.join(10)
    assert results["first"]["action_taken"] == "created"


def test_cancel_leaves_row_untouched(services: Services, models_root: Path, config) -> None:
    pid, _ = add_pending(services, models_root, "c.safetensors", 4 * config.hash_chunk_bytes)
    control = JobControl()

    def progress(done: int, total: int) -> None:
        control.cancel()

    with pytest.raises(HashCancelled):
        services.promoter.promote(pid, control=control, progress=progress)
    assert services.db.pending.get(pid)["status"] == "new"
    assert pid not in services.promoter.locks.ids.held()


def test_retry_converges_a_leftover_journal_entry(services: Services, models_root: Path) -> None:
    pid, sha = add_pending(services, models_root, "j.safetensors", 100, images=((1, 2, 3),))
    # What a failed attempt of this process left: tiers staged for a hash, not committed.
    orphan_sha = "ab" * 32
    staged = services.images.add_image(orphan_sha, make_png(models_root.parent / "o.png"))
    services.promoter.journal.plan(pid, orphan_sha, [staged], services.images.pending_images(pid))
    assert services.promoter.promote(pid)["action_taken"] == "created"
    assert services.images.list_seqs(orphan_sha) == []  # rolled back
    assert services.images.list_seqs(sha) == [0]  # the pending image was kept for the retry
    assert services.db.state.get(JOURNAL_KEY) == {"entries": {}}


def test_journal_entry_of_another_process(services: Services, models_root: Path) -> None:
    pid, _ = add_pending(services, models_root, "k.safetensors", 100, images=((4, 5, 6),))
    source = services.images.pending_images(pid)[0]

    def entry_of(owner_pid: int) -> dict:
        entry = {"phase": "committed", "sha256": "cd" * 32, "staged": [], "moves": []}
        entry |= {"sources": [str(source)], "owner": {"pid": owner_pid, "token": "other"}}
        return {"entries": {str(pid): entry}}

    services.db.state.set(JOURNAL_KEY, entry_of(os.getppid()))  # a live process
    with pytest.raises(LockedError):
        services.promoter.promote(pid)
    assert services.promoter.recover() == 0
    assert source.exists() and services.db.pending.get(pid)["status"] == "new"

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    services.db.state.set(JOURNAL_KEY, entry_of(dead.pid))
    assert services.promoter.recover() == 1  # rolled forward: its originals are removed
    assert not source.exists()
    assert services.db.state.get(JOURNAL_KEY) == {"entries": {}}
