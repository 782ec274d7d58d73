"""GET /api/models, whose items SQLite writes as JSON (``database/listing_items.py``),
against what each item must be, worked out here from the stores' own records
(``db.models.get``: columns, parsed meta, tags) and the image store, by the rules of the
API (``hikaze_mm.meta``'s cleaning, tags by name, NSFW by tag or Civitai), and against
the order and filters computed here from those records.

The library holds what the SQL must get right: names and paths with quotes,
backslashes, control characters and non-ASCII letters; trigger words to trim, repeated,
empty, of other types, a lone string, a dict; preferred weights of every JSON type and out
of range; Civitai URLs and NSFW flags of the wrong type; a meta that is not JSON; tags
whose names fold to "nsfw" (U+017F long s) or nearly do, or whose JSON holds it; missing
and used models; images in a chosen order; ``meta.update`` (an update on Civitai, the
card's badge) well formed, with a version name or id of the wrong type, and not an object.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import pytest

from hikaze_mm.database import ModelQuery
from hikaze_mm.database.values import natural_key
from tests.conftest import on_each_backend
from tests.library_helpers import png_bytes, seed_model, services_of

config = on_each_backend()

ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# (label, tags, fields): each model's name is its label.
MODELS: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
    ("plain v2", ("Style",), {"base": "SDXL", "size_bytes": 10, "created_at": 5}),
    ("plain v10", ("style", "nsfw"), {"base": "SDXL", "size_bytes": 10, "created_at": 6}),
    (
        'quote " and \\ back',
        ("NSFW",),
        {"base": None, "size_bytes": 7, "meta": {"trigger_words": [" a ", "a", "", "b\u3000"]}},
    ),
    (
        "ctrl\tchars\nname",
        ("nſfw",),  # folds (str.casefold) to "nsfw"
        {"type": "checkpoints", "meta": {"trigger_words": "  lone  ", "preferred_weight": 0.8}},
    ),
    (
        "Ünïcødé 名前",
        ("ns fw", "Ünï"),
        {
            "base": "Flux.1",
            "meta": {
                "trigger_words": ["x", 3, None, ["y"], {"z": 1}, "x", 'w"q', "\\n"],
                "preferred_weight": 10,
                "civitai": {"url": "https://civitai.example/m/1?a=b&c=\u00e9", "nsfw": True},
                "update": {"version_id": 7, "version_name": 'v2 "名" \\', "base_model": "x"},
            },
        },
    ),
    (
        "dict words",
        ('x","name":"nsfw', "nsfw2", "_nsfw"),  # not "nsfw", though their JSON holds it
        {
            "size_bytes": 3,
            "meta": {
                "trigger_words": {"a": "b"},
                "preferred_weight": True,
                "civitai": {"url": 5, "nsfw": "true"},
            },
        },
    ),
    (
        "weight 11",
        (),
        {"meta": {"preferred_weight": 11, "civitai": {"nsfw": False}, "update": {"x": 1}}},
    ),
    (
        "weight -10.0",
        (),
        {"meta": {"preferred_weight": -10.0, "trigger_words": [], "update": "v9"}},
    ),
    (
        "weight str",
        (),
        {"meta": {"preferred_weight": "1", "civitai": "not a dict", "update": {"version_id": "8"}}},
    ),
    ("weight tiny", (), {"meta": {"preferred_weight": 0.30000000000000004}}),
    (
        "gone",
        ("style",),
        {"missing": True, "meta": {"trigger_words": ["g"], "update": {"version_id": 9}}},
    ),
    ("bad meta", ("style",), {"base": "SD1.x"}),
    (
        "used one",
        (),
        {"size_bytes": 50, "type": "vae", "meta": {"update": {"version_id": 3, "version_name": 4}}},
    ),
]


@pytest.fixture
async def catalog(client, models_root) -> dict[str, str]:
    """The models above (sha256 by label), two used, one with a broken meta, images on
    three (one in a chosen order)."""
    svc = services_of(client)
    shas = {}
    for i, (label, tags, fields) in enumerate(MODELS):
        fields = {"created_at": 100 + i, "size_bytes": 1000 + i, **fields}
        if label == "used one":
            fields["path"] = str(models_root / "sub" / "deep" / "used.safetensors")
        shas[label] = seed_model(svc, label, tags, **fields)
    svc.db.models.mark_used(shas["used one"])
    svc.db.models.mark_used(shas["plain v10"])
    # A meta SQLite cannot read as JSON: the listing shows none of its fields (a jsonb
    # column holds nothing but JSON).
    if svc.db.dialect.name == "sqlite":
        with svc.db.transaction() as conn:
            conn.execute(
                "UPDATE models SET meta_json = ? WHERE sha256 = ?",
                ('{"trigger_words": ["x"', shas["bad meta"]),
            )
    for label, count in (("plain v2", 1), ("Ünïcødé 名前", 3), ("gone", 2)):
        for n in range(count):
            svc.images.add_image(shas[label], png_bytes((8, 8), color=(n * 40, 0, 0)))
    svc.images.set_order(shas["Ünïcødé 名前"], [2, 0, 1])
    return shas


# ---------------------------------------------------------------------- the rules
def clean_words(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    words: list[str] = []
    for word in value:
        if isinstance(word, str) and word.strip() and word.strip() not in words:
            words.append(word.strip())
    return words


def weight(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) and abs(value) <= 10 else None


def expected_update(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The badge's ``update``: ``meta.update``'s integer version id and its name (a string,
    else None), or None."""
    update = meta.get("update")
    if not isinstance(update, dict):
        return None
    version_id, name = update.get("version_id"), update.get("version_name")
    if not isinstance(version_id, int) or isinstance(version_id, bool):
        return None
    return {"version_id": version_id, "version_name": name if isinstance(name, str) else None}


