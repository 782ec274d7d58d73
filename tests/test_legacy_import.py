"""Stage 1: importing a legacy v2 database (built here with the exact v2 schema) for real."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hikaze_mm.database import DatabaseManager
from hikaze_mm.images import TIERS
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.legacy_fixtures import (
    LegacyModel,
    LegacyTag,
    build_legacy_db,
    build_sample_legacy,
    import_into,
    make_image,
    media_url,
)

config = on_each_backend()

SHA_A = "a" * 64
SHA_B = "B" * 64  # upper case in legacy: stored lower case


def run_import(services: Services, db_path: Path, images_dir: Path | None, workers: int = 1):
    return import_into(services, db_path, images_dir, workers=workers)


def dump_v3(db: DatabaseManager) -> dict[str, list[tuple]]:
    """Every row of the library tables (volatile timestamps left out), sorted."""
    queries = {
        "models": "SELECT * FROM models",
        "tags": "SELECT * FROM tags",
        "model_tags": "SELECT * FROM model_tags",
        "pending_import": "SELECT id, path, name, type, base, size_bytes, created_at, meta_json, "
        "sha256, status, error, source FROM pending_import",
        "pending_model_tags": "SELECT * FROM pending_model_tags",
        "legacy_import_models": "SELECT path, legacy_id, sha256, pending_id "
        "FROM legacy_import_models",
        "legacy_import_images": "SELECT * FROM legacy_import_images",
        "legacy_import_tags": "SELECT * FROM legacy_import_tags",
    }
    return {name: sorted(tuple(r) for r in db.conn.execute(sql)) for name, sql in queries.items()}


def files_of(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def tier_image(services: Services, sha: str, seq: int, quality: str = "high") -> Image.Image:
    img = Image.open(io.BytesIO(services.images.tier_path(sha, seq, quality).read_bytes()))
    img.load()
    return img


# ------------------------------------------------------------------------- the sample


def test_sample_import_rows_tags_meta_and_images(services: Services, tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src")
    report = run_import(services, sample.db.path, sample.images_dir, workers=2).to_dict()
    for key, value in sample.expected.items():
        assert report[key] == value, (key, report)
    assert report["already_imported"] == 0
    json.dumps(report)  # JSON-able
    assert {e["legacy_id"] for e in report["errors"] if e["kind"] == "image"} == {2, 4}
    reasons = {Path(e["path"]).name: e["reason"] for e in report["errors"] if e["kind"] == "image"}
    assert "truncated" in reasons["two_bad.png"]
    assert "not found" in reasons["gone.png"]
    assert "empty" in reasons["four_empty.png"]

    db = services.db
    sha1, sha2 = sample.shas[1], sample.shas[2]
    # Tags keep id, name, color, created_at.
    tags = {t["id"]: t for t in db.tags.list()}
    assert tags[1]["name"] == "checkpoint" and tags[1]["color"] == "#ff0000"
    assert tags[3]["name"] == "favourite" and tags[3]["created_at"] == 1_600_000_000_000
    assert tags[3]["color"] is None
    # Duplicates (ids 1 and 3: same file, hash in two cases) are one model, tags unioned.
    one = db.models.get(sha1)
    assert one is not None
    assert one["path"].endswith("one.safetensors") and one["name"] == "one"
    assert one["type"] == "checkpoints" and one["size_bytes"] == 4096
    assert one["created_at"] == 1_700_000_000_000
    assert {t["name"] for t in one["tags"]} == {"checkpoint", "favourite", "lora"}
    assert one["meta"] == {
        "description": "first",
        "prompts": {"positive": "a cat", "negative": "blur"},
    }
    two = db.models.get(sha2)
    assert two is not None and two["type"] == "loras"
    assert two["meta"] == {
        "community_links": ["https://example.org/two"],
        "params": {"strength": 0.8},
        "custom": 1,
        "sources": {"base": "probe"},  # its header names its base (issue 12)
    }
    assert two["base"] == "SDXL" and one["base"] is None  # one's file has no header
    assert [t["name"] for t in two["tags"]] == ["lora"]
    assert db.conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 2
    # Unhashed (and not-64-hex) rows are pending under their legacy id, with their tags.
    pending = {p["id"]: p for p in db.pending.list()}
    assert sorted(pending) == [4, 5, 6]
    assert pending[4]["meta"] == {"description": "pending one", "sources": {"base": "probe"}}
    assert pending[4]["base"] == "SD1.x"
    assert pending[4]["type"] == "loras" and pending[4]["source"] == "legacy"
    assert [t["name"] for t in pending[4]["tags"]] == ["lora"]
    assert [t["name"] for t in pending[5]["tags"]] == ["embedding"]  # (5, 99) dangles
    assert pending[5]["meta"] == {"legacy_extra_json": "{not json"}
    assert pending[6]["meta"] == {"legacy_extra_json": ["not", "an", "object"]}
    assert pending[6]["type"] == "vae"
    # Images: every one of a model's images, in order, seq 0, 1, 2 (the twin's image last).
    assert services.images.list_seqs(sha1) == [0, 1, 2]
    assert services.images.list_seqs(sha2) == [0]
    assert tier_image(services, sha1, 0).size == (120, 80)
    upright = tier_image(services, sha1, 1)  # one_b.jpg: EXIF-rotated 60x30
    assert upright.size == (30, 60)
    assert upright.convert("RGB").getpixel((15, 10))[2] > 200  # blue on top
    assert upright.convert("RGB").getpixel((15, 50))[0] > 200  # red at the bottom
    assert tier_image(services, sha2, 0).mode == "RGBA"  # two.png kept its transparency
    # Pending: the valid original, byte for byte, named <id>_<n>.<ext>; bad ones not copied.
    copies = services.images.pending_images(4)
    assert [p.name for p in copies] == ["4_0.jpg"]
    assert copies[0].read_bytes() == (sample.images_dir / "four.jpg").read_bytes()
    assert services.images.pending_images(5) == []


def test_second_run_changes_nothing(services: Services, tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src")
    run_import(services, sample.db.path, sample.images_dir)
    rows, files = dump_v3(services.db), files_of(services.config.images_dir)
    mtimes = {p: p.stat().st_mtime_ns for p in services.config.images_dir.rglob("*")}
    again = run_import(services, sample.db.path, sample.images_dir).to_dict()
    assert again["already_imported"] == 6
    assert again["active_models"] == again["pending_models"] == again["images_encoded"] == 0
    assert again["images_copied"] == 0 and again["image_errors"] == 0
    assert dump_v3(services.db) == rows
    assert files_of(services.config.images_dir) == files
    assert {p: p.stat().st_mtime_ns for p in services.config.images_dir.rglob("*")} == mtimes
    assert not any("_1_" in n and n.startswith(sample.shas[2]) for n in files)


def test_promoted_or_deleted_models_are_not_resurrected(services: Services, tmp_path: Path):
    """What Stage 2 promoted (or the user deleted) stays gone when Stage 1 runs again."""
    sample = build_sample_legacy(tmp_path / "src")
    run_import(services, sample.db.path, sample.images_dir)
    services.db.pending.remove(4)
    for path in services.images.pending_images(4):
        path.unlink()
    services.db.models.delete(sample.shas[2])
    services.images.delete_all(sample.shas[2])
    report = run_import(services, sample.db.path, sample.images_dir).to_dict()
    assert report["already_imported"] == 6
    assert services.db.pending.get(4) is None and services.images.pending_images(4) == []
    assert services.db.models.get(sample.shas[2]) is None
    assert services.images.list_seqs(sample.shas[2]) == []


def test_legacy_file_is_never_written(services: Services, tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src", wal=True)
    legacy_dir = sample.db.path.parent

    def state() -> dict[str, tuple[str, int]]:
        return {
            p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in legacy_dir.iterdir()
        }

    before = state()
    assert set(before) == {"hikaze_mm.sqlite3", "hikaze_mm.sqlite3-wal"}
    images_before = files_of(sample.images_dir)
    report = run_import(services, sample.db.path, sample.images_dir).to_dict()
    # The rows that exist only in the -wal were read (an importer ignoring it finds none).
    assert report["active_models"] == 2 and report["pending_models"] == 3
    assert state() == before  # same files (no -shm appeared), same bytes, same mtimes
    assert files_of(sample.images_dir) == images_before


# ------------------------------------------------------------------------- v3 data kept


def test_existing_v3_data_is_kept_and_reused(services: Services, tmp_path: Path) -> None:
    db = services.db
    mine = db.tags.create("mine", "#123456")  # takes id 1
    existing_lora = db.tags.create("LoRA")  # id 2: legacy "lora" maps here (any case)
    img = make_image(tmp_path / "own.png", "rgb_png", (50, 50))
    db.models.upsert(
        {"sha256": SHA_A, "path": "/v3/a.safetensors", "name": "v3 name", "type": "loras"},
        tags=[mine["id"]],
    )[0]
    services.images.add_image(SHA_A, img)
    own_seq0 = services.images.tier_path(SHA_A, 0, "high").read_bytes()
    make_image(tmp_path / "imgs" / "a.png", "rgb_jpeg", (40, 40))
    legacy = build_legacy_db(
        tmp_path / "legacy.sqlite3",
        tags=[LegacyTag(1, "checkpoint", "#F00"), LegacyTag(2, "lora", "bogus")],
        models=[
            LegacyModel(
                10,
                "/old/a.safetensors",
                "lora",
                SHA_A.upper(),
                "legacy name",
                size_bytes=99,
                extra_json={"images": [media_url("a.png")], "description": "from legacy"},
            )
        ],
        links=[(10, 1), (10, 2)],
    )
    report = run_import(services, legacy.path, tmp_path / "imgs").to_dict()
    assert report["tags_created"] == 1 and report["tags_reused"] == 1
    assert report["active_models"] == 1 and report["merged_into_existing"] == 1
    tags = {t["name"]: t for t in db.tags.list()}
    assert tags["mine"]["id"] == 1 and tags["mine"]["color"] == "#123456"  # not renumbered
    assert tags["LoRA"]["id"] == existing_lora["id"]
    assert tags["checkpoint"]["id"] not in (1, 2) and tags["checkpoint"]["color"] == "#ff0000"
    model = db.models.get(SHA_A)
    assert model is not None
    assert model["name"] == "v3 name" and model["path"] == "/v3/a.safetensors"  # kept
    assert model["size_bytes"] == 99  # an empty column is filled
    assert model["meta"] == {"description": "from legacy"}
    assert {t["name"] for t in model["tags"]} == {"mine", "LoRA", "checkpoint"}
    # The model's own image keeps seq 0; the legacy one takes the next free seq.
    assert services.images.list_seqs(SHA_A) == [0, 1]
    assert services.images.tier_path(SHA_A, 0, "high").read_bytes() == own_seq0


def test_pending_id_taken_or_path_already_pending(services: Services, tmp_path: Path) -> None:
    db = services.db
    db.pending.add({"id": 4, "path": "/scan/other.safetensors", "source": "scan"})
    db.pending.add({"path": "/old/five.pt", "source": "scan", "meta": {"note": "scan"}}, tags=["x"])
    make_image(tmp_path / "imgs" / "four.png", "rgb_png")
    legacy = build_legacy_db(
        tmp_path / "legacy.sqlite3",
        tags=[LegacyTag(1, "emb")],
        models=[
            LegacyModel(4, "/old/four.pt", "lora", "", extra_json={"images": ["/media/four.png"]}),
            LegacyModel(5, "/old/five.pt", "embedding", "", extra_json={"description": "d"}),
        ],
        links=[(5, 1)],
    )
    report = run_import(services, legacy.path, tmp_path / "imgs").to_dict()
    assert report["pending_models"] == 2 and report["images_copied"] == 1
    assert db.pending.get(4)["path"] == "/scan/other.safetensors"  # untouched
    four = db.pending.get_by_path("/old/four.pt")
    assert four is not None and four["id"] > 5
    assert [p.name for p in services.images.pending_images(four["id"])] == [f"{four['id']}_0.png"]
    assert services.images.pending_images(4) == []
    five = db.pending.get_by_path("/old/five.pt")
    assert five["meta"] == {"note": "scan", "description": "d"}
    assert {t["name"] for t in five["tags"]} == {"x", "emb"}
    assert db.pending.count() == 3


# ------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "extra, meta, expected, problems",
    [
        (None, None, {}, 0),
        ("", None, {}, 0),
        ("null", None, {}, 0),
        ("{broken", None, {"legacy_extra_json": "{broken"}, 1),
        ("42", None, {"legacy_extra_json": 42}, 1),
        ('"text"', None, {"legacy_extra_json": "text"}, 1),
        (
            {
                "images": ["/media/x.png"],
                "image": "/media/y.png",
                "preview": "/media/z.png",
                "prompts": {"positive": "p"},
                "unknown": [1, 2],
            },
            None,
            {"prompts": {"positive": "p"}, "unknown": [1, 2]},
            0,
        ),
        (
            {"description": "extra wins", "tags": ["a"]},
            {"description": "meta loses", "tags": ["b"], "base": "SDXL", "preview": "x.png"},
            {"description": "extra wins", "tags": ["a", "b"], "base": "SDXL"},
            0,
        ),
        ({"a": 1}, "[1, 2]", {"a": 1, "legacy_meta_json": [1, 2]}, 1),
    ],
)
def test_meta_from_extra_and_meta_json(
    services: Services, tmp_path: Path, extra: Any, meta: Any, expected: dict, problems: int
) -> None:
    legacy = build_legacy_db(
        tmp_path / "l.sqlite3",
        models=[
            LegacyModel(
                1, "/m/x.safetensors", "checkpoint", SHA_A, extra_json=extra, meta_json=meta
            )
        ],
    )
    report = run_import(services, legacy.path, None).to_dict()
    assert report["meta_errors"] == problems
    assert services.db.models.get(SHA_A)["meta"] == expected


def test_images_named_in_meta_json_and_every_key_are_imported(
    services: Services, tmp_path: Path
) -> None:
    imgs = tmp_path / "imgs"
    for i, name in enumerate(("a.png", "b c.png", "d.png")):
        make_image(imgs / name, "rgb_png", (40 + i, 30))
    make_image(imgs / "a_copy.png", "rgb_png", (40, 30))  # same bytes as a.png
    legacy = build_legacy_db(
        tmp_path / "l.sqlite3",
        models=[
            LegacyModel(
                1,
                "/m/x.safetensors",
                extra_json={
                    "images": ["/media/a.png", "http://127.0.0.1:8188/media/b%20c.png?v=1"],
                    "preview": "/media/a_copy.png",
                },
                meta_json={"image": "/media/d.png"},
                hash_hex=SHA_A,
            ),
            LegacyModel(
                2,
                "/m/y.safetensors",
                hash_hex=SHA_B,
                extra_json={"images": ["/media/../../etc/passwd", "/media/", 7]},
            ),
        ],
    )
    report = run_import(services, legacy.path, imgs).to_dict()
    assert report["images_encoded"] == 3
    assert report["images_skipped"] == 1  # the same picture under another name: once
    assert services.images.list_seqs(SHA_A) == [0, 1, 2]
    # Traversal is cut to the last segment (looked up inside the folder only).
    errors = [e for e in report["errors"] if e["legacy_id"] == 2]
    assert len(errors) == 3 and report["image_errors"] == 3
    assert any(e["path"] == str(imgs / "passwd") and "not found" in e["reason"] for e in errors)


def test_no_images_folder_is_a_warning(services: Services, tmp_path: Path) -> None:
    legacy = build_legacy_db(
        tmp_path / "l.sqlite3",
        models=[LegacyModel(1, "/m/x.st", hash_hex=SHA_A, extra_json={"images": ["/media/a"]})],
    )
    report = run_import(services, legacy.path, None).to_dict()
    assert report["active_models"] == 1 and report["image_errors"] == 0
    assert report["warnings"] and "1 image reference" in report["warnings"][0]


def test_types_names_and_odd_values(services: Services, tmp_path: Path) -> None:
    shas = [f"{i:064x}" for i in range(1, 9)]
    types = ["checkpoint", "lora", "embedding", "vae", "upscale", "ultralytics", "other", "MyDir"]
    legacy = build_legacy_db(
        tmp_path / "l.sqlite3",
        tags=[LegacyTag(1, "  spaced   name "), LegacyTag(2, "   "), LegacyTag(3, "Spaced Name")],
        models=[
            LegacyModel(
                i + 1,
                f"C:\\models\\{t}\\file{i}.safetensors",
                t,
                shas[i],
                name=None if i % 2 else "",
                size_bytes=-5 if i == 0 else 10,
            )
            for i, t in enumerate(types)
        ],
        links=[(1, 1), (1, 2), (1, 3)],
    )
    report = run_import(services, legacy.path, None).to_dict()
    got = {m: services.db.models.get(m) for m in shas}
    assert [got[s]["type"] for s in shas] == [
        "checkpoints",
        "loras",
        "embeddings",
        "vae",
        "upscale_models",
        "ultralytics",
        "other",
        "mydir",
    ]
    assert got[shas[0]]["name"] == "file0" and got[shas[0]]["size_bytes"] is None
    # "  spaced   name " and "Spaced Name" are one tag in v3; a blank name is reported.
    assert [t["name"] for t in got[shas[0]]["tags"]] == ["spaced name"]
    assert report["tags"] == 2 and report["tags_created"] == 1
    assert any(e["kind"] == "tag" and e["legacy_id"] == 2 for e in report["errors"])
    assert report["dangling_links"] == 1


def test_tier_limits_on_a_large_image(services: Services, tmp_path: Path) -> None:
    make_image(tmp_path / "imgs" / "big.jpg", "rgb_jpeg", (3000, 2000))
    legacy = build_legacy_db(
        tmp_path / "l.sqlite3",
        models=[
            LegacyModel(1, "/m/x.st", hash_hex=SHA_A, extra_json={"images": ["/media/big.jpg"]})
        ],
    )
    run_import(services, legacy.path, tmp_path / "imgs", workers=2)
    sizes = {q: tier_image(services, SHA_A, 0, q).size for q in TIERS}
    for quality, (w, h) in sizes.items():
        assert w * h <= TIERS[quality].max_pixels
        assert abs(w / h - 1.5) < 0.01
    assert sizes["high"][0] > sizes["medium"][0] > sizes["low"][0]
    assert tier_image(services, SHA_A, 0).info.get("exif") in (None, b"")


def test_a_name_that_is_the_file_name_loses_the_model_extension(
    services: Services, tmp_path: Path
) -> None:
    """One naming rule with scans: the legacy app named a model by its file name, so such
    a name loses the model extension; a name a user gave is kept as it is."""
    models = [
        LegacyModel(1, "/m/loras/Cool_v2.safetensors", name="Cool_v2.safetensors", hash_hex=SHA_A),
        LegacyModel(2, "C:\\m\\loras\\Win.CKPT", name="Win.CKPT", hash_hex=SHA_B),
        LegacyModel(3, "/m/loras/x.safetensors", name="My pick.safetensors"),
        LegacyModel(4, "/m/loras/unnamed.pt"),
        LegacyModel(5, "/m/loras/notes.txt.bin", name="notes.txt"),
    ]
    db_path = tmp_path / "legacy.db"
    build_legacy_db(db_path, models=models)
    run_import(services, db_path, None)
    names = {r[0] for r in services.db.tuples("SELECT name FROM models")}
    names |= {p["name"] for p in services.db.pending.list()}
    assert names == {"Cool_v2", "Win", "My pick.safetensors", "unnamed", "notes.txt"}
