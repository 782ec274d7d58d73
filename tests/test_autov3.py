"""AutoV3 (the SHA-256 of a safetensors file's bytes after its header) in the same read as
the SHA-256, kept in the hash cache and on LoRA and embedding models; on real files."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from hikaze_mm.database import DatabaseManager
from hikaze_mm.hashing import HashJob, HashPaused, HashService
from hikaze_mm.jobs import JobControl
from hikaze_mm.services import Services
from tests.conftest import on_each_backend

config = on_each_backend()


def safetensors(path: Path, header: dict, data: bytes) -> str:
    """Write a safetensors file; returns the AutoV3 of it, worked out independently."""
    text = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return hashlib.sha256(data).hexdigest()[:12].upper()


def tensors(n: int) -> tuple[dict, bytes]:
    data = bytes(range(256)) * (n // 256) + b"x" * (n % 256)
    header = {"w": {"dtype": "U8", "shape": [len(data)], "data_offsets": [0, len(data)]}}
    return header, data


@pytest.fixture
def db(tmp_path: Path):
    lib = DatabaseManager(tmp_path / "lib.db")
    lib.init_db()
    yield lib
    lib.close()


@pytest.mark.parametrize("chunk", [3, 7, 8, 9, 4096, 1 << 20])
def test_autov3_in_the_same_read_at_any_chunk_size(db, tmp_path: Path, chunk: int) -> None:
    """The length prefix, the header and the tensors may each straddle a chunk boundary."""
    header, data = tensors(10_000)
    header["__metadata__"] = {"pad": "p" * 5000}
    expected = safetensors(tmp_path / "a.safetensors", header, data)
    service = HashService(db, chunk_size=chunk, workers=1)
    try:
        result = service.hash_file(tmp_path / "a.safetensors", autov3=True)
    finally:
        service.close()
    assert result.autov3 == expected
    assert result.sha256 == hashlib.sha256((tmp_path / "a.safetensors").read_bytes()).hexdigest()


def test_no_autov3_without_a_safetensors_header(db, tmp_path: Path) -> None:
    """A file whose first 8 bytes announce more header than it has is known to have none
    (""); without asking, it is not computed (None)."""
    (tmp_path / "junk.bin").write_bytes(b"\xff" * 64)
    (tmp_path / "short.bin").write_bytes(b"\x01\x02")
    service = HashService(db, workers=1)
    try:
        assert service.hash_file(tmp_path / "junk.bin", autov3=True).autov3 == ""
        assert service.hash_file(tmp_path / "short.bin", autov3=True).autov3 == ""
        assert service.hash_file(tmp_path / "junk.bin", use_cache=False).autov3 is None
    finally:
        service.close()


def test_a_paused_job_resumes_its_autov3(tmp_path: Path) -> None:
    header, data = tensors(50_000)
    expected = safetensors(tmp_path / "p.safetensors", header, data)
    job = HashJob(tmp_path / "p.safetensors", chunk_size=1000, autov3=True)
    control = JobControl()
    seen = []

    def pause_once(done: int, _total: int) -> None:
        seen.append(done)
        if len(seen) == 5:
            control.pause()

    with pytest.raises(HashPaused):
        job.run(control, pause_once)
    control.resume()
    job.run(control)
    assert job.tail is not None and job.tail.autov3(job.offset) == expected


def test_the_cache_keeps_autov3(db, tmp_path: Path) -> None:
    """A cache hit returns the AutoV3 without reading the file; hashing the same content
    again without asking for it keeps it; new content forgets it."""
    path = tmp_path / "l.safetensors"
    header, data = tensors(3000)
    expected = safetensors(path, header, data)
    service = HashService(db, workers=1)
    try:
        assert service.hash_file(path, autov3=True).autov3 == expected
        hit = service.hash_file(path, autov3=True)
        assert (hit.cached, hit.bytes_read, hit.autov3) == (True, 0, expected)
        again = service.hash_file(path, use_cache=False)
        assert again.autov3 is None and service.lookup_cache(path).autov3 == expected
        safetensors(path, header, data + b"more")
        service.hash_file(path, use_cache=False)
        assert service.lookup_cache(path).autov3 is None
    finally:
        service.close()


def test_a_scan_stores_autov3_for_loras_and_embeddings_only(
    services: Services, models_root: Path
) -> None:
    header, data = tensors(4000)
    lora = safetensors(models_root / "loras" / "style.safetensors", header, data)
    embedding = safetensors(models_root / "embeddings" / "neg.safetensors", header, data + b"e")
    safetensors(models_root / "checkpoints" / "base.safetensors", header, data + b"c")
    counts = services.scanner.scan(immediate_hashing=True).counts
    assert counts.promoted == 3
    by_name = {}
    for sha in services.db.listing.all_sha256s():
        model = services.db.models.get(sha)
        by_name[model["name"]] = model
    assert by_name["style"]["autov3"] == lora
    assert by_name["neg"]["autov3"] == embedding
    assert by_name["base"]["autov3"] is None
    assert services.db.models.find_by_autov3(lora.lower()) == [by_name["style"]["sha256"]]
    sha = by_name["style"]["sha256"]
    assert services.db.models.find_by_prefix(sha[:10].upper()) == [sha]
    assert services.db.models.find_by_prefix("not hex") == []
    assert services.db.models.without_autov3(["loras", "embeddings"]) == []
    assert services.db.models.without_autov3(["checkpoints"]) == [
        (by_name["base"]["sha256"], by_name["base"]["path"])
    ]


def test_the_backfill_fills_older_loras_once(services: Services, models_root: Path) -> None:
    """Models recorded before AutoV3 existed get it from one read of their file; a file
    with no safetensors header is remembered as having none, so no start reads it again;
    a changed file and an absent one are left to the scanner."""
    header, data = tensors(2000)
    folder = models_root / "loras"
    old = safetensors(folder / "old.safetensors", header, data)
    (folder / "legacy.pt").write_bytes(b"\x80\x02not safetensors at all")
    safetensors(folder / "edited.safetensors", header, data + b"edited")
    records = {
        "old": folder / "old.safetensors",
        "legacy": folder / "legacy.pt",
        "edited": folder / "edited.safetensors",
        "absent": folder / "absent.safetensors",
        "base": folder / "base.safetensors",
    }
    shas = {}
    for name, path in records.items():
        content = path.read_bytes() if path.exists() and name != "edited" else name.encode()
        shas[name] = hashlib.sha256(content).hexdigest()
        kind = "checkpoints" if name == "base" else "loras"
        services.db.models.upsert({"sha256": shas[name], "path": str(path), "type": kind})
    safetensors(folder / "base.safetensors", header, data + b"base")

    assert services.autov3.start_if_needed() is True
    assert services.autov3.wait(30)
    report = services.autov3.job.status()["last_report"]
    assert report["counts"] == {"filled": 1, "none": 1, "absent": 1, "changed": 1}
    assert services.db.models.get(shas["old"])["autov3"] == old
    assert services.db.models.get(shas["legacy"])["autov3"] == ""
    assert services.db.models.get(shas["edited"])["autov3"] is None
    assert services.db.models.get(shas["base"])["autov3"] is None  # not a LoRA
    jobs = {job["name"] for job in services.jobs.snapshots()}
    assert "autov3" in jobs

    for name in ("edited", "absent"):
        services.db.models.update(shas[name], missing=True)
    assert services.autov3.start_if_needed() is False  # nothing left to read
