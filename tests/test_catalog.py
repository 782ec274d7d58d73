"""``hikaze-mm catalog push`` and ``pull``: a library onto a PostgreSQL server and back.

A round trip (push a SQLite library, pull it into a new file, compare every table) keeps
every row; the catalog pushed to works as a library; a catalog that holds a library
already is refused, as is a pull over an existing library.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import ModelQuery, open_library
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.transfer import TABLES
from hikaze_mm.errors import ConflictError, ValidationError
from hikaze_mm.library import catalog
from hikaze_mm.services import Services
from tests.helpers import run_cli
from tests.library_helpers import seed_model


def fill(svc: Services) -> None:
    """One of everything a library holds."""
    db = svc.db
    a = seed_model(svc, "Alpha v2", ("Style", "nsfw"), meta={"trigger_words": ["a", "b"]})
    b = seed_model(svc, "beta", ("style",), base="SDXL", missing=True)
    db.tags.insert("kept id", None, 5, id=40)
    db.models.mark_used(a)
    db.models.add_files([(a, "/copies/alpha.safetensors", 1000)])
    pid = db.pending.add({"path": "/p/x.safetensors", "source": "scan", "id": 77}, ["queued"])
    db.pending.update(pid, status="error", error="boom")
    db.hash_cache.store("/m/a.safetensors", 1000, 123, 9, a, "ABCDEF012345")
    db.sidecars.record([("/m/a.json", 10, 20, a)])
    db.sidecars.add_pixels(b, "digest", 2)
    db.state.set("promotion_journal", {"entries": {"1": {"step": "x"}}})
    db.legacy_ledger.record_model("/old/a", 3, sha256=a, pending_id=None)
    db.legacy_ledger.record_tag("Style", 1)
    db.legacy_ledger.reserve(a, "src", 1)
    gid = db.generations.add(
        {"file": "out/1.png", "seed": 2**64 - 1, "cfg": 6.5, "params": {"k": 1}},
        [{"sha256": b, "role": "lora", "weight": 0.5}, {"sha256": a, "role": "model"}],
    )
    assert gid == 1
    db.downloads.add("civitai:1", request={"type": "loras"}, meta={"x": [1]})


def table_rows(library: Library) -> dict[str, list[tuple]]:
    """Every table's rows (meta as parsed JSON: a server keeps its meaning, not its text)."""
    found = {}
    for table, columns, order in TABLES:
        rows = library.tuples(f"SELECT {columns} FROM {table} ORDER BY {order}")  # type: ignore[attr-defined]
        names = [c.strip() for c in columns.split(",")]
        meta = names.index("meta_json") if "meta_json" in names else None
        found[table] = [
            tuple(json.loads(v) if i == meta and v is not None else v for i, v in enumerate(row))
            for row in rows
        ]
    return found


def test_a_library_pushed_and_pulled_back_keeps_every_row(
    config: Config, tmp_path: Path, pg_url: str
) -> None:
    svc = Services.open(config)
    try:
        fill(svc)
    finally:
        svc.close()
    pushed = catalog.push(config, pg_url)
    assert pushed["rows"]["models"] == 2 and pushed["rows"]["generation_resources"] == 2
    back = Config.load(data_dir=tmp_path / "back", env={})
    pulled = catalog.pull(back, pg_url)
    assert pulled["rows"] == pushed["rows"]
    original, server, copy = (
        open_library(config, read_only=True),
        open_library(replace(config, database_url=pg_url), read_only=True),
        open_library(back, read_only=True),
    )
    try:
        expected = table_rows(original)
        expected["legacy_import_tags"] = [("style", 1)]  # kept by its folded name
        assert table_rows(server) == expected
        assert table_rows(copy) == expected
        for library in (server, copy):  # each a working library, its search included
            total, rows = library.listing.page(ModelQuery(q="alpha", include_missing=True))
            assert (total, rows[0]["name"]) == (1, "Alpha v2")
    finally:
        for library in (original, server, copy):
            library.close()


def test_the_catalog_takes_new_rows_after_the_copied_ids(
    config: Config, tmp_path: Path, pg_url: str
) -> None:
    svc = Services.open(config)
    try:
        fill(svc)
    finally:
        svc.close()
    catalog.push(config, pg_url)
    server = open_library(replace(config, database_url=pg_url))
    try:
        assert server.tags.create("new")["id"] == 42  # after "queued", 41
        assert server.pending.add({"path": "/p/new.safetensors"}) == 78
        assert server.downloads.add("hf:a/b") == 2
    finally:
        server.close()


def test_a_catalog_that_holds_a_library_is_refused_and_a_pull_never_overwrites(
    config: Config, tmp_path: Path, pg_url: str
) -> None:
    svc = Services.open(config)
    try:
        fill(svc)
    finally:
        svc.close()
    where = ["--data-dir", str(config.data_dir)]
    first = run_cli("catalog", "push", pg_url, *where, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["rows"]["tags"] == 4
    again = run_cli("catalog", "push", pg_url, *where)
    assert again.returncode == 1 and "not empty" in again.stderr and again.stdout == ""
    with pytest.raises(ConflictError, match=r"a library exists at .* already"):
        catalog.pull(config, pg_url)
    with pytest.raises(ValidationError, match="postgresql:// URL"):
        catalog.push(config, "sqlite:///elsewhere.db")
