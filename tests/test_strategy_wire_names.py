"""One wire name for the conflict strategy, ``conf_strategy``, on every route that takes
one, over a real server on 127.0.0.1. ``POST /api/migration/start`` also takes
``conflict_policy`` and ``POST /api/scan`` ``conflict_strategy``, its older names; two
different values are a 400 that changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import same_origin_headers, write_model
from tests.library_helpers import services_of
from tests.promotion_helpers import add_pending
from tests.test_migration_api import migration_status
from tests.test_scan_api import wait_until_idle
from tests.waiting import wait_until_async


async def migrated(client) -> dict[str, Any]:
    return await wait_until_async(
        lambda: migration_status(client),
        lambda s: not s["active"] and s["status"] == "COMPLETED",
        message="the migration to complete",
    )


async def assert_400(resp, *names: str) -> None:
    body = await resp.json()
    assert resp.status == 400, body
    assert set(body) == {"error", "detail"}
    assert all(name in body["detail"] for name in names), body


async def test_migration_start_takes_conf_strategy_and_conflict_policy(
    client, models_root: Path
) -> None:
    services = services_of(client)
    first, _ = add_pending(services, models_root, "a.safetensors", b"same")
    assert (await client.post("/api/migration/import_a_model", json={"id": first})).status == 200

    skipped, _ = add_pending(services, models_root, "b.safetensors", b"same")
    resp = await client.post("/api/migration/start", json={"conf_strategy": "skip"})
    assert resp.status == 200, await resp.json()
    assert (await migrated(client))["policy"] == "skip"
    assert services.db.pending.get(skipped)["status"] == "conflict"  # skip leaves it pending

    deleted, _ = add_pending(services, models_root, "c.safetensors", b"same")
    resp = await client.post("/api/migration/start", json={"conflict_policy": "delete"})
    assert resp.status == 200, await resp.json()
    assert (await migrated(client))["policy"] == "delete"
    assert services.db.pending.get(deleted) is None  # delete drops the pending model

    both = {"conf_strategy": "merge", "conflict_policy": "merge"}
    resp = await client.post("/api/migration/start", json=both)
    assert resp.status == 200, await resp.json()
    assert (await migrated(client))["policy"] == "merge"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (
            {"conf_strategy": "merge", "conflict_policy": "skip"},
            ("conf_strategy", "conflict_policy"),
        ),
        ({"conf_strategy": "merge", "conflict_policy": None}, ("conf_strategy", "conflict_policy")),
        ({"conf_strategy": "bogus"}, ("conf_strategy",)),
        ({"conflict_policy": "bogus"}, ("conflict_policy",)),
        ({"conf_strategy": 1}, ("conf_strategy",)),
    ],
)
async def test_a_bad_migration_start_changes_nothing(
    client, models_root: Path, body: dict[str, Any], names: tuple[str, ...]
) -> None:
    services = services_of(client)
    pid, _ = add_pending(services, models_root, "a.safetensors", 100)
    before = await (await client.get("/api/migration/status")).json()
    await assert_400(await client.post("/api/migration/start", json=body), *names)
    after = await (await client.get("/api/migration/status")).json()
    assert after["active"] is False and after["status"] == before["status"]
    assert services.db.pending.get(pid)["status"] == "new"


@pytest.mark.parametrize("name", ["conf_strategy", "conflict_strategy"])
async def test_scan_takes_conf_strategy_and_conflict_strategy(
    client, models_root: Path, name: str
) -> None:
    write_model(models_root / "loras" / "a.safetensors", b"same")
    write_model(models_root / "loras" / "b.safetensors", b"same")
    resp = await client.post(
        "/api/scan",
        headers=same_origin_headers(client),
        json={"immediate_hashing": True, name: "delete"},
    )
    assert resp.status == 202, await resp.json()
    status = await wait_until_idle(client)
    assert status["conflict_strategy"] == "delete"
    services = services_of(client)
    assert services.db.pending.count() == 0  # one promoted, its copy's pending row deleted
    assert len(services.db.listing.all_sha256s()) == 1


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (
            {"immediate_hashing": True, "conf_strategy": "merge", "conflict_strategy": "delete"},
            ("conf_strategy", "conflict_strategy"),
        ),
        ({"immediate_hashing": True, "conf_strategy": "skip"}, ("conf_strategy",)),
        ({"immediate_hashing": True, "conflict_strategy": "skip"}, ("conflict_strategy",)),
        ({"immediate_hashing": True, "conflict_policy": "merge"}, ("conflict_policy",)),
    ],
)
async def test_a_bad_scan_strategy_changes_nothing(
    client, models_root: Path, body: dict[str, Any], names: tuple[str, ...]
) -> None:
    write_model(models_root / "loras" / "a.safetensors", 100)
    resp = await client.post("/api/scan", headers=same_origin_headers(client), json=body)
    await assert_400(resp, *names)
    status = await (await client.get("/api/scan/status")).json()
    assert status["phase"] == "idle" and status["last_report"] is None
    assert services_of(client).db.pending.count() == 0


async def test_scan_accepts_both_names_with_one_value(client, models_root: Path) -> None:
    write_model(models_root / "loras" / "a.safetensors", 100)
    body = {"immediate_hashing": True, "conf_strategy": "merge", "conflict_strategy": "merge"}
    resp = await client.post("/api/scan", headers=same_origin_headers(client), json=body)
    assert resp.status == 202, await resp.json()
    assert (await wait_until_idle(client))["conflict_strategy"] == "merge"


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/migration/import_a_model", {"conf_strategy": "skip"}),
        ("/api/migration/import_a_model", {"conf_strategy": ["merge"]}),
        ("/api/migration/import_models", {"conf_strategy": "bogus"}),
    ],
)
async def test_the_import_routes_name_conf_strategy(
    client, models_root: Path, url: str, body: dict[str, Any]
) -> None:
    services = services_of(client)
    pid, _ = add_pending(services, models_root, "a.safetensors", 100)
    ids = {"id": pid} if url.endswith("import_a_model") else {"ids": [pid]}
    await assert_400(await client.post(url, json={**ids, **body}), "conf_strategy")
    assert services.db.pending.get(pid)["status"] == "new"


async def test_the_import_routes_apply_conf_strategy(client, models_root: Path) -> None:
    services = services_of(client)
    first, sha = add_pending(services, models_root, "a.safetensors", b"same")
    one, _ = add_pending(services, models_root, "b.safetensors", b"same", base="One")
    many, _ = add_pending(services, models_root, "c.safetensors", b"same")
    assert (await client.post("/api/migration/import_a_model", json={"id": first})).status == 200
    resp = await client.post(
        "/api/migration/import_a_model", json={"id": one, "conf_strategy": "override"}
    )
    assert (await resp.json())["action_taken"] == "overridden"
    assert services.db.models.get(sha)["base"] == "One"
    resp = await client.post(
        "/api/migration/import_models", json={"ids": [many], "conf_strategy": "delete"}
    )
    result = await resp.json()
    assert result["succeeded"] == 1 and result["results"][0]["action_taken"] == "deleted"
    assert services.db.pending.get(many) is None
