"""Search (``q``): the trigram index over names, paths, tags and trigger words, hash
prefixes, the index kept in step by the schema's triggers, and its build after an upgrade.
Real SQLite files, a real server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import DatabaseManager, ModelQuery
from hikaze_mm.hashing import short_hash
from hikaze_mm.library.search_index import SearchIndexer
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.library_helpers import seed_model, services_of, sha_for

config = on_each_backend()


def found(db: DatabaseManager, q: str, **kwargs) -> list[str]:
    """The names ``q`` lists (all of them, by name)."""
    total, rows = db.listing.page(ModelQuery(q=q, limit=500, **kwargs))
    assert total == len(rows)
    return [row["name"] for row in rows]


def documents(db: DatabaseManager) -> list[tuple]:
    rows = db.conn.execute(
        "SELECT rowid, sha256, name, path, tags, words FROM model_search ORDER BY rowid"
    ).fetchall()
    return [tuple(r) for r in rows]


@pytest.fixture
def db(services: Services) -> DatabaseManager:
    svc = services
    seed_model(svc, "Anime Girl", tags=("Style", "portrait"), path="/m/loras/ag.safetensors")
    seed_model(
        svc, "plain", path="/m/loras/Landscapes/plain.safetensors", meta={"trigger_words": "skyx"}
    )
    seed_model(
        svc,
        "worded",
        path="/m/loras/w.safetensors",
        meta={"trigger_words": ["Moonlit Night", 7, "glow_up"], "other": "hiddenword"},
    )
    seed_model(svc, "100%_pure", path="/m/loras/p.safetensors")
    assert svc.db.listing.search_ready()
    return svc.db


# ---------------------------------------------------------------------- match kinds
def test_q_matches_names_paths_tags_and_trigger_words(db: DatabaseManager) -> None:
    assert found(db, "anime") == ["Anime Girl"]
    assert found(db, "ANIME g") == ["Anime Girl"]  # any case, spaces included
    assert found(db, "landscapes/pl") == ["plain"]  # the path
    assert found(db, "tyl") == ["Anime Girl"]  # a tag name's substring
    assert found(db, "PORTRAIT") == ["Anime Girl"]
    assert found(db, "skyx") == ["plain"]  # trigger_words as one string
    assert found(db, "moonlit") == ["worded"]  # ... or a list of strings
    assert found(db, "glow_up") == ["worded"]
    assert found(db, "hiddenword") == []  # other meta is not searched
    assert found(db, "7") == []  # nor non-text trigger words
    assert found(db, "/m/loras/") == ["100%_pure", "Anime Girl", "plain", "worded"]


def test_q_is_literal_and_short_queries_still_work(db: DatabaseManager) -> None:
    assert found(db, "0%_") == ["100%_pure"]  # % and _ are plain characters
    assert found(db, "%") == ["100%_pure"]
    assert found(db, "_p") == ["100%_pure"]
    assert found(db, 'ni"ght') == []  # a quote cannot break out of the phrase
    assert found(db, "ni") == ["Anime Girl"]  # 2 characters: a LIKE of names, paths, tags
    assert found(db, "ty") == ["Anime Girl"]  # (the tag "Style")
    assert found(db, "zq") == []


def test_q_with_a_line_break_matches_within_one_field(services: Services) -> None:
    """Trigger words are one text, a word a line; a name and its path are apart."""
    seed_model(
        services,
        "top",
        tags=("kind",),
        path="/lib/under.sft",
        meta={"trigger_words": ["one", "two"]},
    )
    db = services.db
    assert found(db, "one\ntwo") == found(db, "ONE\nT") == ["top"]
    assert found(db, "top\n/lib") == found(db, "two\ntop") == found(db, "under.sft\none") == []
    assert found(db, "\n") == [] and found(db, "one\ntwo", tags=("kind",)) == ["top"]


def test_q_matches_the_sha256_and_the_autov2_hash_by_prefix(services: Services) -> None:
    sha = seed_model(services, "hashed")
    seed_model(services, "other")
    db = services.db
    assert found(db, sha) == ["hashed"]
    assert found(db, sha.upper()) == ["hashed"]
    assert found(db, short_hash(sha)) == ["hashed"]  # AutoV2: the first 10 hex digits
    assert found(db, short_hash(sha).upper()) == ["hashed"]
    assert found(db, sha[:8]) == ["hashed"]
    assert found(db, sha[1:11]) == []  # a prefix, not any substring
    assert found(db, sha[:7]) == []  # too short to be taken for a hash
    if db.dialect.name != "sqlite":
        return  # (the plan of SQLite's own)
    plan = db.conn.execute(
        "EXPLAIN QUERY PLAN SELECT 1 FROM models m WHERE m.sha256 >= ? AND m.sha256 < ?",
        (sha[:10], sha[:10] + "g"),
    ).fetchall()
    assert any("INDEX" in row[3] for row in plan)


def test_q_combines_with_the_other_filters(db: DatabaseManager) -> None:
    assert found(db, "a", tags=("Style",)) == ["Anime Girl"]
    assert found(db, "/m/", tags=("portrait",), exclude_tags=("style",)) == []
    assert found(db, "/m/", exclude_tags=("style",)) == ["100%_pure", "plain", "worded"]
    sha = db.models.get_by_path("/m/loras/w.safetensors")["sha256"]
    db.models.update(sha, missing=True)
    assert found(db, "moonlit") == []
    assert found(db, "moonlit", include_missing=True) == ["worded"]


@pytest.mark.parametrize("accents", [True, False], ids=["accented-tags", "ascii-tags"])
@pytest.mark.parametrize("driving", [0, 10_000], ids=["index-as-a-set", "index-drives"])
def test_both_plans_list_the_same(services: Services, driving: int, accents: bool) -> None:
    """Many matches (the listing's order drives) or few (the index drives), with required
    tags (whole names, any case, accented or not: the index finds them by id; a tag that
    only contains one does not count), excluded tags, missing models, paging."""
    db = services.db
    db.listing.driving_matches = driving
    for i in range(12):
        tags = ["Style"] if i % 2 else ["lifestyle"]
        if i % 3 == 0:
            tags.append("Été" if accents else "Ete")
        if i % 4 == 0 and accents:
            tags.append("été")
        seed_model(services, f"anime {i:02d}", tags=tuple(tags), path=f"/lib/{i}.sft")
    seed_model(services, "plain", tags=("Style",), path="/lib/plain.sft")
    db.models.update(sha_for("anime 05"), missing=True)

    assert found(db, "anime") == [f"anime {i:02d}" for i in range(12) if i != 5]
    assert found(db, "anime", include_missing=True) == [f"anime {i:02d}" for i in range(12)]
    assert found(db, "anime", tags=("STYLE",)) == [
        "anime 01",
        "anime 03",
        "anime 07",
        "anime 09",
        "anime 11",
    ]
    assert found(db, "anime", tags=("style", "Été" if accents else "ete")) == [
        "anime 03",
        "anime 09",
    ]
    if accents:
        assert found(db, "anime", tags=("été",)) == ["anime 00", "anime 04", "anime 08"]
    assert found(db, "anime", exclude_tags=("style",), type="loras") == [
        "anime 00",
        "anime 02",
        "anime 04",
        "anime 06",
        "anime 08",
        "anime 10",
    ]
    total, rows = db.listing.page(ModelQuery(q="anime", limit=4, offset=8, order="desc"))
    assert total == 11 and [r["name"] for r in rows] == ["anime 02", "anime 01", "anime 00"]


async def test_the_http_listing_searches_every_kind(client) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "Served", tags=("ink",), meta={"trigger_words": ["zebra"]})
    for q in ("erve", "ink", "zebra", sha[:10].upper(), sha):
        resp = await client.get("/api/models", params={"q": q})
        body = await resp.json()
        assert resp.status == 200 and [i["sha256"] for i in body["items"]] == [sha], q


# ---------------------------------------------------------------------- kept in step
def test_the_index_follows_inserts_updates_deletes_and_tag_changes(services: Services) -> None:
    db = services.db
    sha = seed_model(
        services, "first", tags=("alpha",), meta={"trigger_words": ["one"]}, path="/lib/x1.sft"
    )
    assert found(db, "first") == found(db, "alpha") == found(db, "one") == ["first"]

    db.models.update(sha, name="renamed", meta={"trigger_words": ["two"]})
    assert found(db, "first") == [] and found(db, "one") == []
    assert found(db, "renamed") == found(db, "two") == ["renamed"]

    db.models.relink(sha, "/elsewhere/moved.safetensors")
    assert found(db, "elsewhere/mov") == ["renamed"]

    db.models.add_tags(sha, ["beta"])
    db.models.remove_tags(sha, ["alpha"])
    assert found(db, "alpha") == [] and found(db, "beta") == ["renamed"]

    beta = db.tags.get("beta")["id"]
    db.tags.update(beta, name="gamma")
    assert found(db, "beta") == [] and found(db, "gamma") == ["renamed"]
    db.tags.delete(beta)  # cascades to model_tags, whose triggers fire
    assert found(db, "gamma") == []

    db.models.upsert({"sha256": sha, "meta": {"trigger_words": "three"}}, tags=["delta"])
    assert found(db, "three") == found(db, "delta") == ["renamed"]
    db.models.mark_used(sha)  # columns outside the index leave it alone
    assert found(db, "three") == ["renamed"]

    db.models.delete(sha)
    assert found(db, "renamed") == []
    assert db.dialect.name != "sqlite" or documents(db) == []


@pytest.mark.parametrize("config", ["sqlite"], indirect=True)  # SQLite's FTS5 documents
def test_the_index_matches_a_rebuild(db: DatabaseManager) -> None:
    """What the triggers kept equals what a build from scratch writes."""
    kept = documents(db)
    assert len(kept) == 4
    db.listing.rebuild_search_index()
    assert not db.listing.search_ready() and documents(db) == []
    while not db.listing.build_search_index(limit=3):
        pass
    assert db.listing.search_ready()
    assert documents(db) == kept


# ---------------------------------------------------------------------- upgrade
def _revision_6_library(path: Path, count: int) -> None:
    """A library as release 6 left it: models with tags and trigger words, no index."""
    old = DatabaseManager(path)
    old.upgrade_to(6)
    with old.transaction() as conn:
        conn.execute("INSERT INTO tags (name) VALUES ('legacy-tag')")
        for i in range(count):
            sha = sha_for(f"old {i}")
            conn.execute(
                "INSERT INTO models (sha256, path, name, type, meta_json) "
                "VALUES (?, ?, ?, 'loras', ?)",
                (
                    sha,
                    f"/old/loras/m{i}.safetensors",
                    f"old model {i}",
                    '{"trigger_words": "w0rd"}',
                ),
            )
            conn.execute("INSERT INTO model_tags VALUES (?, 1)", (sha,))
        conn.execute(
            "INSERT INTO models (sha256, path, name, meta_json) VALUES (?, '/old/x', 'bad', ?)",
            (sha_for("bad meta"), "{not json"),
        )
    old.close()


def test_an_upgrade_builds_the_index_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "data" / "hikaze_mm.db"
    path.parent.mkdir()
    _revision_6_library(path, 250)
    db = DatabaseManager(path)
    db.init_db()
    assert db.listing.search_ready() is False
    # Until it is built: the LIKE scan of names, paths and tag names (no trigger words).
    assert len(found(db, "old model 1")) == 111
    assert len(found(db, "legacy-tag")) == 250
    assert found(db, "w0rd") == []
    sha = sha_for("old 7")
    assert found(db, sha[:10]) == ["old model 7"]
    # Written during the build: the triggers index it, the build skips it.
    db.models.upsert({"sha256": "f" * 64, "path": "/new/n.safetensors", "name": "newcomer"})

    indexer = SearchIndexer(db, batch_size=40)
    assert indexer.start() is True
    assert indexer.wait(30)
    assert indexer.status()["ready"] is True and db.listing.search_ready()
    assert indexer.start() is False  # nothing left to build
    assert len(found(db, "w0rd")) == 250
    assert len(found(db, "old model 1")) == 111
    assert found(db, "newcomer") == ["newcomer"]
    assert found(db, "bad") == ["bad"]  # meta that is not JSON has no trigger words
    assert len(documents(db)) == 252
    db.close()


def test_services_open_starts_the_build_and_close_stops_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _revision_6_library(data / "hikaze_mm.db", 30)
    svc = Services.open(Config.load(data_dir=data, env={}))
    try:
        assert svc.search_index.wait(30)
        assert svc.db.listing.search_ready()
        assert len(svc.models.list(ModelQuery(q="w0rd"))["items"]) == 30
    finally:
        svc.close()
    with sqlite3.connect(data / "hikaze_mm.db") as conn:
        state = conn.execute(
            "SELECT value_json FROM migration_state WHERE key = 'search_index'"
        ).fetchone()
    assert state == ('{"ready": true}',)
