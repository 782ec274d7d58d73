"""``hikaze-mm catalog push|pull``: a SQLite library to a PostgreSQL catalog and back.

Real libraries on both sides: the local one from a real scan of real files (sidecars, a
preview), tags, pending models, the legacy ledger, generations, downloads; the catalog on
the test cluster (tests/pg_cluster.py). The CLI runs in process (``cli.main``).
"""

from __future__ import annotations

import io
import json
import socket
import sqlite3
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from PIL import Image

from hikaze_mm.cli import main
from hikaze_mm.config import Config
from hikaze_mm.database import ModelQuery, open_library
from hikaze_mm.database.catalog_copy import CACHES, TABLES
from hikaze_mm.database.interfaces import Library
from hikaze_mm.services import Services


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def make_files(root: Path, names: list[str]) -> None:
    folder = root / "loras"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.safetensors").write_bytes(f"weights of {name}".encode() * 64)
    (folder / f"{names[0]}.json").write_text(json.dumps({"activation text": "glow, neon"}))
    preview = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 90)).save(preview, "PNG")
    (folder / f"{names[-1]}.preview.png").write_bytes(preview.getvalue())


def build_library(tmp: Path, label: str, names: list[str]) -> Config:
    """A library with something in every table the catalog copies."""
    root = tmp / f"models-{label}"
    make_files(root, names)
    config = Config.load(data_dir=tmp / f"data-{label}", model_roots=[str(root)], env={})
    services = Services.open(config)
    try:
        services.scanner.scan(immediate_hashing=True)
        db = services.db
        shas = db.listing.all_sha256s()
        first = db.models.get_by_path(str(root / "loras" / f"{names[0]}.safetensors"))
        assert first is not None and len(shas) == len(names)
        db.models.add_tags(first["sha256"], [f"Style-{label}", "shared"])
        meta = {**first["meta"], "note": f"from {label}", f"only_{label}": 1}
        db.models.update(first["sha256"], meta=meta)
        db.models.mark_used(first["sha256"])
        pending = db.pending.add(
            {"path": str(root / "later" / f"{label}.safetensors"), "name": "later"},
            ["queued"],
        )
        db.legacy_ledger.record_model(f"/old/{label}.ckpt", 7, pending_id=pending)
        db.legacy_ledger.record_tag("Queued", db.tags.ids_by_name(["queued"])["queued"])
        db.legacy_ledger.reserve(first["sha256"], "f" * 64, 1)
        db.image_seqs.claim(first["sha256"], 3)  # (a studio's images are numbered so)
        db.image_seqs.set_order(first["sha256"], [1, 0])  # (and ordered so)
        db.models.add_files([(first["sha256"], str(root / "copies" / f"{label}.safetensors"), 9)])
        db.generations.add(
            {"file": f"out/{label}.png", "prompt": "a neon city", "seed": 42, "steps": 20},
            [{"sha256": sha, "role": "lora", "name": "x", "weight": 0.7} for sha in shas],
        )
        db.downloads.add(f"civitai:{len(label)}", status="done", file_name="x.safetensors")
        db.state.set(f"note-{label}", {"written": True})
    finally:
        services.close()
    return config


def rows(library: Library) -> dict[str, list[tuple[Any, ...]]]:
    """Every copied table's rows, in a stable order (JSON compared as values)."""
    dump = {}
    for table in TABLES:
        found = library.tuples(
            f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {table.order}"
        )
        dump[table.name] = [
            tuple(
                json.loads(v) if c.endswith("_json") and v else v
                for c, v in zip(table.columns, row, strict=True)
            )
            for row in found
        ]
    return dump


def open_sqlite(config: Config) -> Library:
    return open_library(config)


def open_catalog(config: Config, url: str) -> Library:
    from dataclasses import replace

    return open_library(replace(config, database_url=url))


