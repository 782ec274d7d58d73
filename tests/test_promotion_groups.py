"""Grouped promotion (``Promoter.group``): many promotions in one write transaction, and
never a file read, a lock awaited or an image journaled inside it; on a real library."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database.manager import DatabaseManager
from hikaze_mm.pending.promotion import PromotionConflict, PromotionDeferred
from hikaze_mm.services import Services
from tests.conftest import on_each_backend, sqlite_only
from tests.helpers import write_model
from tests.promotion_helpers import add_pending

config = on_each_backend()


def queued(services: Services, root: Path, count: int) -> list[tuple[int, str]]:
    """``count`` pending models, each hashed ahead (as a scan does before a group)."""
    items = []
    for n in range(count):
        pid, sha = add_pending(services, root, f"g{n}.safetensors", 2048, seed=n)
        services.promoter.hash_ahead(services.db.pending.get(pid)["path"], "checkpoints")
        items.append((pid, sha))
    return items


def test_a_group_is_one_transaction(services: Services, models_root: Path) -> None:
    """Everything a group promoted goes together: an error before the group ends undoes
    all of it, and the same promotions in a group that ends are all there."""
    items = queued(services, models_root, 3)
    with pytest.raises(RuntimeError), services.promoter.group():
        for pid, _ in items:
            assert services.promoter.promote(pid)["action_taken"] == "created"
        raise RuntimeError("the caller fails before the group ends")
    assert all(services.db.models.get(sha) is None for _, sha in items)
    assert all(services.db.pending.get(pid)["status"] == "new" for pid, _ in items)

    with services.promoter.group():
        for pid, _ in items:
            services.promoter.promote(pid)
    assert all(services.db.models.get(sha) is not None for _, sha in items)
    assert all(services.db.pending.get(pid) is None for pid, _ in items)


def test_a_file_not_hashed_yet_is_deferred(services: Services, models_root: Path) -> None:
    """In a group a file is never read: without its hash in the cache the promotion is
    deferred, and the row is as it was; alone, it is hashed and promoted."""
    pid, sha = add_pending(services, models_root, "late.safetensors", 4096)
    path = services.db.pending.get(pid)["path"]
    with services.promoter.group(), pytest.raises(PromotionDeferred):
        services.promoter.promote(pid)
    assert services.db.pending.get(pid)["status"] == "new"
    assert services.db.hash_cache.rows([path]) == {}
    assert services.promoter.promote(pid)["sha256"] == sha


def test_pending_images_are_deferred(services: Services, models_root: Path) -> None:
    """Moving pending images needs the journal and its own commit: deferred, untouched."""
    pid, sha = add_pending(services, models_root, "pics.safetensors", 4096, images=((1, 2, 3),))
    services.promoter.hash_ahead(services.db.pending.get(pid)["path"], "checkpoints")
    with services.promoter.group(), pytest.raises(PromotionDeferred):
        services.promoter.promote(pid)
    assert len(services.images.pending_images(pid)) == 1
    assert services.images.list_seqs(sha) == []
    services.promoter.promote(pid)
    assert services.images.list_seqs(sha) == [0]
    assert services.images.pending_images(pid) == []


def test_a_hash_held_elsewhere_is_deferred_not_awaited(
    services: Services, models_root: Path
) -> None:
    """A group holds the write lock, so it never waits for another thread's hash lock
    (that thread may be waiting for the write lock): the promotion is deferred at once."""
    [(pid, sha)] = queued(services, models_root, 1)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with services.promoter.locks.hashes.hold(sha):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with services.promoter.group(), pytest.raises(PromotionDeferred):
            services.promoter.promote(pid)
    finally:
        release.set()
        holder.join()
    assert services.db.models.get(sha) is None
    services.promoter.promote(pid)
    assert services.db.models.get(sha) is not None


def test_same_content_twice_in_one_group(services: Services, models_root: Path) -> None:
    """The second copy sees the first one's model inside the group: a conflict, recorded."""
    first, sha = add_pending(services, models_root, "one.safetensors", b"same bytes")
    second, _ = add_pending(services, models_root, "two.safetensors", b"same bytes")
    for pid in (first, second):
        services.promoter.hash_ahead(services.db.pending.get(pid)["path"], "checkpoints")
    with services.promoter.group():
        services.promoter.promote(first)
        with pytest.raises(PromotionConflict):
            services.promoter.promote(second)
    assert services.db.models.get(sha)["name"] == "one"
    row = services.db.pending.get(second)
    assert (row["status"], row["sha256"]) == ("conflict", sha)


# ------------------------------------------------------------------- a scan's groups
@pytest.fixture
def model_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """For each row written into ``models``, the number of the write transaction it was
    written in (SQLite's own statement trace on every connection the library opens; a
    statement may write several rows, each keyed by its hash, the first value of a row;
    the trace repeats a statement as its triggers run)."""
    writes: dict[str, int] = {}
    transactions = iter(range(1, 1 << 30))
    current = [0]
    real_connect = DatabaseManager._connect

    def trace(statement: str) -> None:
        if statement.startswith("BEGIN"):
            current[0] = next(transactions)
        elif statement.startswith("INSERT INTO models "):
            for sha in re.findall(r"\('([0-9a-f]{64})',", statement):
                writes.setdefault(sha, current[0])

    def connect(self: DatabaseManager) -> sqlite3.Connection:
        conn = real_connect(self)
        conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(DatabaseManager, "_connect", connect)
    yield writes


@sqlite_only
def test_a_scan_promotes_in_groups_and_hashes_outside_them(
    config: Config, models_root: Path, model_writes: dict[str, int]
) -> None:
    """200 new files and a copy of one: the models are written in a few transactions,
    not one each, and while a file is read for its hash another process can take the
    write lock."""
    for n in range(200):
        write_model(models_root / "loras" / f"m{n}.safetensors", 3000, seed=n)
    (models_root / "loras" / "copy.safetensors").write_bytes(
        (models_root / "loras" / "m7.safetensors").read_bytes()
    )
    services = Services.open(config)
    lock_was_free: list[bool] = []

    def try_to_write(path: str, done: int) -> None:
        other = sqlite3.connect(config.db_path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            lock_was_free.append(True)
        except sqlite3.OperationalError:
            lock_was_free.append(False)
        finally:
            other.close()

    services.hashes.on_chunk = try_to_write
    try:
        counts = services.scanner.scan(immediate_hashing=True).counts
        assert (counts.promoted, counts.conflicts, counts.errors) == (200, 1, 0)
        assert len(services.db.listing.all_sha256s()) == 200
    finally:
        services.close()
    assert len(model_writes) == 200
    assert len(set(model_writes.values())) <= 200 // 16
    assert len(lock_was_free) >= 201 and all(lock_was_free)
