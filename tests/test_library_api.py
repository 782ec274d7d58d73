"""Library API over real HTTP: listing filters, sorting, pagination, detail, patch,
delete, used, facets and stats, and bad input for each."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hikaze_mm.database import ModelQuery
from tests.conftest import on_each_backend, sqlite_only
from tests.library_helpers import assert_error, png_bytes, seed_model, services_of, sha_for

config = on_each_backend()

BAD_HASHES = ("xyz", "a" * 63, "a" * 65, "g" * 64, "..%2F..%2Fetc", "*")


async def get_json(client, url: str, status: int = 200):
    resp = await client.get(url)
    body = await resp.json()
    assert resp.status == status, (url, body)
    return body


@pytest.fixture
async def library(client):
    """Six models with tags, bases, sizes and dates; one missing; one with two images."""
    svc = services_of(client)
    svc.db.tags.create("Style", "#ff0000")
    shas = {
        "alpha": seed_model(
            svc, "Alpha anime", ("Style", "nsfw"), base="SDXL", size_bytes=500, created_at=5
        ),
        "beta": seed_model(
            svc, "beta_real", ("Style",), base="SD1.x", size_bytes=300, created_at=3
        ),
        "gamma": seed_model(
            svc,
            "Gamma 100%",
            ("character",),
            type="checkpoints",
            base="SDXL",
            size_bytes=900,
            created_at=9,
        ),
        "delta": seed_model(svc, "delta", (), base=None, size_bytes=300, created_at=1),
        "eps": seed_model(
            svc, "epsilon", ("Style", "character"), base="Flux.1", size_bytes=100, created_at=7
        ),
        "gone": seed_model(svc, "gone anime", ("Style",), missing=True, created_at=2),
    }
    svc.images.add_image(shas["alpha"], png_bytes())
    svc.images.add_image(shas["alpha"], png_bytes(color=(0, 0, 255)))
    return svc, shas


async def names(client, query: str) -> list[str]:
    body = await get_json(client, f"/api/models?{query}")
    return [item["name"] for item in body["items"]]


async def test_list_items_have_every_field(client, library) -> None:
    _, shas = library
    body = await get_json(client, "/api/models")
    assert body["total"] == 5  # the missing model is left out by default
    item = next(i for i in body["items"] if i["sha256"] == shas["alpha"])
    assert set(item) >= {
        "sha256",
        "short_hash",
        "name",
        "type",
        "base",
        "path",
        "size_bytes",
        "created_at",
        "last_used_at",
        "tags",
        "image_count",
        "missing",
    }
    assert item["short_hash"] == shas["alpha"][:10]
    assert item["image_count"] == 2 and item["missing"] is False
    assert item["cover_image"] == f"{shas['alpha']}_0.webp"
    assert [t["name"] for t in item["tags"]] == ["nsfw", "Style"]
    style = next(t for t in item["tags"] if t["name"] == "Style")
    assert style["color"] == "#ff0000" and isinstance(style["id"], int)
    assert item["path"].endswith("Alpha anime.safetensors")
    assert "meta" not in item and "meta_json" not in item
    # With seq 0 deleted, the cover is the first image that is left.
    resp = await client.delete(f"/api/images/{shas['alpha']}/0")
    assert resp.status == 200
    body = await get_json(client, "/api/models")
    item = next(i for i in body["items"] if i["sha256"] == shas["alpha"])
    assert item["cover_image"] == f"{shas['alpha']}_1.webp" and item["image_count"] == 1
    bare = next(i for i in body["items"] if i["image_count"] == 0)
    assert bare["cover_image"] is None


async def test_filters(client, library) -> None:
    assert await names(client, "type=checkpoints") == ["Gamma 100%"]
    assert await names(client, "type=checkpoint") == ["Gamma 100%"]  # alias of the type key
    assert await names(client, "base=SDXL") == ["Alpha anime", "Gamma 100%"]
    assert await names(client, "tags=style") == ["Alpha anime", "beta_real", "epsilon"]
    assert await names(client, "tags=Style,character") == ["epsilon"]  # all required
    assert await names(client, "tags=Style&tags=character") == ["epsilon"]
    assert await names(client, "tags=Style,nosuchtag") == []
    assert await names(client, "tags=Style&exclude_tags=NSFW") == ["beta_real", "epsilon"]
    assert await names(client, "exclude_tags=nosuchtag") == await names(client, "")
    assert await names(client, "q=ANIME") == ["Alpha anime"]
    assert await names(client, "q=ANIME&include_missing=true") == ["Alpha anime", "gone anime"]
    assert await names(client, "q=100%25") == ["Gamma 100%"]  # % is literal
    assert await names(client, "q=bet__real") == []  # _ is literal, not a wildcard
    assert await names(client, "q=beta_") == ["beta_real"]
    assert await names(client, "q=loras/delta") == ["delta"]  # path text
    assert await names(client, "tags=Style&q=anime&include_missing=1") == [
        "Alpha anime",
        "gone anime",
    ]
    body = await get_json(client, "/api/models?include_missing=true&q=gone")
    assert body["items"][0]["missing"] is True
    assert await names(client, "type=loras&base=SD1.x&tags=style&q=real") == ["beta_real"]


async def test_sort_order_tie_break_and_pagination(client, library) -> None:
    _, shas = library
    assert await names(client, "sort=created_at") == [
        "Gamma 100%",
        "epsilon",
        "Alpha anime",
        "beta_real",
        "delta",
    ]
    assert await names(client, "sort=created_at&order=asc") == [
        "delta",
        "beta_real",
        "Alpha anime",
        "epsilon",
        "Gamma 100%",
    ]
    assert await names(client, "sort=name&order=desc") == [
        "Gamma 100%",
        "epsilon",
        "delta",
        "beta_real",
        "Alpha anime",
    ]
    # beta and delta share size 300: the tie is broken by sha256, in the same direction.
    tied = sorted([("beta_real", shas["beta"]), ("delta", shas["delta"])], key=lambda p: p[1])
    by_size = await names(client, "sort=size_bytes&order=asc")
    assert by_size[0] == "epsilon" and by_size[-1] == "Gamma 100%"
    assert by_size[1:3] == [n for n, _ in tied]
    by_size_desc = await names(client, "sort=size_bytes")
    assert by_size_desc[2:4] == [n for n, _ in reversed(tied)]
    full = await names(client, "sort=size_bytes&order=asc")
    pages = []
    for offset in range(0, 6, 2):
        body = await get_json(
            client, f"/api/models?sort=size_bytes&order=asc&limit=2&offset={offset}"
        )
        assert body["total"] == 5 and len(body["items"]) <= 2
        pages += [i["name"] for i in body["items"]]
    assert pages == full
    body = await get_json(client, "/api/models?offset=50")
    assert body["total"] == 5 and body["items"] == []
    # a tag filter takes the one-pass path: same totals, order and pages
    for sort in ("name", "created_at", "last_used_at", "size_bytes"):
        for order in ("asc", "desc"):
            base = f"tags=Style&include_missing=1&sort={sort}&order={order}"
            whole = await get_json(client, f"/api/models?{base}")
            assert whole["total"] == 4 and len(whole["items"]) == 4
            untagged = await get_json(
                client, f"/api/models?include_missing=1&sort={sort}&order={order}"
            )
            expected = [
                i["sha256"]
                for i in untagged["items"]
                if any(t["name"] == "Style" for t in i["tags"])
            ]
            assert [i["sha256"] for i in whole["items"]] == expected
            paged = []
            for offset in (0, 3):
                page = await get_json(client, f"/api/models?{base}&limit=3&offset={offset}")
                assert page["total"] == 4
                paged += [i["sha256"] for i in page["items"]]
            assert paged == expected
    body = await get_json(client, "/api/models?tags=Style&offset=10")
    assert body["total"] == 3 and body["items"] == []
    body = await get_json(client, "/api/models?tags=Style&limit=0")
    assert body["total"] == 3 and body["items"] == []
    body = await get_json(client, "/api/models?limit=0")
    assert body["total"] == 5 and body["items"] == []


async def test_last_used_sort_and_used_endpoint(client, library) -> None:
    _, shas = library
    resp = await client.post(f"/api/models/{shas['delta']}/used")
    body = await resp.json()
    assert resp.status == 200 and body["last_used_at"] > 0
    assert (await names(client, "sort=last_used_at"))[0] == "delta"
    detail = await get_json(client, f"/api/models/{shas['delta']}")
    assert detail["last_used_at"] == body["last_used_at"]
    await assert_error(await client.post(f"/api/models/{sha_for('nope')}/used"), 404)
    await assert_error(await client.post("/api/models/zzz/used"), 400)


@pytest.mark.parametrize(
    "query",
    [
        "sort=bogus",
        "sort=meta_json",
        "order=up",
        "order=ASC;DROP",
        "limit=abc",
        "limit=501",
        "limit=-1",
        "offset=-5",
        "offset=1.5",
        "include_missing=maybe",
        "colour=red",
        "q=" + "x" * 300,
        "tags=" + ",".join(f"t{i}" for i in range(40)),
    ],
)
async def test_list_bad_params(client, library, query: str) -> None:
    await assert_error(await client.get(f"/api/models?{query}"), 400)


@sqlite_only
async def test_listing_has_no_n_plus_one(services) -> None:
    """A page costs the same number of SQL statements whatever its length."""
    for i in range(40):
        seed_model(services, f"m{i:02d}", ("a", f"t{i % 5}"))
        if i < 3:
            services.images.add_image(sha_for(f"m{i:02d}"), png_bytes((8, 8)))
    statements: list[str] = []
    services.db.conn.set_trace_callback(statements.append)
    try:
        counts = []
        for limit in (2, 40):
            statements.clear()
            page = services.models.list(ModelQuery(limit=limit, tags=("a",)))
            assert len(page["items"]) == limit and page["total"] == 40
            assert all(item["tags"] for item in page["items"])
            counts.append(len(statements))
    finally:
        services.db.conn.set_trace_callback(None)
    assert counts[0] == counts[1] <= 5  # page, count, tags, trigger words, tag ids


async def test_detail(client, library) -> None:
    svc, shas = library
    svc.db.models.update(shas["beta"], meta={"trigger": "b3ta", "notes": {"a": 1}})
    body = await get_json(client, f"/api/models/{shas['beta']}")
    assert body["meta"] == {"trigger": "b3ta", "notes": {"a": 1}}
    assert body["images"] == [] and body["image_count"] == 0
    body = await get_json(client, f"/api/models/{shas['alpha'].upper()}")
    assert body["sha256"] == shas["alpha"]
    assert body["images"] == [f"{shas['alpha']}_0.webp", f"{shas['alpha']}_1.webp"]
    assert body["short_hash"] == shas["alpha"][:10] and len(body["tags"]) == 2
    await assert_error(await client.get(f"/api/models/{sha_for('unknown')}"), 404)
    for bad in BAD_HASHES:
        resp = await client.get(f"/api/models/{bad}")
        assert resp.status in (400, 404), bad
        assert "error" in await resp.json()
    await assert_error(await client.get("/api/models/xyz"), 400)


async def test_patch_fields_meta_and_tags(client, library) -> None:
    svc, shas = library
    sha = shas["beta"]
    svc.db.models.update(sha, meta={"keep": 1, "nested": {"a": 1, "b": 2}, "drop": True})
    resp = await client.patch(
        f"/api/models/{sha}",
        json={
            "name": "  Beta Renamed ",
            "type": "LoRA",
            "base": "SDXL",
            "meta_json": {"nested": {"b": 3, "c": 4}, "drop": None, "new": "x"},
            "tags": {"add": ["Fresh", "STYLE"], "remove": ["nosuch"]},
        },
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["name"] == "Beta Renamed" and body["type"] == "loras" and body["base"] == "SDXL"
    assert body["meta"] == {
        "keep": 1,
        "nested": {"a": 1, "b": 3, "c": 4},
        "new": "x",
        "sources": {"base": "user"},  # a user's edit: Civitai never fills it
    }
    assert sorted(t["name"] for t in body["tags"]) == ["Fresh", "Style"]
    # replace the meta, clear the base, set the tags exactly (an id and a new name)
    style_id = next(t["id"] for t in body["tags"] if t["name"] == "Style")
    resp = await client.patch(
        f"/api/models/{sha}",
        json={
            "meta_json": {"only": True},
            "meta_mode": "replace",
            "base": None,
            "tags": {"set": [style_id, "other"]},
        },
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["meta"] == {"only": True, "sources": {"base": "user"}} and body["base"] is None
    assert sorted(t["name"] for t in body["tags"]) == ["Style", "other"]
    resp = await client.patch(f"/api/models/{sha}", json={"tags": {"remove": ["STYLE"]}})
    assert [t["name"] for t in (await resp.json())["tags"]] == ["other"]
    resp = await client.patch(f"/api/models/{sha}", json={"meta_json": '{"s": 1}'})
    assert (await resp.json())["meta"] == {"only": True, "s": 1, "sources": {"base": "user"}}
    resp = await client.patch(f"/api/models/{sha}", json={"tags": {"set": []}})
    assert (await resp.json())["tags"] == []
    # the listing sees the changes
    assert await names(client, "q=Renamed&base=") == ["Beta Renamed"]


@pytest.mark.parametrize(
    "patch",
    [
        {},
        {"nme": "typo"},
        {"name": "ok", "path": "/etc/passwd"},
        {"sha256": "a" * 64},
        {"name": ""},
        {"name": None},
        {"name": 12},
        {"name": "x" * 300},
        {"name": "bad\nname"},
        {"type": ""},
        {"type": "../etc"},
        {"type": 3},
        {"base": 5},
        {"meta_json": [1, 2]},
        {"meta_json": "{not json"},
        {"meta_json": "[1]"},
        {"meta_json": {"a": 1}, "meta_mode": "append"},
        {"meta_mode": "replace"},
        {"tags": ["a"]},
        {"tags": {"add": "a"}},
        {"tags": {"add": [True]}},
        {"tags": {"add": [1.5]}},
        {"tags": {"add": [""]}},
        {"tags": {"add": ["a"], "remove": ["A"]}},
        {"tags": {"set": ["a"], "add": ["b"]}},
        {"tags": {"toggle": ["a"]}},
        {"tags": {"add": [999999]}},
    ],
)
async def test_patch_rejected_changes_nothing(client, library, patch) -> None:
    _, shas = library
    sha = shas["alpha"]
    before = await get_json(client, f"/api/models/{sha}")
    tags_before = await get_json(client, "/api/tags")
    # A valid change rides along with the bad one: it must not be applied either.
    body = {"name": "SHOULD NOT APPLY", **patch} if patch and "name" not in patch else patch
    await assert_error(await client.patch(f"/api/models/{sha}", json=body), 400)
    assert await get_json(client, f"/api/models/{sha}") == before
    assert await get_json(client, "/api/tags") == tags_before


async def test_patch_atomic_across_tag_creation(client, library) -> None:
    """New tags created early in a patch vanish when a later step fails."""
    svc, shas = library
    sha = shas["delta"]
    resp = await client.patch(
        f"/api/models/{sha}",
        json={"name": "new", "meta_json": {"x": 1}, "tags": {"add": ["brand-new", 424242]}},
    )
    await assert_error(resp, 400)
    detail = await get_json(client, f"/api/models/{sha}")
    assert detail["name"] == "delta" and detail["meta"] == {} and detail["tags"] == []
    assert svc.db.tags.get("brand-new") is None


async def test_patch_bad_requests(client, library) -> None:
    _, shas = library
    url = f"/api/models/{shas['alpha']}"
    for raw in (b"{bad json", b"[1]", b"", b"null"):
        resp = await client.patch(url, data=raw, headers={"Content-Type": "application/json"})
        await assert_error(resp, 400)
    await assert_error(await client.patch(f"/api/models/{sha_for('x')}", json={"name": "a"}), 404)
    await assert_error(await client.patch("/api/models/nothex", json={"name": "a"}), 400)
    resp = await client.patch(url, json={"name": "a"}, headers={"Origin": "http://evil.example"})
    await assert_error(resp, 403)


async def test_delete_keeps_file_by_default(client, library, models_root: Path) -> None:
    svc, shas = library
    sha = shas["alpha"]
    model_file = Path(svc.db.models.get(sha)["path"])
    model_file.parent.mkdir(parents=True, exist_ok=True)
    model_file.write_bytes(b"weights")
    resp = await client.delete(f"/api/models/{sha}")
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {"sha256": sha, "deleted": True, "file_deleted": False, "images_removed": 2}
    assert model_file.exists()
    assert svc.db.models.get(sha) is None and svc.images.image_names(sha) == []
    assert svc.db.tags.get("nsfw") is not None  # tags themselves stay
    await assert_error(await client.get(f"/api/models/{sha}"), 404)
    await assert_error(await client.delete(f"/api/models/{sha}"), 404)
    await assert_error(await client.delete("/api/models/..%2F..%2Fx"), 400)


async def test_delete_file_only_under_a_root(client, library, tmp_path: Path) -> None:
    svc, shas = library
    inside = Path(svc.db.models.get(shas["beta"])["path"])
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_bytes(b"w")
    svc.db.hash_cache.store(str(inside), 1, 1, 1, shas["beta"])
    outside = tmp_path / "elsewhere" / "x.safetensors"
    outside.parent.mkdir()
    outside.write_bytes(b"keep me")
    out_sha = seed_model(svc, "outsider", path=outside)
    # a symlink inside the root that points outside is not deletable either
    link = inside.parent / "link.safetensors"
    link.symlink_to(outside)
    link_sha = seed_model(svc, "linked", path=link)
    resp = await client.delete(f"/api/models/{out_sha}?delete_file=true")
    await assert_error(resp, 403)
    resp = await client.delete(f"/api/models/{link_sha}?delete_file=true")
    await assert_error(resp, 403)
    assert outside.read_bytes() == b"keep me" and link.is_symlink()
    assert svc.db.models.get(out_sha) is not None and svc.db.models.get(link_sha) is not None
    await assert_error(await client.delete(f"/api/models/{out_sha}?delete_file=perhaps"), 400)
    resp = await client.delete(f"/api/models/{shas['beta']}?delete_file=true")
    body = await resp.json()
    assert resp.status == 200 and body["file_deleted"] is True
    assert not inside.exists() and svc.db.models.get(shas["beta"]) is None
    assert svc.db.hash_cache.lookup(str(inside), 1, 1, 1) is None
    # a model whose file is already gone is still deleted
    resp = await client.delete(f"/api/models/{shas['gone']}?delete_file=true")
    body = await resp.json()
    assert resp.status == 200 and body["file_deleted"] is False


async def test_types_bases_and_stats(client, library) -> None:
    svc, _ = library
    types = await get_json(client, "/api/models/types")
    assert types == [{"type": "loras", "count": 4}, {"type": "checkpoints", "count": 1}]
    types = await get_json(client, "/api/models/types?include_missing=true")
    assert types[0] == {"type": "loras", "count": 5}
    bases = await get_json(client, "/api/models/bases")
    assert {b["base"]: b["count"] for b in bases} == {
        "SDXL": 2,
        "SD1.x": 1,
        "Flux.1": 1,
        "unknown": 1,
    }
    await assert_error(await client.get("/api/models/types?include_missing=x"), 400)
    svc.db.pending.add({"path": "/tmp/p.safetensors", "type": "loras"})
    stats = await get_json(client, "/api/stats")
    assert stats["models"] == 6 and stats["missing"] == 1
    assert stats["total_size_bytes"] == 500 + 300 + 900 + 300 + 100
    assert stats["types"] == {"loras": 4, "checkpoints": 1}
    assert stats["bases"]["unknown"] == 1
    assert stats["tags"] == 3 and stats["tag_links"] == 7
    assert stats["images"] == 2 and stats["models_with_images"] == 1
    assert stats["pending"] == 1 and stats["pending_by_status"] == {"new": 1}


@sqlite_only
async def test_list_reads_uncommitted_nothing(client, library) -> None:
    """A listing runs beside a writer holding a transaction (WAL readers never block)."""
    svc, _ = library
    writer = sqlite3.connect(svc.config.db_path, timeout=5, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE models SET name = 'uncommitted' WHERE name = 'delta'")
        assert "uncommitted" not in await names(client, "")
        writer.execute("ROLLBACK")
    finally:
        writer.close()


async def test_patch_large_body_arrives_whole(client, library) -> None:
    """A JSON body spanning many TCP reads is read to its end (up to the cap)."""
    _, shas = library
    url = f"/api/models/{shas['delta']}"
    big = "y" * 900_000
    resp = await client.patch(url, json={"meta_json": {"notes": big}})
    assert resp.status == 200, await resp.text()
    assert (await get_json(client, url))["meta"]["notes"] == big
    await assert_error(await client.patch(url, json={"meta_json": {"n": "z" * 3_000_000}}), 413)

    async def chunked():  # no Content-Length: the cap holds while streaming
        yield b'{"meta_json": {"n": "'
        for _ in range(300):
            yield b"z" * 10_000
        yield b'"}}'

    resp = await client.patch(url, data=chunked(), headers={"Content-Type": "application/json"})
    await assert_error(resp, 413)
    assert (await get_json(client, url))["meta"]["notes"] == big