def test_the_catalog_columns_are_the_schema_at_head(tmp_path: Path) -> None:
    """``TABLES`` names every column of every table but the search index's."""
    library = open_library(Config.load(data_dir=tmp_path, env={}))
    try:
        names = [
            name
            for (name,) in library.tuples(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'model_search%' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        schema = {
            name: tuple(row[1] for row in library.tuples(f"PRAGMA table_info({name})"))
            for name in names
        }
    finally:
        library.close()
    assert {t.name: tuple(sorted(t.columns)) for t in TABLES} == {
        name: tuple(sorted(columns)) for name, columns in schema.items()
    }


def test_push_then_pull_gives_back_the_same_library(tmp_path: Path, pg_url: str) -> None:
    source = build_library(tmp_path, "a", ["alpha", "beta", "gamma"])
    code, out, err = cli("catalog", "push", pg_url, "--data-dir", str(source.data_dir))
    assert (code, err) == (0, "")
    assert "models: 3 added (of 3)" in out and "tags: 3 added (of 3)" in out

    original = open_sqlite(source)
    catalog = open_catalog(source, pg_url)
    try:
        before = rows(original)
        assert [t.name for t in TABLES if not before[t.name]] == [], "build every table"
        pushed = rows(catalog)
        # The machine's own caches (host '') are its host's in the catalog, whose name is
        # the machine's (no HIKAZE_HOST_NAME): each host of a catalog keeps its own.
        for cache in CACHES:
            assert {row[0] for row in pushed[cache]} == {socket.gethostname()}
            pushed[cache] = [("", *row[1:]) for row in pushed[cache]]
        assert pushed == before
    finally:
        catalog.close()
        original.close()

    pulled = Config.load(data_dir=tmp_path / "data-pulled", env={})
    code, out, err = cli("catalog", "pull", pg_url, "--data-dir", str(pulled.data_dir))
    assert (code, err) == (0, "")
    copy = open_sqlite(pulled)
    try:
        assert rows(copy) == before
        # the copy is a working library: its search finds by name, its next ids are free
        total, found = copy.listing.page(ModelQuery(q="gamm"))
        assert total == 1 and Path(found[0]["path"]).name == "gamma.safetensors"
        assert copy.tags.create("brand new")["id"] > max(r[0] for r in before["tags"])
        assert copy.pending.add({"path": "/elsewhere/new.safetensors"}) > max(
            r[0] for r in before["pending_import"]
        )
    finally:
        copy.close()


def test_a_new_catalog_id_follows_the_pushed_ones(tmp_path: Path, pg_url: str) -> None:
    source = build_library(tmp_path, "a", ["alpha", "beta"])
    assert cli("catalog", "push", pg_url, "--data-dir", str(source.data_dir))[0] == 0
    catalog = open_catalog(source, pg_url)
    try:
        taken = {tag["id"] for tag in catalog.tags.list()}
        assert catalog.tags.create("after the push")["id"] not in taken
        generation = catalog.generations.add({"file": "out/new.png"}, [])
        assert generation > 1
        assert catalog.downloads.add("civitai:99") > 1
    finally:
        catalog.close()


def test_a_catalog_that_holds_a_library_is_refused_without_merge(
    tmp_path: Path, pg_url: str
) -> None:
    first = build_library(tmp_path, "a", ["alpha"])
    second = build_library(tmp_path, "b", ["beta"])
    assert cli("catalog", "push", pg_url, "--data-dir", str(first.data_dir))[0] == 0
    catalog = open_catalog(first, pg_url)
    try:
        before = rows(catalog)
    finally:
        catalog.close()
    code, out, err = cli("catalog", "push", pg_url, "--data-dir", str(second.data_dir))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "already holds a library" in err and "--merge" in err
    catalog = open_catalog(first, pg_url)
    try:
        assert rows(catalog) == before
    finally:
        catalog.close()


def test_merge_combines_two_machines_by_the_promotion_rule(tmp_path: Path, pg_url: str) -> None:
    a = build_library(tmp_path, "a", ["shared", "alpha"])
    b = build_library(tmp_path, "b", ["shared", "beta"])  # "shared": the same content
    assert cli("catalog", "push", pg_url, "--data-dir", str(a.data_dir))[0] == 0
    code, out, err = cli("catalog", "push", pg_url, "--merge", "--data-dir", str(b.data_dir))
    assert (code, err) == (0, "")
    assert "models: 1 added, 1 merged (of 2)" in out
    assert "pending_import: 1 added (of 1)" in out

    catalog = open_catalog(a, pg_url)
    try:
        records = map(catalog.models.get, catalog.listing.all_sha256s())
        models = {Path(m["path"]).name: m for m in records}
        assert sorted(models) == ["alpha.safetensors", "beta.safetensors", "shared.safetensors"]
        shared = models["shared.safetensors"]
        assert shared["path"].startswith(str(tmp_path / "models-a"))  # the target's path wins
        assert shared["meta"]["note"] == "from a"  # and its meta's values...
        assert shared["meta"]["only_a"] == shared["meta"]["only_b"] == 1  # ...filled from b
        assert shared["use_count"] == 2  # used once on each machine
        tags = sorted(tag["name"] for tag in shared["tags"])
        assert tags == ["Style-a", "Style-b", "shared"]  # "shared" is one tag, not two
        names = sorted(tag["name"].lower() for tag in catalog.tags.list())
        assert names.count("shared") == 1 and names.count("queued") == 1
        assert len(catalog.tuples("SELECT id FROM generations")) == 2
        resources = catalog.tuples("SELECT generation_id, sha256 FROM generation_resources")
        assert len(resources) == 4
        pending = catalog.tuples("SELECT path FROM pending_import ORDER BY path")
        assert [Path(p).name for (p,) in pending] == ["a.safetensors", "b.safetensors"]
        ledger = dict(catalog.tuples("SELECT path, pending_id FROM legacy_import_models"))
        pending_ids = dict(catalog.tuples("SELECT path, id FROM pending_import"))
        b_pending = next(i for p, i in pending_ids.items() if p.endswith("b.safetensors"))
        assert ledger["/old/b.ckpt"] == b_pending  # the ledger follows the new id
    finally:
        catalog.close()

    # merging the same machine again adds nothing new
    code, out, _ = cli("catalog", "push", pg_url, "--merge", "--data-dir", str(b.data_dir))
    assert code == 0 and "models: 0 added, 2 merged (of 2)" in out
    assert "pending_import: 0 added, 1 skipped (of 1)" in out


def test_bad_urls_and_passwords(tmp_path: Path, pg_url: str) -> None:
    source = build_library(tmp_path, "a", ["alpha"])
    code, out, err = cli("catalog", "push", "sqlite:///x.db", "--data-dir", str(source.data_dir))
    assert code == 2 and out == "" and "postgresql://" in err and err.count("\n") == 1

    with_password = pg_url.replace("postgresql://", "postgresql://postgres:s3cret-pw@", 1)
    code, out, err = cli("catalog", "push", with_password, "--data-dir", str(source.data_dir))
    assert code == 0, err
    assert "s3cret-pw" not in out + err and "***" in out

    unreachable = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere"
    code, out, err = cli("catalog", "pull", unreachable, "--data-dir", str(tmp_path / "d2"))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "s3cret-pw" not in err


def test_pull_into_a_local_library_that_is_not_empty_needs_merge(
    tmp_path: Path, pg_url: str
) -> None:
    a = build_library(tmp_path, "a", ["alpha"])
    b = build_library(tmp_path, "b", ["beta"])
    assert cli("catalog", "push", pg_url, "--data-dir", str(a.data_dir))[0] == 0
    code, _, err = cli("catalog", "pull", pg_url, "--data-dir", str(b.data_dir))
    assert code == 1 and "already holds a library" in err
    code, out, err = cli("catalog", "pull", pg_url, "--merge", "--data-dir", str(b.data_dir))
    assert (code, err) == (0, "") and "models: 1 added (of 1)" in out
    with sqlite3.connect(b.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 2
