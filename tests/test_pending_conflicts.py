"""A conflict found by Pending -> Import with "Ask me" (no conf_strategy) is recorded the way
Stage 2's "skip" records one: the pending row gets status ``conflict``, the existing model's
hash and the reason, so the "conflict" filter lists it and a restart keeps it. The library
itself does not change. Over a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.pending.promotion import PromotionConflict
from hikaze_mm.server import create_app
from hikaze_mm.server.http import SERVICES_KEY
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.promotion_helpers import add_pending, library_snapshot

config = on_each_backend()


def svc(client) -> Services:
    return client.server.app[SERVICES_KEY]


def models_only(services: Services) -> dict:
    snap = library_snapshot(services)
    return {"models": snap["models"], "tier_files": snap["tier_files"]}


async def conflict_rows(client) -> list[dict]:
    resp = await client.get("/api/migration/pending", params={"status": "conflict"})
    assert resp.status == 200
    return (await resp.json())["items"]


async def test_ask_me_records_the_conflict_like_skip(client, models_root: Path) -> None:
    services = svc(client)
    first, sha = add_pending(services, models_root, "one.safetensors", b"same bytes", tags=("a",))
    assert (await client.post("/api/migration/import_a_model", json={"id": first})).status == 200
    asked, _ = add_pending(services, models_root, "asked.safetensors", b"same bytes", tags=("b",))
    skipped, _ = add_pending(services, models_root, "skipped.safetensors", b"same bytes")
    existing_path = services.db.models.get(sha)["path"]
    before = models_only(services)
    assert await conflict_rows(client) == []

    resp = await client.post(
        "/api/migration/import_a_model", json={"id": asked, "conf_strategy": None}
    )
    assert resp.status == 409
    body = await resp.json()
    assert body["existing"]["sha256"] == sha and body["pending"]["id"] == asked
    assert body["pending"]["status"] == "conflict" and body["pending"]["sha256"] == sha

    row = services.db.pending.get(asked)
    assert (row["status"], row["sha256"]) == ("conflict", sha)
    assert row["error"] == f"same content as the model {sha} ({existing_path})"
    assert [t["name"] for t in row["tags"]] == ["b"]  # the row keeps its data
    assert models_only(services) == before  # the library did not change

    # Stage 2's "skip" (the worker's policy) records exactly the same fields.
    with pytest.raises(PromotionConflict):
        services.promoter.promote(skipped, "skip")
    by_skip = services.db.pending.get(skipped)
    assert (by_skip["status"], by_skip["sha256"], by_skip["error"]) == (
        row["status"],
        row["sha256"],
        row["error"],
    )

    # The "conflict" filter lists both, with the existing model's hash; the counts agree.
    listed = await conflict_rows(client)
    assert sorted(item["id"] for item in listed) == sorted([asked, skipped])
    assert {item["sha256"] for item in listed} == {sha}
    status = await (await client.get("/api/migration/status")).json()
    assert status["pending"]["conflict"] == 2 and status["pending"]["new"] == 0


async def test_batch_import_records_each_conflict(client, models_root: Path) -> None:
    services = svc(client)
    first, sha = add_pending(services, models_root, "one.safetensors", b"dup content")
    assert (await client.post("/api/migration/import_a_model", json={"id": first})).status == 200
    dup, _ = add_pending(services, models_root, "dup.safetensors", b"dup content")
    fresh, fresh_sha = add_pending(services, models_root, "fresh.safetensors", b"other content")

    resp = await client.post("/api/migration/import_models", json={"ids": [dup, fresh]})
    assert resp.status == 200
    body = await resp.json()
    assert (body["succeeded"], body["failed"]) == (1, 1)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id[fresh]["status"] == "success" and by_id[fresh]["sha256"] == fresh_sha
    assert by_id[dup]["code"] == 409 and by_id[dup]["existing"]["sha256"] == sha

    assert services.db.pending.get(fresh) is None
    assert [(r["id"], r["sha256"]) for r in await conflict_rows(client)] == [(dup, sha)]


async def test_asking_again_keeps_one_conflict_then_it_resolves(client, models_root: Path) -> None:
    services = svc(client)
    first, sha = add_pending(services, models_root, "one.safetensors", b"twice")
    assert (await client.post("/api/migration/import_a_model", json={"id": first})).status == 200
    dup, _ = add_pending(services, models_root, "dup.safetensors", b"twice", base="SDXL")
    for _ in range(2):
        resp = await client.post("/api/migration/import_a_model", json={"id": dup})
        assert resp.status == 409
        assert services.db.pending.get(dup)["status"] == "conflict"
    assert [r["id"] for r in await conflict_rows(client)] == [dup]
    assert services.db.pending.count() == 1

    resp = await client.post(
        "/api/migration/import_a_model", json={"id": dup, "conf_strategy": "merge"}
    )
    assert resp.status == 200 and (await resp.json())["action_taken"] == "merged"
    assert services.db.pending.get(dup) is None
    assert services.db.models.get(sha)["base"] == "SDXL"
    assert await conflict_rows(client) == []


async def test_a_recorded_conflict_survives_a_restart(
    aiohttp_client, config: Config, models_root: Path
) -> None:
    client = await aiohttp_client(create_app(Services.open(config)))
    services = svc(client)
    first, sha = add_pending(services, models_root, "one.safetensors", b"kept")
    assert (await client.post("/api/migration/import_a_model", json={"id": first})).status == 200
    dup, _ = add_pending(services, models_root, "dup.safetensors", b"kept")
    assert (await client.post("/api/migration/import_models", json={"ids": [dup]})).status == 200
    await client.close()  # the app's cleanup closes the services and the database

    again = await aiohttp_client(create_app(Services.open(config)))
    listed = await conflict_rows(again)
    assert [(r["id"], r["status"], r["sha256"]) for r in listed] == [(dup, "conflict", sha)]
    detail = await (await again.get(f"/api/migration/pending/{dup}")).json()
    assert detail["sha256"] == sha and sha in detail["error"]
