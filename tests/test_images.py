"""Image validation, WebP tiers and sequence naming, on real files made with Pillow."""

from __future__ import annotations

import io
import math
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from hikaze_mm.errors import ValidationError
from hikaze_mm.images import (
    QUALITIES,
    TIERS,
    ImageError,
    ImageStore,
    encode_tiers,
    parse_public_name,
)

SHA = "c" * 64


def png_bytes(size=(64, 48), mode="RGB", color=(200, 10, 10), **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG", **save)
    return out.getvalue()


def jpeg_bytes(size=(80, 40), mode="RGB", color=(1, 2, 3), **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "JPEG", **save)
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images", tmp_path / "images" / "pending")


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_tiers_keep_aspect_and_limits() -> None:
    tiers = encode_tiers(png_bytes((3000, 2000)))
    sizes = {q: decode(b).size for q, b in tiers.items()}
    for quality, (w, h) in sizes.items():
        assert w * h <= TIERS[quality].max_pixels
        assert abs(w / h - 1.5) < 0.01
    assert sizes["high"][0] > sizes["medium"][0] > sizes["low"][0]
    assert all(decode(b).format == "WEBP" for b in tiers.values())
    small = encode_tiers(png_bytes((100, 50)))
    assert decode(small["high"]).size == (100, 50)  # never upscaled


def photo_like(size: tuple[int, int]) -> Image.Image:
    """Gradients, noise and shapes: detail everywhere, so a misplaced pixel shows."""
    w, h = size
    noise = Image.effect_noise(size, 30).point(lambda v: v // 2 + 64)
    gradients = (Image.linear_gradient("L").resize(size), Image.radial_gradient("L").resize(size))
    img = Image.merge("RGB", (*gradients, noise))
    draw = ImageDraw.Draw(img)
    for i in range(8):
        box = (i * w // 9, i * h // 11, i * w // 9 + w // 5, i * h // 11 + h // 5)
        draw.ellipse(box, fill=(40 * i % 255, 180, 60))
    return img


def webp_chunks(data: bytes) -> list[bytes]:
    """The chunk names of a WebP file, after checking its RIFF framing."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    names, pos = [], 12
    while pos < len(data):
        names.append(data[pos : pos + 4])
        pos += 8 + (int.from_bytes(data[pos + 4 : pos + 8], "little") + 1) // 2 * 2
    assert pos == len(data)
    return names


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Of the colours as seen over black (a transparent pixel's colour does not count)."""
    a, b = (
        Image.alpha_composite(Image.new("RGBA", i.size, "black"), i.convert("RGBA")) for i in (a, b)
    )
    rms = max(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).rms)
    return 99.0 if rms == 0 else 20 * math.log10(255 / rms)


def test_tier_settings() -> None:
    """The tiers' public contract: names, pixel limits and WebP qualities."""
    assert QUALITIES == ("high", "medium", "low")
    assert {q: (t.max_pixels, t.quality) for q, t in TIERS.items()} == {
        "high": (2_000_000, 80),
        "medium": (400_000, 72),
        "low": (65_536, 60),
    }


# Tier sizes as the encoder gave them before it was made faster (issue 13): a speed change
# (draft decoding, another resize path, another WebP method) must not move them.
SIZES_3000x2000 = {"high": (1732, 1154), "medium": (774, 516), "low": (313, 209)}


@pytest.mark.parametrize(
    "kind, size, orientation, expected",
    [
        # Decoded at 1/2 by libjpeg (draft), still resized to the same size.
        (
            "jpeg",
            (4000, 3000),
            None,
            {"high": (1632, 1224), "medium": (730, 547), "low": (295, 221)},
        ),
        # Odd size and EXIF rotation on top of a draft decode.
        ("jpeg", (6001, 4003), 6, {"high": (1155, 1731), "medium": (516, 774), "low": (209, 313)}),
        ("jpeg", (3000, 2000), None, SIZES_3000x2000),  # too small for a draft decode
        ("png", (2400, 1600), None, SIZES_3000x2000),  # with an alpha gradient
    ],
)
def test_tiers_keep_their_sizes_and_are_valid_webp(
    kind: str, size: tuple[int, int], orientation: int | None, expected: dict
) -> None:
    source = photo_like(size)
    out = io.BytesIO()
    if kind == "png":
        source.putalpha(Image.linear_gradient("L").resize(size))  # alpha 0 to 255
        source.save(out, "PNG")
    else:
        exif = Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        source.save(out, "JPEG", quality=90, exif=exif.tobytes())
    upright = source.transpose(Image.Transpose.ROTATE_270) if orientation == 6 else source

    tiers = encode_tiers(out.getvalue())

    assert list(tiers) == list(QUALITIES)
    reference = upright
    for quality in QUALITIES:
        chunks = webp_chunks(tiers[quality])
        assert b"VP8 " in chunks and b"VP8L" not in chunks  # lossy, as quality needs
        assert (b"ALPH" in chunks) is (kind == "png")
        img = decode(tiers[quality])
        assert img.format == "WEBP"
        assert img.size == expected[quality]
        assert img.width * img.height <= TIERS[quality].max_pixels
        assert img.mode == ("RGBA" if kind == "png" else "RGB")
        # The right picture, upright, not shifted: close to a Lanczos resize of the source.
        reference = reference.resize(img.size, Image.Resampling.LANCZOS)
        assert psnr(img, reference) > 28
        if kind == "png":
            assert psnr(img.getchannel("A"), reference.getchannel("A")) > 40


@pytest.mark.parametrize(
    "data, mode",
    [
        (png_bytes(mode="RGBA", color=(0, 255, 0, 128)), "RGBA"),
        (png_bytes(mode="P", color=3), "RGB"),
        (jpeg_bytes(mode="CMYK", color=(0, 255, 255, 0)), "RGB"),
        (png_bytes(mode="I;16", color=65535), "RGB"),
        (png_bytes(mode="LA", color=(100, 50)), "RGBA"),
    ],
)
def test_awkward_modes(data: bytes, mode: str) -> None:
    high = decode(encode_tiers(data)["high"])
    assert high.mode == mode


def test_sixteen_bit_white_stays_white() -> None:
    high = decode(encode_tiers(png_bytes(mode="I;16", color=65535))["high"])
    assert min(high.convert("L").getextrema()) > 240


def test_exif_rotation_applied_and_metadata_stripped() -> None:
    img = Image.new("RGB", (60, 20), (5, 5, 5))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    exif[0x010E] = "secret description"
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    high = decode(encode_tiers(out.getvalue())["high"])
    assert high.size == (20, 60)
    assert not high.info.get("exif") and b"secret" not in encode_tiers(out.getvalue())["high"]


def test_bad_images_rejected(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="empty"):
        encode_tiers(b"")
    with pytest.raises(ImageError, match="not an image"):
        encode_tiers(b"hello, this is text")
    with pytest.raises(ImageError, match=r"truncated|corrupt"):
        encode_tiers(png_bytes((300, 300), color=(1, 2, 3))[:-40] + b"")
    truncated = jpeg_bytes((400, 400))
    with pytest.raises(ImageError):
        encode_tiers(truncated[: len(truncated) // 2])
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    with pytest.raises(ImageError, match="bomb"):
        encode_tiers(bomb.getvalue(), max_pixels=50_000_000)
    with pytest.raises(ImageError, match="not found"):
        encode_tiers(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="limit"):
        encode_tiers(png_bytes(), max_bytes=10)


def test_sequences_names_and_delete(store: ImageStore) -> None:
    assert max(store.list_seqs(SHA), default=-1) + 1 == 0
    assert store.add_image(SHA, png_bytes()) == 0
    assert store.add_image(SHA, png_bytes()) == 1
    assert store.image_names(SHA) == [f"{SHA}_0.webp", f"{SHA}_1.webp"]
    for q in ("high", "medium", "low"):
        assert store.tier_path(SHA, 1, q).stat().st_size > 0
    assert store.add_image(SHA, png_bytes(color=(0, 0, 255)), target_seq=0) == 0
    assert store.list_seqs(SHA) == [0, 1]
    assert store.delete_image(SHA, 0) is True
    assert store.list_seqs(SHA) == [1]
    assert max(store.list_seqs(SHA), default=-1) + 1 == 2
    assert store.image_counts([SHA, "d" * 64]) == {SHA: 1, "d" * 64: 0}
    assert store.delete_all(SHA) == 1 and store.list_seqs(SHA) == []


def test_concurrent_adds_get_distinct_seqs(store: ImageStore) -> None:
    tiers = encode_tiers(png_bytes())
    seqs: list[int] = []
    lock = threading.Lock()

    def add() -> None:
        seq = store.write_tiers(SHA, tiers)
        with lock:
            seqs.append(seq)

    threads = [threading.Thread(target=add) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(12))


def test_cleanup_partial(store: ImageStore) -> None:
    store.tier_path(SHA, 0, "high").touch()  # a claim whose writer died
    (store.images_dir / f".{SHA}_0_low.webp.1.2.tmp").write_bytes(b"x")
    assert store.list_seqs(SHA) == []
    assert store.cleanup_partial() == 2
    assert list(store.images_dir.glob("*.webp")) == []


def test_cleanup_in_a_shared_folder_leaves_a_write_in_progress(store: ImageStore) -> None:
    """In a folder several hosts write, only leftovers older than the limit go: a fresh
    claim or temporary file may be another host's write in progress."""
    old_claim, fresh_tmp = store.tier_path(SHA, 0, "high"), store.images_dir / ".x.1.2.tmp"
    old_claim.touch()
    fresh_tmp.write_bytes(b"x")
    os.utime(old_claim, (time.time() - 7200, time.time() - 7200))
    assert store.cleanup_partial(older_than_s=3600) == 1
    assert not old_claim.exists() and fresh_tmp.exists()


def test_pending_images(store: ImageStore, tmp_path: Path) -> None:
    src = tmp_path / "orig.png"
    src.write_bytes(png_bytes())
    first = store.add_pending_image(7, src)
    second = store.add_pending_image(7, src)
    assert (first.name, second.name) == ("7_0.png", "7_1.png")
    assert store.add_pending_image(7, src, n=1).name == "7_1.png"
    store.add_pending_image(71, src)
    assert [p.name for p in store.pending_images(7)] == ["7_0.png", "7_1.png"]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageError):
        store.add_pending_image(7, bad)
    for path in store.pending_images(7):
        path.unlink()
    assert [p.name for p in store.pending_images(71)] == ["71_0.png"]


def test_public_names() -> None:
    assert parse_public_name(f"{SHA}.webp") == (SHA, 0)
    assert parse_public_name(f"{SHA}_12.webp") == (SHA, 12)
    for bad in (
        "../x.webp",
        f"{SHA}_1_high.webp",
        f"{SHA.upper()}.webp",
        f"{SHA}*.webp",
        f"{SHA}_1.png",
        "x" * 64 + ".webp",
    ):
        with pytest.raises(ValidationError):
            parse_public_name(bad)


def test_move_image_replaces_the_target_and_a_retry_is_harmless(store: ImageStore) -> None:
    store.add_image(SHA, png_bytes(color=(255, 0, 0)))
    store.add_image(SHA, png_bytes(color=(0, 0, 255)))
    store.move_image(SHA, 1, 0)
    assert store.list_seqs(SHA) == [0]
    pixel = decode(store.tier_path(SHA, 0, "low").read_bytes()).convert("RGB").getpixel((5, 5))
    assert pixel[2] > 200 and pixel[0] < 50  # the blue image now stands at seq 0
    store.move_image(SHA, 1, 0)  # a retry after the move finds nothing left to do
    assert store.list_seqs(SHA) == [0]
