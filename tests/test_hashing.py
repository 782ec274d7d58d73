"""The SHA-256 service on real files."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from hikaze_mm.database import DatabaseManager
from hikaze_mm.hashing import (
    FileChangedError,
    HashCancelled,
    HashJob,
    HashPaused,
    HashService,
    short_hash,
)
from hikaze_mm.jobs import JobControl
from tests.helpers import make_sparse, set_mtime_ns, sha256_of, write_model

CHUNK = 64 * 1024


@pytest.fixture
def service(tmp_path: Path):
    db = DatabaseManager(tmp_path / "lib.db")
    db.init_db()
    svc = HashService(db, chunk_size=CHUNK, workers=2)
    yield svc
    svc.close()
    db.close()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_digest_matches_hashlib(service: HashService, tmp_path: Path, size: int) -> None:
    path = tmp_path / f"f{size}.bin"
    expected = write_model(path, size)
    result = service.hash_file(path)
    assert result.sha256 == expected == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.bytes_read == size and result.cached is False
    assert result.short_hash == expected[:10] == short_hash(expected)


@pytest.mark.slow
def test_multi_gb_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    make_sparse(path, 3 * 1024**3 + 5)
    svc = HashService(None, chunk_size=4 * 1024 * 1024)
    try:
        result = svc.hash_file(path)
    finally:
        svc.close()
    assert result.sha256 == sha256_of(path)
    assert result.stat.size == 3 * 1024**3 + 5


def test_cancel_mid_file(tmp_path: Path) -> None:
    path = tmp_path / "c.bin"
    write_model(path, 40 * CHUNK)
    control = JobControl()
    job = HashJob(path, CHUNK)

    def progress(done: int, total: int) -> None:
        if done >= 10 * CHUNK:
            control.cancel()

    with pytest.raises(HashCancelled):
        job.run(control, progress)
    assert job.offset == 10 * CHUNK


def test_pause_and_resume_continue_from_same_offset(tmp_path: Path) -> None:
    path = tmp_path / "p.bin"
    expected = write_model(path, 50 * CHUNK + 3)
    control = JobControl()
    job = HashJob(path, CHUNK)
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 20 * CHUNK:
            control.pause()

    with pytest.raises(HashPaused):
        job.run(control, progress)
    assert job.offset == 20 * CHUNK
    control.resume()
    assert job.run(control, progress) == expected
    # Every byte was read exactly once: no chunk before the pause was read again.
    assert job.bytes_read == 50 * CHUNK + 3
    assert seen[20] == 21 * CHUNK


def test_service_blocks_while_paused_then_finishes(service: HashService, tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    expected = write_model(path, 30 * CHUNK)
    control = JobControl()
    reached = threading.Event()
    jobs: list[HashJob] = []

    def progress(done: int, total: int) -> None:
        if done == 5 * CHUNK:
            control.pause()
            reached.set()

    result: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: result.update(
            r=service.hash_file(path, control=control, progress=progress, on_job=jobs.append)
        )
    )
    worker.start()
    assert reached.wait(10)
    worker.join(0.3)
    assert worker.is_alive()  # paused, not finished
    assert jobs[0].offset == 5 * CHUNK
    control.resume()
    worker.join(10)
    assert result["r"].sha256 == expected
    assert result["r"].bytes_read == 30 * CHUNK


def test_cache_hit_reads_nothing(service: HashService, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    first = write_model(path, 5 * CHUNK)
    assert service.hash_file(path).cached is False
    # Rewrite the bytes in place and put the old mtime back: size, mtime_ns and inode match,
    # so a service that honours the cache must return the old digest without reading.
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"\xff" * 100)
    set_mtime_ns(path, st.st_mtime_ns)
    hit = service.hash_file(path)
    assert hit.cached is True and hit.bytes_read == 0 and hit.sha256 == first
    # Touching the file invalidates the entry.
    set_mtime_ns(path, st.st_mtime_ns + 1_000_000_000)
    fresh = service.hash_file(path)
    assert fresh.cached is False and fresh.sha256 == sha256_of(path) != first


def test_change_during_hashing_is_detected(service: HashService, tmp_path: Path) -> None:
    path = tmp_path / "ch.bin"
    write_model(path, 20 * CHUNK)

    def progress(done: int, total: int) -> None:
        if done == 4 * CHUNK:
            with open(path, "ab") as f:
                f.write(b"more")

    with pytest.raises(FileChangedError):
        service.hash_file(path, progress=progress)
    assert service.lookup_cache(path) is None  # the digest was thrown away


def test_change_while_paused_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "cp.bin"
    write_model(path, 10 * CHUNK)
    control = JobControl()
    job = HashJob(path, CHUNK)
    control.pause()
    with pytest.raises(HashPaused):
        job.run(control)
    st = path.stat()
    set_mtime_ns(path, st.st_mtime_ns + 5_000_000_000)
    control.resume()
    with pytest.raises(FileChangedError):
        job.run(control)


def test_missing_file_raises_oserror(service: HashService, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        service.hash_file(tmp_path / "nope.bin")
