"""Stage 1 images: every awkward kind, for active and pending models; references; workers."""

from __future__ import annotations

import hashlib
import io
import operator
import os
from concurrent.futures import BrokenExecutor
from pathlib import Path

import pytest
from PIL import Image

from hikaze_mm.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, TIERS, encode_tiers
from hikaze_mm.legacy.images import encode_legacy_image, image_refs, media_file_name
from hikaze_mm.legacy.workers import ProcessWorkers
from hikaze_mm.services import Services
from tests.legacy_fixtures import (
    BAD_IMAGE_KINDS,
    BAD_KIND_REASONS,
    GOOD_IMAGE_KINDS,
    IMAGE_KINDS,
    LegacyModel,
    build_legacy_db,
    import_into,
    make_image,
    media_url,
)


def sha_for(kind: str) -> str:
    return f"{IMAGE_KINDS.index(kind) + 1:064x}"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory):
    """One active and one pending legacy model per image kind, imported once."""
    from hikaze_mm.config import Config

    root = tmp_path_factory.mktemp("kinds")
    images = root / "imgs"
    models = []
    for i, kind in enumerate(IMAGE_KINDS):
        ext = {
            "rgb_jpeg": "jpg",
            "cmyk": "jpg",
            "exif_rotated": "jpg",
            "webp": "webp",
            "gif": "gif",
        }.get(kind, "png")
        make_image(images / f"{kind}.{ext}", kind)
        ref = [media_url(f"{kind}.{ext}")]
        models.append(
            LegacyModel(i + 1, f"/m/{kind}.st", "lora", sha_for(kind), extra_json={"images": ref})
        )
        models.append(
            LegacyModel(100 + i, f"/m/{kind}_pending.st", "lora", "", extra_json={"images": ref})
        )
    legacy = build_legacy_db(root / "legacy.sqlite3", models=models)
    services = Services.open(Config.load(data_dir=root / "data", env={}))
    try:
        report = import_into(services, legacy.path, images)
        yield services, report.to_dict(), images
    finally:
        services.close()


def webp(services: Services, kind: str, quality: str = "high") -> Image.Image:
    data = services.images.tier_path(sha_for(kind), 0, quality).read_bytes()
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "WEBP"
    return img


def test_counts(imported) -> None:
    _services, report, _ = imported
    assert report["images_encoded"] == len(GOOD_IMAGE_KINDS)
    assert report["images_copied"] == len(GOOD_IMAGE_KINDS)
    assert report["image_errors"] == 2 * len(BAD_IMAGE_KINDS)
    assert report["active_models"] == report["pending_models"] == len(IMAGE_KINDS)


@pytest.mark.parametrize("kind", GOOD_IMAGE_KINDS)
def test_good_kinds_encode_three_tiers_and_copy_originals(imported, kind: str) -> None:
    services, _report, images = imported
    sha = sha_for(kind)
    assert services.images.list_seqs(sha) == [0]
    for quality in ("high", "medium", "low"):
        img = webp(services, kind, quality)
        assert img.mode in ("RGB", "RGBA")
        assert not img.info.get("exif") and not img.info.get("icc_profile")
    pending_id = 100 + IMAGE_KINDS.index(kind)
    copies = services.images.pending_images(pending_id)
    assert len(copies) == 1 and copies[0].name.startswith(f"{pending_id}_0.")
    source = next(images.glob(f"{kind}.*"))
    assert copies[0].read_bytes() == source.read_bytes()


def test_colors_and_orientation_come_out_right(imported) -> None:
    services, _report, _ = imported
    rgba = webp(services, "rgba")
    assert rgba.mode == "RGBA"
    assert rgba.getpixel((5, 5))[3] < 100 and rgba.getpixel((60, 5))[3] == 255
    clear = webp(services, "palette_transparent")
    assert clear.mode == "RGBA"
    assert clear.getpixel((60, 5))[3] == 0 and clear.getpixel((5, 5))[3] == 255
    red = webp(services, "cmyk").convert("RGB").getpixel((10, 10))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    gray = webp(services, "gray16").convert("L")
    assert gray.getpixel((2, 10)) < 40 and gray.getpixel((61, 10)) > 215  # scaled, not clipped
    upright = webp(services, "exif_rotated").convert("RGB")
    assert upright.size == (30, 60)
    assert upright.getpixel((15, 10))[2] > 200 and upright.getpixel((15, 50))[0] > 200
    assert webp(services, "gif").size == (64, 48)


@pytest.mark.parametrize("kind", BAD_IMAGE_KINDS)
def test_bad_kinds_are_reported_and_never_written(imported, kind: str) -> None:
    services, report, _ = imported
    legacy_ids = {IMAGE_KINDS.index(kind) + 1, 100 + IMAGE_KINDS.index(kind)}
    errors = [e for e in report["errors"] if e["legacy_id"] in legacy_ids]
    assert len(errors) == 2
    assert all(e["kind"] == "image" and BAD_KIND_REASONS[kind] in e["reason"] for e in errors)
    assert services.images.list_seqs(sha_for(kind)) == []
    assert not list(services.config.images_dir.glob(f"{sha_for(kind)}_*"))
    assert services.images.pending_images(100 + IMAGE_KINDS.index(kind)) == []
    # The model itself is imported all the same.
    assert services.db.models.get(sha_for(kind)) is not None


