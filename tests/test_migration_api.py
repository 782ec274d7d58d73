"""Stage 2 HTTP API over a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from hikaze_mm.server.http import SERVICES_KEY
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import make_sparse, sha256_of
from tests.promotion_helpers import add_pending, make_png
from tests.waiting import wait_until_async

config = on_each_backend()


def svc(client) -> Services:
    return client.server.app[SERVICES_KEY]


async def migration_status(client) -> dict[str, Any]:
    resp = await client.get("/api/migration/status")
    assert resp.status == 200
    return await resp.json()


async def test_import_a_model_created(client, models_root: Path) -> None:
    pid, sha = add_pending(svc(client), models_root, "a.safetensors", 3000, images=((9, 9, 9),))
    resp = await client.post("/api/migration/import_a_model", json={"id": pid})
    assert resp.status == 200
    assert await resp.json() == {
        "status": "success",
        "id": pid,
        "sha256": sha,
        "action_taken": "created",
    }
    assert svc(client).images.list_seqs(sha) == [0]
    resp = await client.post("/api/migration/import_a_model", json={"id": pid})
    assert resp.status == 404 and (await resp.json())["error"] == "Not found"


async def test_conflict_body_then_each_strategy(client, models_root: Path) -> None:
    services = svc(client)
    first, sha = add_pending(services, models_root, "one.safetensors", b"same", tags=("x",))
    assert (await client.post("/api/migration/import_a_model", json={"id": first})).status == 200
    expected = {"override": "overridden", "merge": "merged", "delete": "deleted"}
    for n, (strategy, action) in enumerate(expected.items()):
        pid, _ = add_pending(
            services, models_root, f"dup{n}.safetensors", b"same", tags=(f"t{n}",), base=f"B{n}"
        )
        resp = await client.post("/api/migration/import_a_model", json={"id": pid})
        assert resp.status == 409
        body = await resp.json()
        assert body["error"] == "Conflict" and body["detail"]
        assert body["existing"]["sha256"] == sha and "images" in body["existing"]
        assert "x" in [t["name"] for t in body["existing"]["tags"]]
        assert body["pending"]["id"] == pid and body["pending"]["sha256"] == sha
        assert [t["name"] for t in body["pending"]["tags"]] == [f"t{n}"]
        assert body["pending"]["images"] == []
        assert services.db.pending.get(pid)["status"] == "conflict"  # recorded; library unchanged

        resp = await client.post(
            "/api/migration/import_a_model", json={"id": pid, "conf_strategy": strategy}
        )
        assert resp.status == 200
        assert await resp.json() == {
            "status": "success",
            "id": pid,
            "sha256": sha,
            "action_taken": action,
        }
    model = services.db.models.get(sha)
    # override (dup0) set base B0 and the path; merge kept both; delete changed nothing.
    assert model["base"] == "B0" and model["path"].endswith("dup0.safetensors")
    assert sorted(t["name"] for t in model["tags"]) == ["t0", "t1", "x"]


async def test_bad_requests(client, models_root: Path) -> None:
    pid, _ = add_pending(svc(client), models_root, "a.safetensors", 100)
    for body in (
        {"id": pid, "conf_strategy": "overwrite"},
        {"id": pid, "conf_strategy": 3},
        {"id": "1"},
        {"id": True},
        {"id": -1},
        {},
    ):
        resp = await client.post("/api/migration/import_a_model", json=body)
        assert resp.status == 400, body
        assert set(await resp.json()) == {"error", "detail"}
    assert svc(client).db.pending.get(pid)["status"] == "new"
    for body in ({"ids": []}, {"ids": "1"}, {"ids": [1, "x"]}, {"ids": [1], "conf_strategy": "x"}):
        resp = await client.post("/api/migration/import_models", json=body)
        assert resp.status == 400, body
    resp = await client.get("/api/migration/pending?status=weird")
    assert resp.status == 400
    resp = await client.get("/api/migration/pending/abc")
    assert resp.status == 400
    resp = await client.get("/api/migration/pending/12345")
    assert resp.status == 404


async def test_missing_file_is_404_and_marks_error(client, models_root: Path) -> None:
    pid, _ = add_pending(svc(client), models_root, "gone.safetensors", 100)
    os.unlink(models_root / "checkpoints" / "gone.safetensors")
    resp = await client.post("/api/migration/import_a_model", json={"id": pid})
    assert resp.status == 404
    detail = await (await client.get(f"/api/migration/pending/{pid}")).json()
    assert detail["status"] == "error" and "not found" in detail["error"]


async def test_two_concurrent_requests_for_one_id(client, models_root: Path) -> None:
    services = svc(client)
    path = models_root / "checkpoints" / "big.safetensors"
    path.parent.mkdir(parents=True)
    make_sparse(path, 300 * 1024 * 1024)
    pid = services.db.pending.add({"path": str(path), "name": "big"})
    first = asyncio.ensure_future(client.post("/api/migration/import_a_model", json={"id": pid}))
    await wait_until_async(
        lambda: pid in services.promoter.locks.ids.held(),
        timeout=20,
        interval=0.002,
        message=f"pending model {pid} to be locked",
    )
    second = await client.post("/api/migration/import_a_model", json={"id": pid})
    assert second.status == 423
    assert (await second.json())["error"] == "Locked"
    resp = await first
    assert resp.status == 200
    assert (await resp.json())["sha256"] == sha256_of(path)


async def test_batch(client, models_root: Path) -> None:
    services = svc(client)
    a, sha_a = add_pending(services, models_root, "a.safetensors", b"A")
    b, _ = add_pending(services, models_root, "b.safetensors", b"A")
    resp = await client.post("/api/migration/import_models", json={"ids": [a, b, 999, a]})
    assert resp.status == 200
    body = await resp.json()
    assert (body["succeeded"], body["failed"]) == (1, 2)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id[a]["action_taken"] == "created" and by_id[a]["sha256"] == sha_a
    assert by_id[b]["code"] == 409 and by_id[b]["existing"]["sha256"] == sha_a
    assert by_id[999]["code"] == 404
    resp = await client.post(
        "/api/migration/import_models", json={"ids": [b], "conf_strategy": "merge"}
    )
    assert (await resp.json())["results"][0]["action_taken"] == "merged"


async def test_pending_listing_and_detail(client, models_root: Path) -> None:
    services = svc(client)
    ids = [
        add_pending(services, models_root, f"p{n}.safetensors", 10 + n, tags=("t",))[0]
        for n in range(5)
    ]
    services.images.add_pending_image(ids[0], make_png(models_root.parent / "extra.png"), 0)
    services.db.pending.update(ids[1], status="error", error="boom")
    resp = await client.get("/api/migration/pending?offset=1&limit=2")
    page = await resp.json()
    assert page["total"] == 5 and page["offset"] == 1 and page["limit"] == 2
    assert [i["id"] for i in page["items"]] == ids[1:3]
    assert page["items"][0]["status"] == "error" and page["items"][0]["error"] == "boom"
    page = await (await client.get("/api/migration/pending?status=error")).json()
    assert page["total"] == 1 and page["items"][0]["id"] == ids[1]
    detail = await (await client.get(f"/api/migration/pending/{ids[0]}")).json()
    assert detail["tags"][0]["name"] == "t"
    assert detail["images"] == [f"{ids[0]}_0.png"]
    # The listing names each item's images as the detail does (no request per row needed).
    page = await (await client.get("/api/migration/pending")).json()
    for item in page["items"]:
        one = await (await client.get(f"/api/migration/pending/{item['id']}")).json()
        assert item["images"] == one["images"]
    assert page["items"][0]["images"] == [f"{ids[0]}_0.png"]


async def test_migration_control_and_status(client, models_root: Path) -> None:
    services = svc(client)
    for n in range(3):
        add_pending(services, models_root, f"m{n}.safetensors", 1000 + n)
    resp = await client.post("/api/migration/pause")
    assert resp.status == 409
    resp = await client.post("/api/migration/start")
    assert resp.status == 200
    assert (await resp.json())["status"] in ("RUNNING", "COMPLETED")
    status = await wait_until_async(
        lambda: migration_status(client),
        lambda status: status["status"] == "COMPLETED",
        timeout=20,
        message="Stage 2 to complete",
    )
    assert status["progress"] == 100.0 and status["current_file"] is None
    assert status["stats"]["processed_items"] == 3 and status["stats"]["promoted"] == 3
    # What this host hashed since it started: the three files, read once each.
    assert status["stats"]["hashed_files"] == 3
    assert status["stats"]["hashed_bytes"] == 1000 + 1001 + 1002
    assert status["pending"] == {"new": 0, "hashing": 0, "error": 0, "conflict": 0}
    assert "running" in status["legacy_import"]
    resp = await client.post("/api/migration/start", json={"legacy_db_path": "/nope/x.db"})
    assert resp.status == 404
    resp = await client.post("/api/migration/start", json={"conflict_policy": "bogus"})
    assert resp.status == 400


def hold_at_chunk(services, chunk: int) -> tuple[threading.Event, threading.Event]:
    """Hold the hashing thread right after ``chunk`` chunks of the first file, until
    released: ``(reached, release)``. The test acts while the hash is mid-file."""
    reached, release = threading.Event(), threading.Event()
    at = chunk * services.hashes.chunk_size

    def hook(_path: str, done: int) -> None:
        if done == at and not reached.is_set():
            reached.set()
            release.wait(30)

    services.hashes.on_chunk = hook
    return reached, release


async def test_pause_and_resume_over_http(client, models_root: Path) -> None:
    services = svc(client)
    chunk = services.hashes.chunk_size
    path = models_root / "checkpoints" / "big.safetensors"
    path.parent.mkdir(parents=True)
    size = 16 * chunk
    make_sparse(path, size)
    services.db.pending.add({"path": str(path), "name": "big"})
    reached, release = hold_at_chunk(services, 4)
    await client.post("/api/migration/start")
    assert await asyncio.to_thread(reached.wait, 30)
    resp = await client.post("/api/migration/pause")
    assert (await resp.json())["status"] == "PAUSED"
    release.set()  # the thread reads on only if it missed the pause: it must not
    status = await (await client.get("/api/migration/status")).json()
    assert status["status"] == "PAUSED" and status["current_file"] == str(path)
    assert status["current_item"]["bytes_done"] == 4 * chunk
    assert 0 < status["progress"] < 100
    resp = await client.post("/api/migration/resume")
    assert (await resp.json())["status"] in ("RUNNING", "COMPLETED")
    assert await asyncio.to_thread(services.migration.wait, 60)
    status = await (await client.get("/api/migration/status")).json()
    assert status["status"] == "COMPLETED"
    assert services.migration.get_status()["stats"]["bytes_read"] == size


async def test_sha256_endpoint(client, models_root: Path, tmp_path: Path) -> None:
    services = svc(client)
    inside = models_root / "loras" / "x.safetensors"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"lora bytes")
    resp = await client.post("/api/models/sha256", json={"path": str(inside)})
    assert resp.status == 200
    body = await resp.json()
    assert body["sha256"] == sha256_of(inside) and body["cached"] is False
    again = await (await client.post("/api/models/sha256", json={"path": str(inside)})).json()
    assert again["cached"] is True and again["sha256"] == body["sha256"]

    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"secret")
    for path in (str(outside), str(models_root / ".." / "secret.bin"), "/etc/passwd"):
        resp = await client.post("/api/models/sha256", json={"path": path})
        assert resp.status == 403, path
    # A symlink inside a root that points outside it is outside.
    (models_root / "loras" / "link.bin").symlink_to(outside)
    resp = await client.post(
        "/api/models/sha256", json={"path": str(models_root / "loras" / "link.bin")}
    )
    assert resp.status == 403
    # A file outside the roots that the library knows is accepted.
    services.db.pending.add({"path": str(outside), "name": "secret"})
    resp = await client.post("/api/models/sha256", json={"path": str(outside)})
    assert resp.status == 200 and (await resp.json())["sha256"] == sha256_of(outside)

    for body in (
        {"path": "relative/x.bin"},
        {"path": 5},
        {},
        {"path": str(inside), "pending_status": "maybe"},
        {"path": str(models_root / "loras")},
    ):
        resp = await client.post("/api/models/sha256", json=body)
        assert resp.status == 400, body
    resp = await client.post("/api/models/sha256", json={"path": str(models_root / "none.bin")})
    assert resp.status == 404


async def test_sha256_endpoint_promotes_pending(client, models_root: Path) -> None:
    services = svc(client)
    pid, sha = add_pending(services, models_root, "p.safetensors", b"pp", tags=("t",))
    twin, _ = add_pending(services, models_root, "q.safetensors", b"pp")
    path = models_root / "checkpoints" / "p.safetensors"
    # "ignore" only hashes.
    resp = await client.post(
        "/api/models/sha256", json={"path": str(path), "pending_status": "ignore"}
    )
    assert (await resp.json())["sha256"] == sha and services.db.pending.get(pid) is not None
    resp = await client.post(
        "/api/models/sha256", json={"path": str(path), "pending_status": "pending"}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["sha256"] == sha and body["promoted"]["action_taken"] == "created"
    assert services.db.pending.get(pid) is None and services.db.models.get(sha) is not None
    resp = await client.post(
        "/api/models/sha256",
        json={
            "path": str(models_root / "checkpoints" / "q.safetensors"),
            "pending_status": "pending",
        },
    )
    assert resp.status == 409
    body = await resp.json()
    assert body["existing"]["sha256"] == sha and body["pending"]["id"] == twin


async def test_the_loop_answers_while_a_large_file_is_hashed(client, models_root: Path) -> None:
    """The hash runs off the event loop: with the hashing thread held mid-file, another
    request is answered. (The loop's lag is measured by bench/promotion_bench.py.)"""
    services = svc(client)
    path = models_root / "checkpoints" / "huge.safetensors"
    path.parent.mkdir(parents=True)
    make_sparse(path, 8 * services.hashes.chunk_size)
    reached, release = hold_at_chunk(services, 2)
    hashing = asyncio.ensure_future(client.post("/api/models/sha256", json={"path": str(path)}))
    assert await asyncio.to_thread(reached.wait, 30)
    resp = await client.get("/api/health")
    assert resp.status == 200 and not hashing.done()
    release.set()
    resp = await hashing
    assert resp.status == 200
    assert (await resp.json())["sha256"] == sha256_of(path)


async def test_server_start_resumes_an_interrupted_run(aiohttp_client, config, models_root) -> None:
    from hikaze_mm.server import create_app

    services = Services.open(config)
    pid, sha = add_pending(services, models_root, "later.safetensors", 5000)
    # What a process killed mid-run leaves behind: the persisted state says RUNNING.
    services.migration.tracker.begin_run(conf_strategy="merge", legacy_db=None, legacy_images=None)
    services.close()

    client = await aiohttp_client(create_app(Services.open(config)))
    await wait_until_async(
        lambda: migration_status(client),
        lambda status: status["status"] == "COMPLETED",
        timeout=20,
        message="the interrupted run to complete",
    )
    assert svc(client).db.pending.get(pid) is None
    assert svc(client).db.models.get(sha) is not None
