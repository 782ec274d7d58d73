"""What the UI's views and bulk actions need from the library: natural name order, the
folder filter and tree, "recently used", the card fields of a listing item, bulk tag edits
and bulk deletes, and the upgrade that brings names, name keys and the tag-id index.
Real SQLite files, real files on disk, a real server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hikaze_mm.database import DatabaseManager, ModelQuery
from hikaze_mm.database.sql import path_prefix_bounds
from hikaze_mm.database.values import natural_key
from hikaze_mm.library.folders import folder_tree
from hikaze_mm.library.search_index import SearchIndexer
from hikaze_mm.services import Services
from tests.conftest import on_each_backend, sqlite_only
from tests.library_helpers import assert_error, seed_model, services_of, sha_for

config = on_each_backend()


async def names(client, **params: str) -> list[str]:
    resp = await client.get("/api/models", params={"limit": "500", **params})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["total"] == len(body["items"])
    return [item["name"] for item in body["items"]]


# ---------------------------------------------------------------------- natural order
def test_natural_key_orders_numbers_by_value() -> None:
    ordered = ["v1", "V2", "v2a", "v10", "v10b", "v100", "w"]
    assert sorted(ordered[::-1], key=natural_key) == ordered
    assert natural_key("Lora_007") == natural_key("lora_7")  # case and leading zeros
    assert natural_key(None) is None


async def test_names_sort_naturally_both_ways(client) -> None:
    svc = services_of(client)
    for label in ("style_10", "Style_2", "style_1", "style_2b", "alpha"):
        seed_model(svc, label)
    expected = ["alpha", "style_1", "Style_2", "style_2b", "style_10"]
    assert await names(client) == expected
    assert await names(client, order="desc") == expected[::-1]
    # A rename keeps the key in step.
    resp = await client.patch(f"/api/models/{sha_for('alpha')}", json={"name": "style_3"})
    assert resp.status == 200
    assert await names(client) == ["style_1", "Style_2", "style_2b", "style_3", "style_10"]
    record = await (await client.get(f"/api/models/{sha_for('alpha')}")).json()
    assert "name_key" not in record  # internal


# ---------------------------------------------------------------------- folders
def test_the_folder_filter_bounds_only_paths_below() -> None:
    """The folder filter is the path index range the scans use for their roots."""
    low, high = path_prefix_bounds("/m/loras/anime/")
    assert (low, high) == ("/m/loras/anime/", "/m/loras/anime0")
    inside = ["/m/loras/anime/a.sft", "/m/loras/anime/deep/b.sft"]
    outside = ["/m/loras/anime.sft", "/m/loras/anime2/c.sft", "/m/loras/anime-x/d.sft"]
    assert all(low <= p < high for p in inside)
    assert not any(low <= p < high for p in outside)


def test_folder_tree_counts_every_level() -> None:
    roots = [Path("/m"), Path("/m/loras/extra"), Path("/other")]
    paths = [
        "/m/loras/anime/a.sft",
        "/m/loras/anime/deep/b.sft",
        "/m/loras/c.sft",
        "/m/top.sft",
        "/m/loras/extra/e.sft",
        "/elsewhere/x.sft",
    ]
    tree = folder_tree(roots, paths)
    assert [(r["path"], r["count"]) for r in tree] == [
        ("/m", 4),
        ("/m/loras/extra", 1),
        ("/other", 0),
    ]
    (loras,) = tree[0]["children"]
    assert (loras["name"], loras["path"], loras["count"]) == ("loras", "/m/loras", 3)
    (anime,) = loras["children"]
    assert (anime["count"], [c["name"] for c in anime["children"]]) == (2, ["deep"])
    assert anime["children"][0] == {
        "name": "deep",
        "path": "/m/loras/anime/deep",
        "count": 1,
        "children": [],
    }


async def test_folder_filter_and_tree_over_http(client, models_root: Path) -> None:
    svc = services_of(client)
    root = models_root
    seed_model(svc, "a", path=root / "loras/anime/a.safetensors")
    seed_model(svc, "b", path=root / "loras/anime/deep/b.safetensors")
    seed_model(svc, "c", path=root / "loras/anime2/c.safetensors")
    seed_model(svc, "d", path=root / "checkpoints/d.safetensors")
    seed_model(svc, "gone", path=root / "loras/anime/gone.safetensors", missing=True)

    assert await names(client, folder=str(root / "loras/anime")) == ["a", "b"]
    assert await names(client, folder=f"{root}/loras/anime/") == ["a", "b"]
    assert await names(client, folder=str(root / "loras")) == ["a", "b", "c"]
    assert await names(client, folder=str(root / "loras/anime"), include_missing="true") == [
        "a",
        "b",
        "gone",
    ]
    assert await names(client, folder=str(root / "loras"), q="anime2") == ["c"]

    body = await (await client.get("/api/models/folders")).json()
    (top,) = body["roots"]
    assert (top["path"], top["count"]) == (str(root), 4)
    assert [(c["name"], c["count"]) for c in top["children"]] == [
        ("checkpoints", 1),
        ("loras", 3),
    ]
    await assert_error(await client.get("/api/models", params={"folder": "a\x00b"}), 400)
    await assert_error(await client.get("/api/models", params={"folder": "x" * 5000}), 400)


# ---------------------------------------------------------------------- recently used
async def test_recently_used_lists_used_models_newest_first(client) -> None:
    svc = services_of(client)
    for label in ("never", "first", "second"):
        seed_model(svc, label)
    for label in ("first", "second"):
        resp = await client.post(f"/api/models/{sha_for(label)}/used")
        assert resp.status == 200
    # Stamps are milliseconds: make the order certain.
    svc.db.models.update(sha_for("first"), last_used_at=1_000)
    svc.db.models.update(sha_for("second"), last_used_at=2_000)
    assert await names(client, used="true", sort="last_used_at") == ["second", "first"]
    assert await names(client, used="false") == ["first", "never", "second"]
    await assert_error(await client.get("/api/models", params={"used": "maybe"}), 400)


# ---------------------------------------------------------------------- card fields
async def test_listing_items_carry_card_fields(client) -> None:
    svc = services_of(client)
    seed_model(svc, "plain")
    seed_model(svc, "tagged", tags=("NSFW",))
    url = "https://civitai.com/models/1?modelVersionId=2"
    seed_model(
        svc,
        "civ",
        meta={"preferred_weight": 0.7, "civitai": {"url": url, "nsfw": True}},
    )
    seed_model(svc, "odd", meta={"preferred_weight": "heavy", "civitai": {"url": 5}})
    body = await (await client.get("/api/models")).json()
    items = {item["name"]: item for item in body["items"]}
    assert {n: items[n]["nsfw"] for n in items} == {
        "civ": True,
        "odd": False,
        "plain": False,
        "tagged": True,
    }
    assert (items["civ"]["preferred_weight"], items["civ"]["civitai_url"]) == (0.7, url)
    assert (items["odd"]["preferred_weight"], items["odd"]["civitai_url"]) == (None, None)
    assert (items["plain"]["preferred_weight"], items["plain"]["civitai_url"]) == (None, None)
    detail = await (await client.get(f"/api/models/{sha_for('tagged')}")).json()
    assert detail["nsfw"] is True


# ---------------------------------------------------------------------- bulk tags
async def test_bulk_tags_add_and_remove_in_one_request(client) -> None:
    svc = services_of(client)
    shas = [seed_model(svc, f"m{i}", tags=("old",)) for i in range(3)]
    unknown = sha_for("nobody")
    resp = await client.post(
        "/api/models/bulk/tags",
        json={
            "sha256s": [*shas[:2], unknown, shas[0]],
            "add": ["Fresh"],
            "remove": ["OLD", "none"],
        },
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {"updated": 2, "not_found": [unknown]}
    tags = svc.db.tags.for_models(shas)
    assert [[t["name"] for t in tags.get(sha, [])] for sha in shas] == [
        ["Fresh"],
        ["Fresh"],
        ["old"],
    ]
    # The index followed: the tag and the text together find them.
    assert await names(client, tags="fresh", q="m0") == ["m0"]
    assert await names(client, tags="old", q="m") == ["m2"]


@pytest.mark.parametrize(
    "body",
    [
        {"sha256s": [], "add": ["x"]},
        {"sha256s": "abc", "add": ["x"]},
        {"sha256s": ["nothex"], "add": ["x"]},
        {"sha256s": [sha_for("m0")]},
        {"sha256s": [sha_for("m0")], "add": ["x"], "set": ["y"]},
        {"sha256s": [sha_for("m0")], "add": [""]},
        {"sha256s": [sha_for("m0")], "add": ["x"], "remove": ["x"]},
        {"sha256s": [sha_for(str(i)) for i in range(5001)], "add": ["x"]},
        ["not", "an", "object"],
    ],
    ids=[
        "empty",
        "not-list",
        "bad-sha",
        "no-op",
        "unknown-key",
        "empty-tag",
        "both",
        "too-many",
        "array",
    ],
)
async def test_bad_bulk_tags_change_nothing(client, body) -> None:
    svc = services_of(client)
    seed_model(svc, "m0", tags=("keep",))
    await assert_error(await client.post("/api/models/bulk/tags", json=body), 400)
    assert [t["name"] for t in svc.db.tags.for_models([sha_for("m0")])[sha_for("m0")]] == ["keep"]
    assert {t["name"] for t in svc.db.tags.list()} == {"keep"}


# ---------------------------------------------------------------------- bulk delete
async def test_bulk_delete_reports_each_model(client, models_root: Path, tmp_path: Path) -> None:
    svc = services_of(client)
    files = []
    for label in ("a", "b"):
        path = models_root / "loras" / f"{label}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(label.encode() * 10)
        files.append(path)
        seed_model(svc, label, path=path)
    outside = tmp_path / "elsewhere" / "c.safetensors"
    outside.parent.mkdir()
    outside.write_bytes(b"c")
    seed_model(svc, "c", path=outside)
    unknown = sha_for("nobody")
    resp = await client.post(
        "/api/models/bulk/delete",
        json={"sha256s": [sha_for("a"), sha_for("b"), sha_for("c"), unknown], "delete_file": True},
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["deleted"], body["files_deleted"]) == (2, 2)
    assert [(f["sha256"], f["error"]) for f in body["failed"]] == [
        (sha_for("c"), "Forbidden"),
        (unknown, "Not found"),
    ]
    assert not any(p.exists() for p in files) and outside.exists()
    assert await names(client) == ["c"]

    # Without delete_file the record goes and the file stays.
    resp = await client.post("/api/models/bulk/delete", json={"sha256s": [sha_for("c")]})
    assert (await resp.json())["files_deleted"] == 0 and outside.exists()
    await assert_error(
        await client.post(
            "/api/models/bulk/delete", json={"sha256s": [sha_for("c")], "delete_file": "yes"}
        ),
        400,
    )


# ---------------------------------------------------------------------- upgrade
def test_the_upgrade_names_keys_and_reindexes(tmp_path: Path) -> None:
    """Revision 10: a name that is its file's own name loses the model extension (as a
    scanned model's never had one), every name gets its sort key, and the index is
    rebuilt in the background with tag ids (a required tag then narrows ``q`` exactly)."""
    path = tmp_path / "hikaze_mm.db"
    old = DatabaseManager(path)
    old.upgrade_to(9)
    rows = [
        ("imported", "/m/loras/Cool_v10.safetensors", "Cool_v10.safetensors"),
        ("windows", "C:\\m\\loras\\Win_v2.CKPT", "Win_v2.CKPT"),
        ("custom", "/m/loras/x.safetensors", "My favourite.safetensors"),
        ("scanned", "/m/loras/Cool_v9.safetensors", "Cool_v9"),
        ("bare", "/m/loras/.safetensors", ".safetensors"),
    ]
    with old.transaction() as conn:
        conn.execute("INSERT INTO tags (name) VALUES ('Été')")
        for label, model_path, name in rows:
            conn.execute(
                "INSERT INTO models (sha256, path, name, type) VALUES (?, ?, ?, 'loras')",
                (sha_for(label), model_path, name),
            )
        conn.execute("INSERT INTO model_tags VALUES (?, 1)", (sha_for("imported"),))
    old.close()

    db = DatabaseManager(path)
    db.init_db()
    try:
        got = dict(db.tuples("SELECT sha256, name FROM models"))
        assert [got[sha_for(label)] for label, _p, _n in rows] == [
            "Cool_v10",
            "Win_v2",
            "My favourite.safetensors",
            "Cool_v9",
            ".safetensors",
        ]
        keys = dict(db.tuples("SELECT name, name_key FROM models"))
        assert all(keys[name] == natural_key(name) for name in keys)
        _total, listed = db.listing.page(ModelQuery(q="cool"))
        assert [r["name"] for r in listed] == ["Cool_v9", "Cool_v10"]  # LIKE until built
        assert db.listing.search_ready() is False
        indexer = SearchIndexer(db, batch_size=2)
        assert indexer.start() and indexer.wait(30)
        _total, listed = db.listing.page(ModelQuery(q="cool", tags=("Été",)))
        assert [r["name"] for r in listed] == ["Cool_v10"]
    finally:
        db.close()
    with sqlite3.connect(f"{path}.bak-r9") as backup:
        assert backup.execute("SELECT COUNT(*) FROM models").fetchone()[0] == len(rows)


# ---------------------------------------------------------------------- index upkeep
@sqlite_only
def test_a_fragmented_index_is_merged_and_lists_the_same(services: Services) -> None:
    db = services.db
    for i in range(40):  # each write its own transaction: one segment or more each
        seed_model(services, f"anime {i:02d}", tags=("style",) if i % 2 else ())
    query = ModelQuery(q="anime", tags=("style",), limit=500)
    before = db.listing.page(query)
    segments = "SELECT COUNT(DISTINCT segid) FROM model_search_idx"
    assert db.conn.execute(segments).fetchone()[0] > 8
    assert db.listing.tidy_search_index() is True
    assert db.conn.execute(segments).fetchone()[0] == 1
    assert db.listing.tidy_search_index() is False
    assert db.listing.page(query) == before
    assert before[0] == 20