def expected_item(svc, sha: str) -> dict[str, Any]:
    """The item of ``sha`` as the API must answer it, from the model's record."""
    record = svc.db.models.get(sha)
    meta = record["meta"] if isinstance(record["meta"], dict) else {}
    civitai = meta.get("civitai") if isinstance(meta.get("civitai"), dict) else {}
    tags = sorted(
        ({"id": t["id"], "name": t["name"], "color": t["color"]} for t in record["tags"]),
        key=lambda t: t["name"].translate(ASCII_LOWER),
    )
    seqs = svc.images.list_seqs(sha)
    url = civitai.get("url")
    return {
        **{key: record[key] for key in ("sha256", "name", "type", "base", "path")},
        **{key: record[key] for key in ("size_bytes", "created_at", "last_used_at")},
        "missing": bool(record["missing"]),
        "short_hash": sha[:10],
        "tags": tags,
        "trigger_words": clean_words(meta.get("trigger_words")),
        "preferred_weight": weight(meta.get("preferred_weight")),
        "civitai_url": url if isinstance(url, str) else None,
        "nsfw": civitai.get("nsfw") is True or any(t["name"].casefold() == "nsfw" for t in tags),
        "update": expected_update(meta),
        "image_count": len(seqs),
        "cover_image": (f"{sha}_{seqs[0]}.webp" if seqs else None),
    }


def expected_order(svc, shas: list[str], sort: str, order: str | None) -> list[str]:
    """``shas`` in the listing's order: the sort key (names in natural order, no value
    first when ascending), then the hash, both in the same direction."""
    records = {sha: svc.db.models.get(sha) for sha in shas}
    column = {"name": "name"}.get(sort, sort)

    def key(sha: str) -> tuple[Any, ...]:
        value = records[sha][column]
        value = natural_key(value) if sort == "name" else value
        return (value is not None, value if value is not None else 0, sha)

    descending = (order or ("asc" if sort == "name" else "desc")) == "desc"
    return sorted(shas, key=key, reverse=descending)


def matches(svc, sha: str, params: dict[str, str], folder: str | None) -> bool:
    """Whether ``sha`` passes the filters in ``params`` other than ``q``."""
    record = svc.db.models.get(sha)
    names = {t["name"].translate(ASCII_LOWER) for t in record["tags"]}
    wanted = [t.translate(ASCII_LOWER) for t in params.get("tags", "").split(",") if t]
    unwanted = [t.translate(ASCII_LOWER) for t in params.get("exclude_tags", "").split(",") if t]
    return (
        (params.get("include_missing") == "true" or not record["missing"])
        and params.get("type", record["type"]) == record["type"]
        and params.get("base", record["base"]) == record["base"]
        and all(t in names for t in wanted)
        and not any(t in names for t in unwanted)
        and (folder is None or record["path"].startswith(folder + "/"))
        and (params.get("used") != "true" or record["last_used_at"] is not None)
        and (params.get("update") != "available" or has_update(record))
    )


def has_update(record: dict[str, Any]) -> bool:
    """``update=available``: ``meta.update.version_id`` is set (not null)."""
    meta = record["meta"] if isinstance(record["meta"], dict) else {}
    update = meta.get("update")
    return isinstance(update, dict) and update.get("version_id") is not None


