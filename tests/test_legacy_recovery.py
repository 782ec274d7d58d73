"""Stage 1: images of rows whose extra_json was lost are recovered by their file names.

The legacy app named every upload ``model_<legacy id>_<ms>_<safe name>`` and never reused
an id. A row whose extra_json is not a JSON object gets those files, newest first; a row
with a valid extra_json gets only what it lists (its other uploads are images the user
replaced). Files no row claims are counted, never imported. All real: a v2 SQLite file,
image files written by Pillow, a v3 library in a temp dir, the CLI as a subprocess.
"""

from __future__ import annotations

import io
import json
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from hikaze_mm.config import Config
from hikaze_mm.legacy.images import list_legacy_images
from hikaze_mm.services import Services
from tests.helpers import run_cli
from tests.legacy_fixtures import (
    LegacyModel,
    build_legacy_db,
    import_into,
    make_image,
    media_url,
    upload_name,
)
from tests.test_legacy_import import dump_v3, files_of
from tests.test_legacy_safety import assert_consistent, run_import_process, visible_images

SHA_BROKEN = "1" * 64  # id 1: extra_json is not valid JSON
SHA_VALID = "3" * 64  # id 3: valid extra_json; a replaced upload lies beside the listed one
SHA_LIST = "5" * 64  # id 5: extra_json is a JSON list; meta_json names one upload
SHA_NULL_TEXT = "6" * 64  # id 6: extra_json is the JSON text "null"; its upload is truncated


@dataclass
class Lost:
    db: Path
    images: Path
    names: dict[str, str]  # label -> file name in the legacy images folder