def test_worker_job_hashes_the_original_and_encodes_the_tiers(tmp_path: Path) -> None:
    """The worker job reads a file once: its SHA-256 and the same tiers as encode_tiers."""
    path = tmp_path / "large.jpg"
    Image.radial_gradient("L").resize((4000, 3000)).convert("RGB").save(path, quality=90)
    data = path.read_bytes()
    encoded = encode_legacy_image(str(path), DEFAULT_MAX_PIXELS, DEFAULT_MAX_BYTES)
    assert encoded.source_sha == hashlib.sha256(data).hexdigest()
    assert encoded.tiers == encode_tiers(data)
    sizes = {q: Image.open(io.BytesIO(b)).size for q, b in encoded.tiers.items()}
    assert sizes == {"high": (1632, 1224), "medium": (730, 547), "low": (295, 221)}
    assert all(w * h <= TIERS[q].max_pixels for q, (w, h) in sizes.items())


# ------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    "ref, name",
    [
        ("/media/a.png", "a.png"),
        ("/media/sub%20dir.png", "sub dir.png"),
        ("http://127.0.0.1:8188/media/x.webp?v=3#frag", "x.webp"),
        ("plain.jpg", "plain.jpg"),
        ("/media/../../etc/passwd", "passwd"),
        ("C:\\legacy\\media\\w.png", "w.png"),
    ],
)
def test_media_file_name(ref: str, name: str) -> None:
    assert media_file_name(ref) == name


@pytest.mark.parametrize("ref", ["/media/", "/media/..", "", "/media/a%00b.png"])
def test_media_file_name_rejects(ref: str) -> None:
    with pytest.raises(ValueError):
        media_file_name(ref)


def test_image_refs_order_and_repeats() -> None:
    extra = {"images": ["/media/a.png", "/media/b.png", None, ""], "preview": "/media/a.png"}
    meta = {"image": "/media/c.png", "images": [{"url": "/media/d.png"}, 7]}
    assert image_refs(extra, meta, "not a dict") == [
        "/media/a.png",
        "/media/b.png",
        "/media/d.png",
        "7",
        "/media/c.png",
    ]


def test_missing_folder_entries_and_unreadable(services: Services, tmp_path: Path) -> None:
    imgs = tmp_path / "imgs"
    (imgs / "a_dir.png").mkdir(parents=True)
    os.mkfifo(imgs / "fifo.png")  # must not hang the import
    legacy = build_legacy_db(
        tmp_path / "l.sqlite3",
        models=[
            LegacyModel(
                1,
                "/m/a.st",
                hash_hex="a" * 64,
                extra_json={"images": ["/media/a_dir.png", "/media/fifo.png"]},
            ),
            LegacyModel(2, "/m/b.st", extra_json={"images": ["/media/fifo.png"]}),
        ],
    )
    report = import_into(services, legacy.path, imgs, workers=2).to_dict()
    assert report["image_errors"] == 3
    assert all("regular file" in e["reason"] for e in report["errors"])


# ------------------------------------------------------------------------- worker processes


def test_process_workers_results_errors_and_crashes() -> None:
    pool = ProcessWorkers(2)
    try:
        pids = {pool.submit(os.getpid).result(timeout=30) for _ in range(6)}
        assert os.getpid() not in pids and 1 <= len(pids) <= 2
        assert pool.submit(operator.add, 2, 3).result(timeout=30) == 5
        with pytest.raises(ZeroDivisionError):
            pool.submit(operator.truediv, 1, 0).result(timeout=30)
        # A worker that dies fails only its own job; the next job gets a fresh worker.
        with pytest.raises(BrokenExecutor):
            pool.submit(os._exit, 3).result(timeout=30)
        assert pool.submit(operator.mul, 6, 7).result(timeout=30) == 42
    finally:
        pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(os.getpid)


def test_process_workers_exit_with_the_pool() -> None:
    pool = ProcessWorkers(2)
    pids = {pool.submit(os.getpid).result(timeout=30) for _ in range(4)}
    pool.shutdown(wait=True)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_window_keeps_order_and_bounds_work_in_flight() -> None:
    """However many models and images, at most ``limit`` results wait in memory."""
    from concurrent.futures import ThreadPoolExecutor

    from hikaze_mm.legacy.importer import WINDOW_MODELS, _ImageJob, _ModelWork, _Window

    peak = 0
    with ThreadPoolExecutor(4) as pool:

        def submit(work: _ModelWork, job: _ImageJob):
            nonlocal peak
            future = pool.submit(lambda: (work.legacy_id, job.n))
            peak = max(peak, window.in_flight + 1)
            return future

        window = _Window(submit, limit=3)
        seen = []
        for model_id in range(200):
            jobs = [_ImageJob(f"r{n}", n, Path(f"{n}.png")) for n in range(model_id % 7)]
            window.add(_ModelWork(model_id, f"/m/{model_id}", {}, None, 1, False, [], jobs))
            while window.full() and window.models:
                work = window.models.popleft()
                seen += [outcome for _job, outcome in window.results(work)]
            assert len(window.models) <= WINDOW_MODELS
        while window.models:
            work = window.models.popleft()
            seen += [outcome for _job, outcome in window.results(work)]
    assert peak <= 3 and window.in_flight == 0
    assert seen == [(m, n) for m in range(200) for n in range(m % 7)]
