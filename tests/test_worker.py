"""MigrationManager and its worker on a real library: runs, pause/resume, restarts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.errors import ConflictError, NotFoundError, ValidationError
from hikaze_mm.pending.state import state_key
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import make_sparse
from tests.promotion_helpers import add_pending
from tests.waiting import wait_until

config = on_each_backend()


def add_sparse_pending(services: Services, root: Path, name: str, size: int, tail: bytes) -> int:
    path = root / "checkpoints" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    make_sparse(path, size, tail=tail)
    return services.db.pending.add({"path": str(path), "name": name})


def test_full_run_counts_every_outcome(services: Services, models_root: Path) -> None:
    a, _ = add_pending(services, models_root, "a.safetensors", 5000, images=((1, 2, 3),))
    b, _ = add_pending(services, models_root, "b.safetensors", 6000, tags=("t",))
    twin, sha_twin = add_pending(services, models_root, "twin1.safetensors", b"same")
    twin2, _ = add_pending(services, models_root, "twin2.safetensors", b"same", base="SDXL")
    gone, _ = add_pending(services, models_root, "gone.safetensors", 10)
    os.unlink(models_root / "checkpoints" / "gone.safetensors")

    status = services.migration.start_full_migration()
    assert status["status"] == "RUNNING"
    assert services.migration.wait(30)
    status = services.migration.get_status()
    assert status["status"] == "COMPLETED" and status["progress"] == 100.0
    stats = status["stats"]
    assert stats["total_items"] == stats["processed_items"] == 5
    assert (stats["promoted"], stats["merged"], stats["errors"], stats["conflicts"]) == (3, 1, 1, 0)
    assert status["current_items"] == [] and status["current_file"] is None
    # The default policy "merge" filled the twin's empty base from the second item.
    assert services.db.models.get(sha_twin)["base"] == "SDXL"
    for pid in (a, b, twin, twin2):
        assert services.db.pending.get(pid) is None
    assert services.db.pending.get(gone)["status"] == "error"
    # The state lives in the DB.
    assert services.db.state.get(state_key(services.db))["status"] == "COMPLETED"


def test_skip_policy_leaves_conflicts_pending(services: Services, models_root: Path) -> None:
    add_pending(services, models_root, "x1.safetensors", b"dup")
    _, sha = add_pending(services, models_root, "x2.safetensors", b"dup")
    services.migration.start_full_migration(conf_strategy="skip")
    assert services.migration.wait(30)
    stats = services.migration.get_status()["stats"]
    assert stats["promoted"] + stats["conflicts"] == 2 and stats["conflicts"] == 1
    rows = services.db.pending.list(status="conflict")
    assert len(rows) == 1 and rows[0]["sha256"] == sha


def pause_at_chunk(services: Services, chunk: int) -> threading.Event:
    """Pause the migration from the hashing thread right after it has read ``chunk``
    chunks of the first file: a known point, whatever the machine's speed."""
    paused = threading.Event()
    at = chunk * services.hashes.chunk_size

    def hook(_path: str, done: int) -> None:
        if done == at and not paused.is_set():
            services.migration.pause_processing()
            paused.set()

    services.hashes.on_chunk = hook
    return paused


def test_pause_mid_file_and_resume_from_same_offset(
    services: Services, models_root: Path, config: Config
) -> None:
    chunk = services.hashes.chunk_size
    size = 16 * chunk
    pid = add_sparse_pending(services, models_root, "big.safetensors", size, b"big")
    mgr = services.migration
    paused = pause_at_chunk(services, 4)
    mgr.start_full_migration()
    assert paused.wait(30)
    assert services.db.state.get(state_key(services.db))["status"] == "PAUSED"
    status = mgr.get_status()
    # It stopped exactly after chunk 4, mid-file: the pause is seen before the next read.
    assert status["status"] == "PAUSED"
    assert status["current_item"]["bytes_done"] == 4 * chunk
    assert status["stats"]["bytes_read"] == 4 * chunk
    mgr.resume_processing()
    assert mgr.wait(60)
    status = mgr.get_status()
    assert status["status"] == "COMPLETED" and status["stats"]["promoted"] == 1
    # Every byte was read once: the resumed job went on from its offset.
    assert status["stats"]["bytes_read"] == size
    assert services.db.pending.get(pid) is None