def build_lost_lists(root: Path) -> Lost:
    imgs = root / "media"
    names = {
        # id 1 (active, broken JSON): three uploads, written in another order than by time.
        "1_first": upload_name(1, 1_000, "first.png"),
        "1_third": upload_name(1, 3_000, "third shot.jpg"),
        "1_second": upload_name(1, 2_000, "second.png"),
        # id 2 (pending, NULL): three uploads of three formats.
        "2_old": upload_name(2, 500, "a.png"),
        "2_new": upload_name(2, 700, "b.jpg"),
        "2_mid": upload_name(2, 600, "c.webp"),
        # id 3 (active, valid JSON): the listed upload and the one it replaced.
        "3_new": upload_name(3, 2_000, "new.png"),
        "3_replaced": upload_name(3, 1_000, "old.png"),
        # id 4 (pending, valid empty object): a stray upload of its own.
        "4_stray": upload_name(4, 100, "x.png"),
        # id 5 (active, JSON list): one upload named by meta_json, one only by its name.
        "5_listed": upload_name(5, 100, "listed.png"),
        "5_newer": upload_name(5, 900, "newer.png"),
        # id 6 (active, "null"): a truncated upload (reported, not imported).
        "6_bad": upload_name(6, 10, "bad.png"),
        # Nobody's: a plain file, and the upload of a model deleted in legacy (no row 99).
        "orphan": "orphan.png",
        "deleted": upload_name(99, 1, "gone.png"),
    }
    sizes = {"1_first": (40, 30), "1_second": (50, 30), "1_third": (60, 30)}
    sizes |= {"3_new": (70, 30), "3_replaced": (80, 30), "5_listed": (33, 20)}
    sizes |= {"5_newer": (44, 20)}
    for label, name in names.items():
        kind = {".jpg": "rgb_jpeg", ".webp": "webp"}.get(Path(name).suffix, "rgb_png")
        if label == "6_bad":
            kind = "truncated"
        make_image(imgs / name, kind, sizes.get(label, (20 + len(label), 20)))
    (imgs / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: not an image, not counted
    (imgs / upload_name(1, 9_999, "folder.png")).mkdir()  # not a file: ignored
    models = [
        LegacyModel(1, "/m/one.safetensors", "lora", SHA_BROKEN, extra_json="{broken"),
        LegacyModel(2, "/m/two.safetensors", "lora", "", extra_json=None),
        LegacyModel(
            3,
            "/m/three.safetensors",
            "lora",
            SHA_VALID,
            extra_json={"images": [media_url(names["3_new"])], "description": "valid"},
        ),
        LegacyModel(4, "/m/four.safetensors", "lora", "", extra_json={}),
        LegacyModel(
            5,
            "/m/five.safetensors",
            "lora",
            SHA_LIST,
            extra_json=[1, 2],
            meta_json={"images": [media_url(names["5_listed"])]},
        ),
        LegacyModel(6, "/m/six.safetensors", "lora", SHA_NULL_TEXT, extra_json="null"),
    ]
    db = build_legacy_db(root / "legacy" / "hikaze_mm.sqlite3", models=models).path
    return Lost(db, imgs, names)


EXPECTED = {
    "active_models": 4,
    "pending_models": 2,
    "images_encoded": 6,  # 1: three, 3: one, 5: two
    "images_copied": 3,  # 2: three
    "images_recovered_by_name": 7,  # 1: three, 2: three, 5: one (the other is named)
    "image_errors": 1,  # 6's truncated upload
    "images_unreferenced": 4,  # 3's replaced, 4's stray, orphan.png, the deleted model's
}


def high_size(services: Services, sha: str, seq: int) -> tuple[int, int]:
    img = Image.open(io.BytesIO(services.images.tier_path(sha, seq, "high").read_bytes()))
    return img.size


def run_import(services: Services, lost: Lost, workers: int = 2) -> dict:
    return import_into(services, lost.db, lost.images, workers=workers).to_dict()


def test_lost_lists_are_recovered_newest_first(services: Services, tmp_path: Path) -> None:
    lost = build_lost_lists(tmp_path / "src")
    report = run_import(services, lost)
    for key, value in EXPECTED.items():
        assert report[key] == value, (key, report)
    # Broken JSON, active: every upload of id 1 as WebP tiers, newest (largest ms) at seq 0.
    assert services.images.list_seqs(SHA_BROKEN) == [0, 1, 2]
    assert [high_size(services, SHA_BROKEN, s) for s in (0, 1, 2)] == [(60, 30), (50, 30), (40, 30)]
    # NULL, pending: byte-for-byte copies as <id>_<n>.<ext>, newest first.
    copies = services.images.pending_images(2)
    assert [p.name for p in copies] == ["2_0.jpg", "2_1.webp", "2_2.png"]
    for copy, label in zip(copies, ("2_new", "2_mid", "2_old"), strict=True):
        assert copy.read_bytes() == (lost.images / lost.names[label]).read_bytes()
    # meta_json's reference first, then the upload found only by its name.
    assert [high_size(services, SHA_LIST, s) for s in (0, 1)] == [(33, 20), (44, 20)]
    assert services.images.list_seqs(SHA_LIST) == [0, 1]
    # The truncated upload is reported under its real path; the model is imported anyway.
    (error,) = [e for e in report["errors"] if e["kind"] == "image"]
    assert error["legacy_id"] == 6 and error["path"] == str(lost.images / lost.names["6_bad"])
    assert services.images.list_seqs(SHA_NULL_TEXT) == []
    assert services.db.models.get(SHA_NULL_TEXT) is not None
    # The broken extra_json is still kept as text in meta.
    assert services.db.models.get(SHA_BROKEN)["meta"] == {"legacy_extra_json": "{broken"}


def test_a_valid_extra_json_never_picks_up_other_uploads(services: Services, tmp_path: Path):
    """The legacy app kept replaced uploads on disk: they must not come back."""
    lost = build_lost_lists(tmp_path / "src")
    run_import(services, lost)
    assert services.images.list_seqs(SHA_VALID) == [0]
    assert high_size(services, SHA_VALID, 0) == (70, 30)  # the listed one, not (80, 30)
    assert services.db.models.get(SHA_VALID)["meta"] == {"description": "valid"}
    assert services.db.pending.get(4) is not None
    assert services.images.pending_images(4) == []  # "{}" is valid: nothing by name


def test_second_run_imports_nothing_twice(services: Services, tmp_path: Path) -> None:
    lost = build_lost_lists(tmp_path / "src")
    run_import(services, lost)
    rows, files = dump_v3(services.db), files_of(services.config.images_dir)
    again = run_import(services, lost)
    assert again["already_imported"] == 6
    assert again["images_recovered_by_name"] == again["images_encoded"] == 0
    assert again["images_copied"] == again["image_errors"] == 0
    assert again["images_unreferenced"] == EXPECTED["images_unreferenced"]  # the folder's
    assert dump_v3(services.db) == rows
    assert files_of(services.config.images_dir) == files


def test_kill_in_the_middle_then_resume(tmp_path: Path) -> None:
    """Recovered images follow the same ledger reservations: a killed run, run again,
    ends exactly as an uninterrupted one (same seqs, no twin files)."""
    lost = build_lost_lists(tmp_path / "src")
    clean = Services.open(Config.load(data_dir=tmp_path / "clean", env={}))
    try:
        run_import(clean, lost)
        rows, files = dump_v3(clean.db), files_of(clean.config.images_dir)
    finally:
        clean.close()
    data = tmp_path / "data"
    proc = run_import_process(data, lost.db, lost.images, kill_at=3)  # images written, no commit
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert_consistent(data / "hikaze_mm.db")
    services = Services.open(Config.load(data_dir=data, env={}))
    try:
        report = run_import(services, lost)
        assert report["already_imported"] == 0  # the kill came before the first commit
        assert dump_v3(services.db) == rows
        assert visible_images(services.config.images_dir) == files
        assert files_of(services.config.images_dir) == files
    finally:
        services.close()


def test_the_cli_reports_the_new_counts(tmp_path: Path) -> None:
    lost = build_lost_lists(tmp_path / "src")
    args = ["migrate-legacy", str(lost.db), "--images", str(lost.images)]
    args += ["--data-dir", str(tmp_path / "data")]
    first = run_cli(*args, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    for key, value in EXPECTED.items():
        assert report[key] == value, key
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "legacy images: 0 recovered by file name, 4 unreferenced" in second.stdout


# ------------------------------------------------------------------------- the listing


@pytest.mark.parametrize(
    "name, owner",
    [
        ("model_12_1700000000000_a.png", 12),
        ("model_12_1700000000000_12_34.png", 12),  # digits and _ in the safe name
        ("model_12_1700000000000_", 12),  # an empty safe name (X-Filename "dir/")
        ("model_12_a.png", None),  # no <ms>
        ("model__1_a.png", None),
        ("Model_12_1_a.png", None),
        ("xmodel_12_1_a.png", None),
    ],
)
def test_listing_recognizes_legacy_upload_names(
    tmp_path: Path, name: str, owner: int | None
) -> None:
    (tmp_path / name).write_bytes(b"x")
    listing = list_legacy_images(tmp_path)
    assert listing.error is None and len(listing.unclaimed) == 1
    assert set(listing.uploads) == ({owner} if owner is not None else set())
    if owner is not None:
        assert listing.take_uploads(owner) == [name]
        assert listing.unclaimed == set() and listing.take_uploads(owner) == []


def test_listing_of_a_missing_folder_is_an_error_not_a_crash(tmp_path: Path) -> None:
    listing = list_legacy_images(tmp_path / "nope")
    assert listing.error and not listing.unclaimed and not listing.uploads
