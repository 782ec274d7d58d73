"""Downloads against our storage host on 127.0.0.1: verified while written, promoted at
once, resumed with Range, refused when wrong (tests/storage_fake.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.errors import ConflictError, ValidationError
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import make_sparse, write_model
from tests.storage_fake import FakeStorage
from tests.waiting import wait_until

config = on_each_backend()

MIB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    block = hashlib.sha256(f"model-{seed}".encode()).digest() * 4096
    return (block * (size // len(block) + 1))[:size]


def finished(svc: Services, download_id: int, *, statuses=("done", "failed")) -> dict[str, Any]:
    return wait_until(
        lambda: svc.downloads.get(download_id),
        lambda view: view["status"] in statuses,
        timeout=60,
        message=lambda: f"download {download_id} to end: {svc.downloads.get(download_id)}",
    )


def test_a_url_download_is_verified_and_promoted_without_a_second_read(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    data = payload(9 * MIB)
    sha = hashlib.sha256(data).hexdigest()
    storage.put("alpha.safetensors", data)
    reads: list[str] = []
    services.hashes.on_chunk = lambda path, _done: reads.append(path)
    seen: list[dict[str, Any]] = []
    services.downloads.add_listener(seen.append)
    queued = services.downloads.enqueue(
        storage.file_url("alpha.safetensors"), type="loras", sha256=sha
    )
    assert queued["status"] == "queued"
    view = finished(services, queued["id"])
    final = models_root / "loras" / "alpha.safetensors"
    assert view["status"] == "done", view
    assert view["path"] == str(final) and view["sha256"] == sha
    assert view["bytes_done"] == len(data) == view["bytes_total"]
    assert final.read_bytes() == data and not Path(f"{final}.part").exists()
    model = services.db.models.get(sha)
    assert model is not None and model["path"] == str(final) and model["type"] == "loras"
    st = final.stat()
    assert services.db.hash_cache.lookup(str(final), st.st_size, st.st_mtime_ns, st.st_ino) == sha
    assert reads == []  # the promoter's hash was a cache hit: the file was never read
    assert services.db.pending.count() == 0
    assert {"running", "verifying", "done"} <= {v["status"] for v in seen}


def test_wrong_bytes_are_refused_naming_both_hashes(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    data = payload(3 * MIB)
    storage.put("wrong.safetensors", data)
    expected = "ab" * 32
    queued = services.downloads.enqueue(
        storage.file_url("wrong.safetensors"), type="loras", sha256=expected
    )
    view = finished(services, queued["id"])
    assert view["status"] == "failed"
    assert expected in view["error"] and hashlib.sha256(data).hexdigest() in view["error"]
    assert list((models_root / "loras").iterdir()) == []  # the part file is gone
    assert services.db.models.get(hashlib.sha256(data).hexdigest()) is None


def test_a_dropped_connection_resumes_with_range(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    data = payload(6 * MIB, seed=2)
    storage.put("drop.safetensors", data)
    storage.drop_at = [2 * MIB + 123]
    queued = services.downloads.enqueue(storage.file_url("drop.safetensors"), type="vae")
    view = finished(services, queued["id"])
    assert view["status"] == "done", view
    assert (models_root / "vae" / "drop.safetensors").read_bytes() == data
    ranges = [h.get("Range") for h in storage.headers_seen()]
    assert ranges[0] is None and len(ranges) == 2
    assert ranges[1] is not None and int(ranges[1][len("bytes=") : -1]) > 0
    assert storage.served_bytes == len(data)  # nothing sent twice


def test_a_server_ignoring_range_starts_over_and_still_verifies(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    data = payload(5 * MIB, seed=3)
    sha = hashlib.sha256(data).hexdigest()
    storage.put("norange.safetensors", data)
    storage.drop_at = [MIB + 7]
    storage.ignore_range = True
    queued = services.downloads.enqueue(
        storage.file_url("norange.safetensors"), type="loras", sha256=sha
    )
    view = finished(services, queued["id"])
    assert view["status"] == "done", view
    assert (models_root / "loras" / "norange.safetensors").read_bytes() == data
    assert [h.get("Range") is not None for h in storage.headers_seen()] == [False, True]
    assert storage.served_bytes > len(data)  # it started over


def test_a_slow_download_pauses_and_resumes(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    data = payload(2 * MIB, seed=4)
    storage.put("slow.safetensors", data)
    storage.slow = 256 * 1024
    queued = services.downloads.enqueue(storage.file_url("slow.safetensors"), type="loras")
    wait_until(
        lambda: services.downloads.get(queued["id"]),
        lambda v: v["status"] == "running" and (v["bytes_done"] or 0) > 64 * 1024,
        message="the download to be under way",
    )
    assert services.downloads.get(queued["id"])["speed"] is not None
    services.downloads.pause(queued["id"])
    paused = finished(services, queued["id"], statuses=("paused",))
    part = models_root / "loras" / "slow.safetensors.part"
    assert 0 < part.stat().st_size < len(data)
    assert paused["bytes_done"] == part.stat().st_size
    storage.slow = 0
    services.downloads.resume(queued["id"])
    view = finished(services, queued["id"])
    assert view["status"] == "done", view
    assert (models_root / "loras" / "slow.safetensors").read_bytes() == data
    assert storage.headers_seen()[-1]["Range"] == f"bytes={paused['bytes_done']}-"


def test_cancel_deletes_the_part_file_and_delete_needs_a_finished_download(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    storage.put("cancel.safetensors", payload(2 * MIB, seed=5))
    storage.slow = 128 * 1024
    queued = services.downloads.enqueue(storage.file_url("cancel.safetensors"), type="loras")
    part = models_root / "loras" / "cancel.safetensors.part"
    wait_until(part.exists, message="the part file")
    with pytest.raises(ConflictError):
        services.downloads.delete(queued["id"])
    services.downloads.cancel(queued["id"])
    finished(services, queued["id"], statuses=("cancelled",))
    assert not part.exists()
    with pytest.raises(ConflictError):
        services.downloads.resume(queued["id"])
    services.downloads.delete(queued["id"])
    assert all(v["id"] != queued["id"] for v in services.downloads.list())


def test_a_model_already_in_the_library_is_not_fetched(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    sha = write_model(models_root / "loras" / "have.safetensors", 4096)
    services.db.models.upsert(
        {"sha256": sha, "path": str(models_root / "loras" / "have.safetensors")}
    )
    storage.put("have.safetensors", b"x" * 4096)
    answer = services.downloads.enqueue(
        storage.file_url("have.safetensors"), type="loras", sha256=sha
    )
    assert answer["status"] == "done"
    assert services.downloads.get(answer["id"])["path"] == str(
        models_root / "loras" / "have.safetensors"
    )
    assert storage.requests == []


def test_an_existing_file_is_never_overwritten(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    other = models_root / "loras" / "same.safetensors"
    write_model(other, 1000, seed=9)
    before = other.read_bytes()
    data = payload(MIB, seed=6)
    storage.put("same.safetensors", data)
    view = finished(
        services,
        services.downloads.enqueue(storage.file_url("same.safetensors"), type="loras")["id"],
    )
    assert view["status"] == "done" and view["path"] == str(
        models_root / "loras" / "same (1).safetensors"
    )
    assert other.read_bytes() == before and Path(view["path"]).read_bytes() == data
    again = finished(
        services,
        services.downloads.enqueue(storage.file_url("same.safetensors"), type="loras")["id"],
    )
    assert again["path"] == view["path"]  # the same content: that file is the download
    assert sorted(p.name for p in (models_root / "loras").iterdir()) == [
        "same (1).safetensors",
        "same.safetensors",
    ]


def test_too_little_free_space_is_refused_before_writing(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    free = shutil.disk_usage(storage.folder).free
    make_sparse(storage.folder / "huge.safetensors", free + 2 * 1024**3)
    view = finished(
        services,
        services.downloads.enqueue(storage.file_url("huge.safetensors"), type="checkpoints")["id"],
    )
    assert view["status"] == "failed" and "not enough free space" in view["error"]
    assert not any((models_root / "checkpoints").iterdir())
    assert storage.served_bytes < 64 * MIB


def test_an_html_page_is_never_saved(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    storage.html = True
    view = finished(
        services,
        services.downloads.enqueue(storage.file_url("page.safetensors"), type="loras")["id"],
    )
    assert (
        view["status"] == "failed" and view["error"] == "the server sent an HTML page, not a model"
    )
    assert not any((models_root / "loras").iterdir())


def test_bad_requests_queue_nothing(services: Services, tmp_path: Path) -> None:
    bad = [
        {"source": ""},
        {"source": "ftp://example.invalid/a.bin", "type": "loras"},
        {"source": "http://127.0.0.1:9/a.safetensors", "type": "loras", "sha256": "xyz"},
        {"source": "http://127.0.0.1:9/a.safetensors", "folder": str(tmp_path / "elsewhere")},
        {"source": "http://127.0.0.1:9/a.safetensors", "type": "loras", "file_id": -1},
    ]
    for args in bad:
        with pytest.raises(ValidationError):
            services.downloads.enqueue(**args)
    assert services.downloads.list() == []


def test_concurrency_caps_running_downloads(
    data_dir: Path, models_root: Path, storage: FakeStorage
) -> None:
    config = Config.load(
        data_dir=data_dir, model_roots=[str(models_root)], env={"HIKAZE_DOWNLOAD_CONCURRENCY": "1"}
    )
    storage.slow = 512 * 1024
    with_services = Services.open(config)
    try:
        ids = []
        for i in range(2):
            storage.put(f"c{i}.safetensors", payload(MIB, seed=10 + i))
            ids.append(
                with_services.downloads.enqueue(
                    storage.file_url(f"c{i}.safetensors"), type="loras"
                )["id"]
            )
        statuses = wait_until(
            lambda: [with_services.downloads.get(i)["status"] for i in ids],
            lambda s: s[0] == "running",
        )
        assert statuses[1] == "queued"
        storage.slow = 0
        for i in ids:
            assert finished(with_services, i)["status"] == "done"
    finally:
        with_services.close()
    assert os.path.exists(models_root / "loras" / "c1.safetensors")


def test_a_part_file_already_whole_is_verified_without_fetching_it_again(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    """Killed while verifying: the next start asks for the rest (416: there is none),
    verifies the part file and promotes it."""
    data = payload(2 * MIB, seed=30)
    sha = hashlib.sha256(data).hexdigest()
    storage.put("whole.safetensors", data)
    part = models_root / "loras" / "whole.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data)
    url = storage.file_url("whole.safetensors")
    left = services.db.downloads.add(
        url, status="verifying", type="loras", part_path=str(part), folder=str(part.parent),
        request={"source": url, "type": "loras", "sha256": sha}, expected_sha256=sha,
    )  # fmt: skip
    assert services.downloads.recover() == 1
    view = finished(services, left)
    assert view["status"] == "done", view
    assert view["path"] == str(models_root / "loras" / "whole.safetensors")
    assert storage.served_bytes == 0
    assert [h.get("Range") for h in storage.headers_seen()] == [f"bytes={len(data)}-"]
    assert services.db.models.get(sha) is not None


def test_a_download_can_be_saved_under_the_name_a_workflow_gives(
    services: Services, storage: FakeStorage, models_root: Path
) -> None:
    storage.put("x.safetensors", payload(MIB, seed=31))
    url = storage.file_url("x.safetensors")
    with pytest.raises(ValidationError):
        services.downloads.enqueue(url, type="loras", file_name="../escape.safetensors")
    queued = services.downloads.enqueue(url, type="loras", file_name="wanted_name.safetensors")
    view = finished(services, queued["id"])
    assert view["path"] == str(models_root / "loras" / "wanted_name.safetensors"), view
    nested = services.downloads.enqueue(url, type="loras", file_name="sdxl\\styles/ink.safetensors")
    view = finished(services, nested["id"])
    assert view["path"] == str(models_root / "loras" / "sdxl" / "styles" / "ink.safetensors"), view