def test_restart_resumes_and_redoes_nothing(config: Config, models_root: Path) -> None:
    services = Services.open(config)
    ids = [
        add_sparse_pending(services, models_root, f"m{n}.safetensors", 64 * 1024 * 1024, bytes([n]))
        for n in range(6)
    ]
    mgr = services.migration
    mgr.start_full_migration()
    wait_until(
        lambda: mgr.get_status()["stats"]["processed_items"],
        lambda done: done >= 2,
        interval=0.001,
        message="two items processed",
    )
    services.close()  # stops the worker mid-run; the state stays RUNNING
    persisted = services.db.state.get(state_key(services.db))
    assert persisted["status"] == "RUNNING"
    done_before = persisted["processed_items"]
    assert done_before >= 2
    # Outcomes are counted in the transaction that records them: the counter is exact.
    remaining = [i for i in ids if services.db.pending.get(i) is not None]
    assert len(remaining) == 6 - done_before

    again = Services.open(config)
    try:
        status = again.migration.get_status()
        assert status["status"] == "RUNNING" and status["active"] is False
        assert status["stats"]["processed_items"] == done_before
        again.migration.recover()  # what the server does at startup
        assert again.migration.wait(60)
        status = again.migration.get_status()
        assert status["status"] == "COMPLETED"
        assert status["stats"]["processed_items"] == status["stats"]["total_items"] == 6
        assert status["stats"]["promoted"] == 6  # a redone item would count as merged
        assert again.db.pending.count() == 0
    finally:
        again.close()


def test_worker_skips_an_id_the_api_is_promoting(services: Services, models_root: Path) -> None:
    held, _ = add_pending(services, models_root, "held.safetensors", 100)
    free, _ = add_pending(services, models_root, "free.safetensors", 200)
    with services.promoter.locks.ids.hold(held):
        services.migration.start_full_migration()
        assert services.migration.wait(30)
    status = services.migration.get_status()
    assert status["stats"]["total_items"] == status["stats"]["processed_items"] == 1
    assert services.db.pending.get(held)["status"] == "new"
    assert services.db.pending.get(free) is None


def test_control_errors(services: Services, tmp_path: Path) -> None:
    mgr = services.migration
    with pytest.raises(ConflictError):
        mgr.pause_processing()
    with pytest.raises(ConflictError):
        mgr.resume_processing()
    with pytest.raises(NotFoundError):
        mgr.start_full_migration(tmp_path / "no.db")
    with pytest.raises(ValidationError):
        mgr.start_full_migration(conf_strategy="overwrite")
    assert mgr.get_status()["status"] == "IDLE"
    mgr.start_full_migration()
    assert mgr.wait(10)
    assert mgr.get_status()["status"] == "COMPLETED"


def test_recover_resets_rows_a_dead_process_left_hashing(
    services: Services, models_root: Path
) -> None:
    stale, _ = add_pending(services, models_root, "stale.safetensors", 100)
    busy, _ = add_pending(services, models_root, "busy.safetensors", 100)
    for pid in (stale, busy):
        services.db.pending.update(pid, status="hashing")
    with services.promoter.locks.ids.hold(busy):  # promoted in this process right now
        status = services.migration.recover()
    assert status["status"] == "IDLE" and not services.migration.active
    assert services.db.pending.get(stale)["status"] == "new"
    assert services.db.pending.get(busy)["status"] == "hashing"


def test_a_later_count_is_never_overwritten_by_an_earlier_one(services: Services) -> None:
    """Two worker threads record outcomes at once. The first count's write is held back
    until the second's is made, if the second can be made meanwhile: each unit of work
    holds the run's state from its count to its end, so it cannot, and the persisted
    counter is the last one (not the first, written last)."""
    tracker = services.migration.tracker
    state = services.db.state
    real_set = state.set
    first_writing, second_counted = threading.Event(), threading.Event()

    def set_in_turn(key: str, value: dict) -> None:
        if value.get("processed_items") == 1:
            first_writing.set()
            second_counted.wait(1.0)  # in vain while the first unit holds the state
        elif value.get("processed_items") == 2:
            second_counted.set()
        real_set(key, value)

    state.set = set_in_turn  # type: ignore[method-assign]

    def record(pending_id: int) -> None:
        with services.db.transaction():
            tracker.on_outcome("promoted", {"id": pending_id})

    first = threading.Thread(target=record, args=(1,))
    first.start()
    assert first_writing.wait(10)
    second = threading.Thread(target=record, args=(2,))
    second.start()
    first.join()
    second.join()
    assert tracker.snapshot().processed_items == 2
    assert real_set.__self__.get(tracker.key)["processed_items"] == 2