# ---------------------------------------------------------------------- the tests
QUERIES = [
    {},
    {"include_missing": "true"},
    {"include_missing": "true", "sort": "size_bytes", "order": "asc", "offset": "2"},
    {"include_missing": "true", "sort": "created_at", "limit": "4", "offset": "3"},
    {"sort": "last_used_at"},
    {"sort": "last_used_at", "order": "asc", "include_missing": "true"},
    {"sort": "name", "order": "desc", "limit": "5", "offset": "1"},
    {"tags": "style"},
    {"tags": "style", "include_missing": "true", "sort": "size_bytes"},
    {"tags": "STYLE,nsfw"},
    {"exclude_tags": "style,nsfw"},
    {"type": "checkpoints"},
    {"base": "SDXL", "order": "desc"},
    {"used": "true"},
    {"folder": "sub"},
    {"update": "available"},
    {"update": "available", "include_missing": "true", "sort": "size_bytes"},
    {"update": "available", "tags": "nsfw"},
    {"offset": "100"},
    {"limit": "0"},
]


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: urlencode(p) or "all")
async def test_listing_items_are_the_records(client, catalog, models_root, params) -> None:
    svc = services_of(client)
    folder = str(models_root / params["folder"]) if "folder" in params else None
    query = {**params, **({"folder": folder} if folder else {})}
    resp = await client.get(f"/api/models?{urlencode(query)}")
    body = await resp.json()
    assert resp.status == 200, body
    assert resp.content_type == "application/json"
    hits = [sha for sha in catalog.values() if matches(svc, sha, params, folder)]
    ordered = expected_order(svc, hits, params.get("sort", "name"), params.get("order"))
    offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
    page = ordered[offset : offset + limit]
    assert body == {
        "total": len(hits),
        "offset": offset,
        "limit": limit,
        "items": [expected_item(svc, sha) for sha in page],
    }
    assert [list(item) for item in body["items"]] == [
        list(expected_item(svc, sha)) for sha in page
    ]  # the keys in the order they always had


@pytest.mark.parametrize(
    "params",
    [{"q": "plain"}, {"q": "ünï"}, {"q": "名前"}, {"q": "v1", "tags": "style"}, {"q": "a\\"}],
    ids=lambda p: urlencode(p),
)
async def test_listing_text_search_items(client, catalog, params) -> None:
    """With ``q``, the selection and order are the listing's own SQL's (``page``, which
    the search tests cover); each item is still its record's."""
    svc = services_of(client)
    for include_missing in ("false", "true"):
        query = {**params, "include_missing": include_missing}
        body = await (await client.get(f"/api/models?{urlencode(query)}")).json()
        tags = tuple(t for t in params.get("tags", "").split(",") if t)
        total, rows = svc.db.listing.page(
            ModelQuery(q=params["q"], tags=tags, include_missing=include_missing == "true")
        )
        assert body["total"] == total
        assert body["items"] == [expected_item(svc, row["sha256"]) for row in rows]
    assert total > 0 or params["q"] == "a\\"


async def test_every_catalog_item_shown_as_its_record(client, catalog) -> None:
    """One page of everything: each model's item, compared field by field (so a failure
    names the field), and the cases the rules single out."""
    svc = services_of(client)
    body = await (await client.get("/api/models?include_missing=true")).json()
    items = {item["sha256"]: item for item in body["items"]}
    assert set(items) == set(catalog.values())
    for sha, item in items.items():
        want = expected_item(svc, sha)
        for key, value in want.items():
            assert item[key] == value and type(item[key]) is type(value), (sha, key)
    by_label = {label: items[sha] for label, sha in catalog.items()}
    assert by_label['quote " and \\ back']["trigger_words"] == ["a", "b"]
    assert by_label["ctrl\tchars\nname"]["nsfw"] is True  # the tag nſfw
    assert by_label["Ünïcødé 名前"]["trigger_words"] == ["x", 'w"q', "\\n"]
    assert by_label["Ünïcødé 名前"]["cover_image"].endswith("_2.webp")
    assert by_label["weight tiny"]["preferred_weight"] == 0.30000000000000004
    assert by_label["bad meta"]["trigger_words"] == [] and by_label["gone"]["missing"] is True
    assert by_label["dict words"]["nsfw"] is False and by_label["plain v2"]["nsfw"] is False
    assert by_label["Ünïcødé 名前"]["update"] == {"version_id": 7, "version_name": 'v2 "名" \\'}
    assert by_label["used one"]["update"] == {"version_id": 3, "version_name": None}
    assert by_label["weight str"]["update"] is None and by_label["plain v2"]["update"] is None


async def test_update_filter(client, catalog) -> None:
    """``update=available`` keeps the models whose ``meta.update`` names a version (a
    version id of the wrong type still counts: the filter is ``IS NOT NULL``); a value
    other than ``available`` is a 400."""
    body = await (await client.get("/api/models?update=available&include_missing=true")).json()
    names = sorted(item["name"] for item in body["items"])
    assert names == ["gone", "used one", "weight str", "Ünïcødé 名前"]
    assert body["total"] == 4
    resp = await client.get("/api/models?update=yes")
    assert resp.status == 400
    assert "update must be one of available" in (await resp.json())["detail"]
