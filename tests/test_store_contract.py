"""The storage contract (``hikaze_mm/database/interfaces.py``), run against every backend.

Each test takes ``library``: a library opened through ``open_library`` from a backend
factory. A backend runs the whole suite by adding one entry to ``BACKENDS``: a function
that, given the test's request (for fixtures such as ``pg_url``) and a fresh temporary
folder, returns the ``Config`` naming an empty library of that backend (its
``database_url``, say). ``postgres`` runs on the throwaway cluster (tests/pg_cluster.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import ModelQuery, open_library
from hikaze_mm.database.errors import (
    StorageConflictError,
    StorageError,
    StorageNotFoundError,
    StorageUnavailableError,
)
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ValidationError


def sqlite_config(request: pytest.FixtureRequest, folder: Path) -> Config:
    return Config.load(data_dir=folder / "data", env={})


def postgres_config(request: pytest.FixtureRequest, folder: Path) -> Config:
    url = request.getfixturevalue("pg_url")
    return Config.load(data_dir=folder / "data", env={"HIKAZE_DB_URL": url})


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Config]] = {
    "sqlite": sqlite_config,
    "postgres": postgres_config,
}

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture(params=list(BACKENDS))
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def library(config: Config) -> Iterator[Library]:
    lib = open_library(config)
    yield lib
    lib.close()


def add_model(library: Library, sha: str, path: str, **data: object) -> dict:
    record, action = library.models.upsert({"sha256": sha, "path": path, **data})
    assert action == "created"
    return record


# ---------------------------------------------------------------------- the library
def test_a_new_library_is_at_the_latest_revision_and_empty(library: Library) -> None:
    assert isinstance(library, Library)
    assert library.schema_version() == library.head_revision
    assert library.read_only is False
    assert library.listing.totals() == {"models": 0, "missing": 0, "size": 0, "used": 0}
    assert library.pending.counts() == {"new": 0, "hashing": 0, "error": 0, "conflict": 0}


def test_a_transaction_is_all_or_nothing_and_nests(library: Library) -> None:
    with pytest.raises(RuntimeError), library.transaction():
        add_model(library, SHA_A, "/m/a.safetensors")
        raise RuntimeError("undo")
    assert library.models.get(SHA_A) is None
    with library.transaction():
        add_model(library, SHA_A, "/m/a.safetensors")
        with pytest.raises(RuntimeError), library.transaction():
            add_model(library, SHA_B, "/m/b.safetensors")
            raise RuntimeError("undo the inner unit only")
    assert library.models.exists(SHA_A) and not library.models.exists(SHA_B)


def test_any_thread_may_use_the_library(library: Library) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            library.pending.add({"path": f"/p/{n}.safetensors", "source": "scan"})
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            library.release_thread()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and library.pending.count() == 4


def test_a_reader_reads_and_never_writes(config: Config, library: Library) -> None:
    add_model(library, SHA_A, "/m/a.safetensors", name="A")
    reader = open_library(config, read_only=True)
    try:
        assert reader.read_only is True
        assert reader.models.get(SHA_A)["name"] == "A"
        with pytest.raises(StorageUnavailableError):
            reader.state.set("k", {"v": 1})
        with pytest.raises(StorageError):
            reader.models.upsert({"sha256": SHA_B, "path": "/m/b.safetensors"})
    finally:
        reader.close()
    assert library.state.get("k") is None and not library.models.exists(SHA_B)


def test_an_unknown_database_url_scheme_is_a_clear_storage_error(config: Config) -> None:
    from dataclasses import replace

    with pytest.raises(StorageUnavailableError, match="nosuchdb://"):
        open_library(replace(config, database_url="nosuchdb://host/library"))


# ---------------------------------------------------------------------- models
def test_models_are_created_updated_and_merged_by_hash(library: Library) -> None:
    record = add_model(
        library, SHA_A.upper(), "/m/a.safetensors", name="A", size_bytes=10, meta={"x": 1}
    )
    assert record["sha256"] == SHA_A and record["missing"] is False
    assert record["meta"] == {"x": 1} and record["tags"] == []
    merged, action = library.models.upsert(
        {"sha256": SHA_A, "name": "ignored", "base": "SDXL", "meta": {"x": 2, "y": 3}},
        on_conflict="merge",
    )
    assert action == "merged"
    assert (merged["name"], merged["base"], merged["meta"]) == ("A", "SDXL", {"x": 1, "y": 3})
    updated, action = library.models.upsert({"sha256": SHA_A, "name": "New", "meta": {"x": 4}})
    assert action == "updated" and updated["name"] == "New" and updated["meta"]["x"] == 4
    assert library.models.get_by_path("/m/a.safetensors")["sha256"] == SHA_A
    assert library.models.sizes([SHA_A]) == {SHA_A: 10}
    assert library.models.meta_values([SHA_A], "y") == {SHA_A: 3}
    assert library.models.meta_fields([SHA_A], ["x", "z"]) == {SHA_A: {"x": 4}}
    with pytest.raises(ValidationError):
        library.models.upsert({"sha256": "not a hash", "path": "/m/x"})


def test_model_edits_use_and_removal(library: Library) -> None:
    add_model(library, SHA_A, "/m/a.safetensors", size_bytes=5)
    assert library.models.update(SHA_A, name="Renamed", meta={"k": "v"})["name"] == "Renamed"
    used = library.models.mark_used(SHA_A)
    assert used["use_count"] == 1 and used["last_used_at"] is not None
    assert library.models.set_missing([SHA_A], True) == 1
    assert library.models.paths(missing=True) == [("/m/a.safetensors", SHA_A)]
    assert library.models.relink(SHA_A, "/m/moved.safetensors") is True
    assert library.models.get(SHA_A)["missing"] is False
    assert library.models.locate(paths=["/m/moved.safetensors"]) == [
        ("/m/moved.safetensors", SHA_A, False)
    ]
    assert library.models.with_sizes([5]) == [("/m/moved.safetensors", SHA_A, False)]
    assert library.models.outside(["/m"]) == []
    assert library.models.without_meta("civitai") == [SHA_A]
    assert library.models.delete(SHA_A) is True
    assert library.models.delete(SHA_A) is False
    assert library.models.relink(SHA_A, "/m/x.safetensors") is False


def test_unknown_models_are_not_found(library: Library) -> None:
    for call in (
        lambda: library.models.update(SHA_B, name="x"),
        lambda: library.models.mark_used(SHA_B),
        lambda: library.models.add_tags(SHA_B, ["t"]),
    ):
        with pytest.raises(StorageNotFoundError):
            call()


def test_copies_of_a_model_and_duplicates(library: Library) -> None:
    add_model(library, SHA_A, "/m/a.safetensors", size_bytes=100)
    assert library.models.add_files([(SHA_A, "/m/copy.safetensors", 100)]) == 1
    assert library.models.add_files([(SHA_C, "/m/nobody.safetensors", 1)]) == 0
    assert library.models.files([SHA_A]) == {SHA_A: ["/m/a.safetensors", "/m/copy.safetensors"]}
    assert library.models.copies_below(["/m"]) == {"/m/copy.safetensors": SHA_A}
    [dup] = library.models.duplicates()
    assert dup["sha256"] == SHA_A and dup["wasted_bytes"] == 100
    assert library.models.remove_files(["/m/copy.safetensors"]) == 1
    assert library.models.duplicates() == []


def test_probed_bases_never_replace_a_users(library: Library) -> None:
    add_model(library, SHA_A, "/m/a.safetensors")
    add_model(library, SHA_B, "/m/b.safetensors", base="SD1", meta={"sources": {"base": "user"}})
    assert library.models.probe_targets() == [(SHA_A, "/m/a.safetensors")]
    assert library.models.set_probed_base(SHA_A, "SDXL") is True
    assert library.models.set_probed_base(SHA_B, "SDXL") is False
    assert library.models.get(SHA_A)["base"] == "SDXL"
    assert library.models.get(SHA_B)["base"] == "SD1"


# ---------------------------------------------------------------------- tags
def test_tags_are_unique_in_any_case(library: Library) -> None:
    tag = library.tags.create("Anime", "#AABBCC")
    assert tag["color"] == "#aabbcc"
    with pytest.raises(StorageConflictError):
        library.tags.create("anime")
    assert library.tags.ensure("ANIME")["id"] == tag["id"]
    assert library.tags.get("anime")["id"] == tag["id"]
    other = library.tags.create("style")
    with pytest.raises(StorageConflictError):
        library.tags.update(other["id"], name="Anime")
    with pytest.raises(StorageNotFoundError):
        library.tags.update(9999, name="x")
    with pytest.raises(StorageNotFoundError):
        library.tags.resolve([9999], create=False)
    assert library.tags.resolve(["nope", 9999], create=False, missing_ok=True) == []
    assert library.tags.update(other["id"], color=None)["color"] is None
    assert library.tags.count() == {"tags": 2, "links": 0}
    assert library.tags.delete(other["id"]) is True and library.tags.delete(other["id"]) is False


def test_tag_links_of_models_and_pending_models(library: Library) -> None:
    add_model(library, SHA_A, "/m/a.safetensors")
    add_model(library, SHA_B, "/m/b.safetensors")
    ids = library.models.add_tags(SHA_A, ["one", "Two"])
    assert [t["name"] for t in library.models.get(SHA_A)["tags"]] == ["one", "Two"]
    library.models.retag([SHA_A, SHA_B], add=[ids[1]], remove=[ids[0]])
    assert library.tags.for_models([SHA_A, SHA_B]) == {
        SHA_A: [{"id": ids[1], "name": "Two", "color": None}],
        SHA_B: [{"id": ids[1], "name": "Two", "color": None}],
    }
    assert library.models.remove_tags(SHA_B, ["two", "unknown"]) == 1
    pid = library.pending.add({"path": "/p/x.safetensors"}, tags=["one"])
    library.pending.add_tags(pid, [ids[1]])
    assert sorted(t["name"] for t in library.pending.get(pid)["tags"]) == ["Two", "one"]
    counts = {t["name"]: (t["model_count"], t["pending_count"]) for t in library.tags.list()}
    assert counts == {"one": (0, 1), "Two": (1, 1)}
    assert library.tags.ids_by_name(["ONE"]) == {"one": ids[0]}


# ---------------------------------------------------------------------- pending
def test_pending_models_by_id_path_and_status(library: Library) -> None:
    first = library.pending.add({"path": "/p/a.safetensors", "name": "a", "source": "scan"})
    second = library.pending.add({"path": "/p/b.safetensors", "status": "error"})
    with pytest.raises(StorageConflictError):
        library.pending.add({"path": "/p/a.safetensors"})
    with pytest.raises(ValidationError):
        library.pending.add({"path": "/p/c.safetensors", "status": "nonsense"})
    assert library.pending.get(first)["name"] == "a"
    assert library.pending.get_by_path("/p/b.safetensors")["id"] == second
    assert [r["id"] for r in library.pending.list(status="error")] == [second]
    assert library.pending.count() == 2 and library.pending.count("new") == 1
    assert library.pending.ids(["new"]) == [(first, "/p/a.safetensors", None)]
    assert library.pending.locations()["/p/a.safetensors"].source == "scan"
    assert library.pending.next_free_id(1) == second + 1
    library.pending.update(first, status="conflict", sha256=SHA_A, error="same content")
    assert library.pending.get(first)["sha256"] == SHA_A
    with pytest.raises(StorageNotFoundError):
        library.pending.update(9999, status="new")
    assert library.pending.reset_status("conflict", "new", keep=[second]) == 1
    assert library.pending.remove_stale_scan_rows([first, second]) == [first]
    assert library.pending.remove(second) is True and library.pending.remove(second) is False
    assert library.pending.count() == 0


# ---------------------------------------------------------------------- caches and state
def test_the_hash_cache_keys_a_file_version(library: Library) -> None:
    library.hash_cache.store("/m/a.safetensors", 10, 111, 7, SHA_A.upper())
    assert library.hash_cache.lookup("/m/a.safetensors", 10, 111, 7) == SHA_A
    assert library.hash_cache.lookup("/m/a.safetensors", 10, 112, 7) is None
    row = ("/m/a.safetensors", 10, 111, 7, SHA_A)
    assert library.hash_cache.below(["/m"]) == {"/m/a.safetensors": row}
    assert library.hash_cache.below(["/other"]) == {}
    assert library.hash_cache.rows(["/m/a.safetensors", "/m/x"]) == {"/m/a.safetensors": row}
    add_model(library, SHA_A, "/m/a.safetensors")
    keys, expected, outside = library.hash_cache.model_file_keys(["/m"])
    assert (len(keys), expected, outside) == (1, 1, 0)
    library.hash_cache.forget("/m/a.safetensors")
    assert library.hash_cache.lookup("/m/a.safetensors", 10, 111, 7) is None


def test_sidecars_read_and_preview_pixels(library: Library) -> None:
    library.sidecars.record([("/m/a.json", 3, 44, None), ("/x/b.json", 1, 2, None)])
    assert library.sidecars.below(["/m"]) == {"/m/a.json": (3, 44)}
    assert library.sidecars.rename([("/m/a.json", "/n/a.json"), ("/m/none", "/n/none")]) == 1
    assert library.sidecars.below(["/n"]) == {"/n/a.json": (3, 44)}
    assert library.sidecars.below(["/m"]) == {}
    library.sidecars.rename([("/n/a.json", "/m/a.json")])
    library.sidecars.forget(["/m/a.json"])
    assert library.sidecars.below(["/m"]) == {}
    add_model(library, SHA_A, "/m/a.safetensors")
    assert library.sidecars.has_pixels(SHA_A, "d1") is False
    library.sidecars.add_pixels(SHA_A, "d1", 0)
    assert library.sidecars.has_pixels(SHA_A, "d1") is True


def test_state_documents_by_key(library: Library) -> None:
    assert library.state.get("job") is None
    library.state.set("job", {"status": "RUNNING", "done": [1, 2]})
    library.state.set("job", {"status": "DONE"})
    assert library.state.get("job") == {"status": "DONE"}


def test_downloads_queue_first_then_history_newest_first(library: Library) -> None:
    first = library.downloads.add("https://a.example/a.safetensors", request={"type": "loras"})
    done = library.downloads.add("https://a.example/b.safetensors", status="done")
    queued = library.downloads.add("civitai:1", expected_sha256=SHA_A)
    failed = library.downloads.add("hf:x/y", status="failed", error="boom")
    record = library.downloads.get(first)
    assert record is not None and record["status"] == "queued"
    assert record["request"] == {"type": "loras"} and record["bytes_done"] == 0
    assert [r["id"] for r in library.downloads.list()] == [first, queued, failed, done]
    assert [r["id"] for r in library.downloads.unfinished()] == [first, queued]
    running = library.downloads.update(first, status="running", bytes_done=10, meta={"x": 1})
    assert running["status"] == "running" and running["meta"] == {"x": 1}
    library.downloads.update(queued, status="done", path="/m/c.safetensors")
    assert [r["id"] for r in library.downloads.unfinished()] == [first]
    with pytest.raises(ValidationError):
        library.downloads.update(first, status="exploded")
    with pytest.raises(StorageNotFoundError):
        library.downloads.update(999, status="done")
    assert library.downloads.delete(done) and not library.downloads.delete(done)
    assert library.downloads.get(done) is None


def test_the_legacy_ledger_remembers_what_was_imported(library: Library) -> None:
    assert library.legacy_ledger.is_imported("/old/a") is False
    library.legacy_ledger.record_model("/old/a", 3, sha256=SHA_A, pending_id=None)
    assert library.legacy_ledger.is_imported("/old/a") and library.legacy_ledger.sha_imported(SHA_A)
    library.legacy_ledger.record_tag("anime", 5)
    assert (
        library.legacy_ledger.tag_for("anime") == 5 and library.legacy_ledger.tag_for("x") is None
    )
    library.legacy_ledger.reserve(SHA_A, "src1", 2)
    assert library.legacy_ledger.reservation(SHA_A, "src1") == (2, False)
    library.legacy_ledger.mark_done(SHA_A, ["src1"])
    assert library.legacy_ledger.reservation(SHA_A, "src1") == (2, True)


# ---------------------------------------------------------------------- listing
def test_a_listing_filters_sorts_and_counts(library: Library) -> None:
    add_model(library, SHA_A, "/m/loras/v10.safetensors", name="v10", type="loras", size_bytes=1)
    add_model(library, SHA_B, "/m/loras/v2.safetensors", name="v2", type="loras", base="SDXL")
    add_model(library, SHA_C, "/m/ckpt/c.safetensors", name="c", type="checkpoints")
    library.models.add_tags(SHA_A, ["nsfw"])
    library.models.set_missing([SHA_C], True)
    total, rows = library.listing.page(ModelQuery(type="loras"))
    assert total == 2 and [r["name"] for r in rows] == ["v2", "v10"]  # natural order
    assert library.listing.page(ModelQuery(exclude_tags=("nsfw",)))[0] == 1
    assert library.listing.page(ModelQuery(tags=("nobody",))) == (0, [])
    assert library.listing.page(ModelQuery(include_missing=True, limit=1))[0] == 3
    assert library.listing.page(ModelQuery(folder="/m/loras"))[0] == 2
    assert library.listing.page(ModelQuery(base="SDXL"))[1][0]["sha256"] == SHA_B
    assert library.listing.type_counts() == [{"type": "loras", "count": 2}]
    assert library.listing.base_counts() == [
        {"base": "SDXL", "count": 1},
        {"base": "unknown", "count": 1},
    ]
    assert library.listing.totals()["missing"] == 1
    assert sorted(library.listing.all_sha256s()) == [SHA_A, SHA_B, SHA_C]


def test_a_listing_page_as_json_is_the_same_page(library: Library) -> None:
    """``page_json``: the page ``page`` finds, each item an open JSON object (the caller
    closes it) holding the row's columns, tags by name and its meta's fields."""
    add_model(library, SHA_A, "/m/loras/v10.safetensors", name="v10", size_bytes=1)
    add_model(library, SHA_B, "/m/loras/v2.safetensors", name="v2", base="SDXL")
    library.models.update(SHA_B, meta={"trigger_words": [" b ", "b"], "preferred_weight": 0.5})
    library.models.add_tags(SHA_B, ["zeta", "Alpha"])
    for query in (ModelQuery(), ModelQuery(tags=("alpha",)), ModelQuery(limit=1, offset=1)):
        total, rows = library.listing.page(query)
        assert library.listing.page_json(query)[0] == total
        shas = [sha for sha, _item in library.listing.page_json(query)[1]]
        assert shas == [row["sha256"] for row in rows]
    items = dict(library.listing.page_json(ModelQuery())[1])
    item = json.loads(items[SHA_B] + "}")
    assert {k: item[k] for k in ("name", "base", "size_bytes", "missing")} == {
        "name": "v2",
        "base": "SDXL",
        "size_bytes": None,
        "missing": False,
    }
    assert [t["name"] for t in item["tags"]] == ["Alpha", "zeta"]
    assert item["trigger_words"] == ["b"] and item["preferred_weight"] == 0.5
    assert json.loads(items[SHA_A] + "}")["trigger_words"] == []
    assert library.listing.page_json(ModelQuery(tags=("nobody",))) == (0, [])


def test_text_search_finds_names_tags_and_hash_prefixes(library: Library) -> None:
    add_model(library, SHA_A, "/m/loras/castle.safetensors", name="Old Castle")
    add_model(library, SHA_B, "/m/loras/b.safetensors", name="Forest")
    library.models.add_tags(SHA_B, ["Castles"])
    library.listing.rebuild_search_index()
    assert library.listing.search_ready() is False
    for _ in range(10):  # one model a batch: two models, then done
        if library.listing.build_search_index(limit=1):
            break
    else:
        pytest.fail("the search index was never built")
    assert library.listing.search_ready() is True
    assert library.listing.page(ModelQuery(q="castle"))[0] == 2
    assert library.listing.page(ModelQuery(q="FOREST"))[1][0]["sha256"] == SHA_B
    assert library.listing.page(ModelQuery(q=SHA_A[:10]))[1][0]["sha256"] == SHA_A
    assert library.listing.tidy_search_index(max_segments=0) is True  # compacted
    assert library.listing.page(ModelQuery(q="castle"))[0] == 2
