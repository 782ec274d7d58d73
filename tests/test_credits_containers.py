"""PNG, WebP and JPEG metadata: written the standard way (plain Pillow reads it back), read
from anyone's image within limits, and every failure an ``ImageMetadataError``."""

from __future__ import annotations

import io
import json
import random
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from hikaze_mm.credits.containers import (
    EXIF_IFD,
    MAX_INSPECT_BYTES,
    MAX_PIXELS,
    MAX_TEXT_CHUNK,
    USER_COMMENT,
    ImageMetadata,
    ImageMetadataError,
    decode_user_comment,
    read_metadata,
    save_image,
    user_comment,
)
from hikaze_mm.errors import ValidationError

INFOTEXT = (
    'a ✨ cat, {braces} [brackets] "quotes"\n'
    "Negative prompt: blurry, 日本語\n"
    'Steps: 30, Sampler: Euler, Seed: 18446744073709551615, Hashes: {"model": "A5F58EB1C3"}'
)
PROMPT = {"3": {"class_type": "KSampler", "inputs": {"seed": 2**64 - 1, "text": "日本"}}}
WORKFLOW = {"nodes": [{"id": 3, "type": "KSampler", "title": "ü ✨"}], "links": []}
EXTRA = {"workflow": WORKFLOW, "other": [1, 2]}


def picture(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, (width, height))
    image.putdata(
        [((x * 7) % 256, (y * 5) % 256, (x + y) % 256) for y in range(height) for x in range(width)]
    )
    return image


def encoded(fmt: str, image: Image.Image | None = None, **options: object) -> bytes:
    buffer = io.BytesIO()
    (image or picture()).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (its data is a few bytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


# --- writing, read back ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
def test_save_and_read_back_in_each_format(tmp_path: Path, fmt: str) -> None:
    image = picture()
    path = tmp_path / f"out.{fmt}"
    save_image(image, path, fmt, 90, INFOTEXT, PROMPT, EXTRA)
    meta = read_metadata(path.read_bytes())
    assert meta == ImageMetadata(fmt, 64, 48, INFOTEXT, PROMPT, WORKFLOW)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    with Image.open(path) as plain:
        assert plain.format == fmt.upper() and plain.size == (64, 48)
        if fmt == "png":
            assert plain.text["parameters"] == INFOTEXT
            assert plain.text["prompt"] == json.dumps(PROMPT)  # as ComfyUI's SaveImage
            assert plain.text["workflow"] == json.dumps(WORKFLOW)
            assert plain.text["other"] == "[1, 2]"
            assert plain.tobytes() == image.tobytes()  # lossless
        else:
            exif = plain.getexif()
            comment = exif.get_ifd(0x8769)[0x9286]
            assert comment == b"UNICODE\0" + INFOTEXT.encode("utf-16-be")
            assert exif[0x0110] == f"prompt:{json.dumps(PROMPT)}"  # as ComfyUI's WebP nodes
            assert exif[0x010F] == f"workflow:{json.dumps(WORKFLOW)}"
            assert exif[0x010E] == "other:[1, 2]"


@pytest.mark.parametrize("fmt", ["webp", "jpeg"])
def test_quality_is_the_encoders(tmp_path: Path, fmt: str) -> None:
    sizes = []
    for quality in (10, 95):
        path = tmp_path / f"q{quality}.{fmt}"
        save_image(picture(256, 256), path, fmt, quality, "Steps: 1", None, None)
        sizes.append(path.stat().st_size)
    assert sizes[0] < sizes[1]


def test_png_without_metadata_has_no_chunks_and_lone_surrogates_are_replaced(
    tmp_path: Path,
) -> None:
    save_image(picture(), tmp_path / "bare.png", "png", 90, "", None, None)
    with Image.open(tmp_path / "bare.png") as plain:
        plain.load()
        assert plain.text == {}
    save_image(picture(), tmp_path / "odd.png", "png", 90, "a \ud800 b\nSteps: 1", None, None)
    assert read_metadata((tmp_path / "odd.png").read_bytes()).parameters == "a ? b\nSteps: 1"
    save_image(picture(), tmp_path / "odd.webp", "webp", 80, "a \udfff b", None, None)
    assert read_metadata((tmp_path / "odd.webp").read_bytes()).parameters == "a ? b"


def test_a_key_that_is_no_png_keyword_is_left_out(tmp_path: Path) -> None:
    extra = {"workflow": WORKFLOW, "日本": 1, "": 2, "k" * 80: 3}
    save_image(picture(), tmp_path / "k.png", "png", 90, "Steps: 1", None, extra)
    with Image.open(tmp_path / "k.png") as plain:
        plain.load()
        assert set(plain.text) == {"parameters", "workflow"}


def test_jpeg_exif_that_would_not_fit_loses_the_graphs_then_the_text(tmp_path: Path) -> None:
    big = {"nodes": ["x" * 1000] * 80}
    save_image(picture(), tmp_path / "a.jpeg", "jpeg", 90, INFOTEXT, PROMPT, {"workflow": big})
    meta = read_metadata((tmp_path / "a.jpeg").read_bytes())
    assert (meta.parameters, meta.prompt, meta.workflow) == (INFOTEXT, None, None)
    save_image(picture(), tmp_path / "b.jpeg", "jpeg", 90, "x" * 40_000, PROMPT, None)
    meta = read_metadata((tmp_path / "b.jpeg").read_bytes())
    assert (meta.format, meta.parameters, meta.prompt) == ("jpeg", None, None)
    save_image(picture(), tmp_path / "c.webp", "webp", 90, "x" * 40_000, PROMPT, {"workflow": big})
    meta = read_metadata((tmp_path / "c.webp").read_bytes())  # WebP has room
    assert (meta.parameters, meta.prompt, meta.workflow) == ("x" * 40_000, PROMPT, big)


def test_jpeg_takes_an_rgba_image(tmp_path: Path) -> None:
    save_image(picture().convert("RGBA"), tmp_path / "rgba.jpg", "jpg", 80, "Steps: 2", None, None)
    assert read_metadata((tmp_path / "rgba.jpg").read_bytes()).format == "jpeg"


def test_save_replaces_atomically_and_a_failed_save_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "same.png"
    save_image(picture(), path, "png", 90, "Steps: 1, Seed: 1", None, None)
    save_image(picture(), path, "png", 90, "Steps: 1, Seed: 2", None, None)
    assert read_metadata(path.read_bytes()).parameters == "Steps: 1, Seed: 2"
    before = path.read_bytes()
    with pytest.raises(OSError):  # Pillow cannot write a float image as PNG: mid-save
        save_image(Image.new("F", (8, 8)), path, "png", 90, "Steps: 1, Seed: 3", None, None)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["same.png"]


@pytest.mark.parametrize(
    "fmt,quality", [("gif", 90), ("", 90), ("png", 0), ("jpeg", 101), ("webp", True), ("webp", 9.5)]
)
def test_bad_format_or_quality_is_a_validation_error(
    tmp_path: Path, fmt: str, quality: object
) -> None:
    with pytest.raises(ValidationError):
        save_image(picture(), tmp_path / "x", fmt, quality, "Steps: 1", None, None)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_user_comment_is_unicode_then_utf16be() -> None:
    assert user_comment("Steps: 1 ✨") == b"UNICODE\0" + "Steps: 1 ✨".encode("utf-16-be")
    assert decode_user_comment(user_comment("Steps: 1 ✨")) == "Steps: 1 ✨"


# --- reading what others wrote --------------------------------------------------------

TEXT = "日本 prompt, Steps: 20"


@pytest.mark.parametrize(
    "raw",
    [
        b"UNICODE\0" + TEXT.encode("utf-16-be"),
        b"UNICODE\0" + b"\xfe\xff" + TEXT.encode("utf-16-be"),
        b"UNICODE\0" + b"\xff\xfe" + TEXT.encode("utf-16-le"),
        b"UNICODE\0" + TEXT.encode("utf-16-le"),  # little-endian, no BOM: by its zero bytes
        b"UNICODE\0" + TEXT.encode("utf-16-be") + b"\0\0",
        b"ASCII\0\0\0" + TEXT.encode("utf-8"),
        b"\0" * 8 + TEXT.encode("utf-8"),
        b"JIS\0\0\0\0\0" + TEXT.encode("shift_jis"),
        TEXT.encode("utf-8"),
    ],
)
def test_user_comments_in_their_charsets(raw: bytes) -> None:
    assert decode_user_comment(raw) == TEXT
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = raw
    for fmt in ("JPEG", "WEBP", "PNG"):
        assert read_metadata(encoded(fmt, exif=exif.tobytes())).parameters == TEXT


def test_png_text_in_each_chunk_kind() -> None:
    for add in (
        lambda info: info.add_text("parameters", TEXT, zip=True),  # iTXt compressed
        lambda info: info.add_itxt("parameters", TEXT),
        lambda info: info.add_text("parameters", TEXT.encode("utf-8")),  # UTF-8 in tEXt
        lambda info: info.add_text("parameters", TEXT.encode("utf-8"), zip=True),  # zTXt
    ):
        info = PngImagePlugin.PngInfo()
        add(info)
        assert read_metadata(encoded("PNG", pnginfo=info)).parameters == TEXT
    latin = PngImagePlugin.PngInfo()
    latin.add_text("parameters", "caf\xe9 Steps: 1")
    assert read_metadata(encoded("PNG", pnginfo=latin)).parameters == "caf\xe9 Steps: 1"


def test_comfyuis_webp_exif_and_a_jpeg_comment() -> None:
    exif = Image.Exif()
    exif[0x0110] = f"prompt:{json.dumps(PROMPT)}"
    exif[0x010F] = f"workflow:{json.dumps(WORKFLOW)}"
    meta = read_metadata(encoded("WEBP", exif=exif.tobytes()))
    assert (meta.parameters, meta.prompt, meta.workflow) == (None, PROMPT, WORKFLOW)
    commented = read_metadata(encoded("JPEG", comment=b"a prompt\nSteps: 5, Seed: 1"))
    assert commented.parameters == "a prompt\nSteps: 5, Seed: 1"
    assert read_metadata(encoded("JPEG", comment=b"Created with GIMP")).parameters is None


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", '"a string"', "", "[" * 100_000, "1e999999", '{"a": 1} trailing'],
)
def test_a_graph_that_is_not_a_json_object_reads_as_none(text: str) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", text)
    info.add_text("workflow", text)
    meta = read_metadata(encoded("PNG", pnginfo=info))
    assert (meta.prompt, meta.workflow) == (None, None)


def test_nan_in_a_graph_reads_as_null() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", '{"1": {"inputs": {"cfg": NaN, "x": Infinity}}}')
    meta = read_metadata(encoded("PNG", pnginfo=info))
    assert meta.prompt == {"1": {"inputs": {"cfg": None, "x": None}}}
    json.dumps(meta.prompt, allow_nan=False)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's note on the broken EXIF
def test_a_damaged_exif_block_reads_as_no_metadata() -> None:
    data = encoded("JPEG", exif=b"Exif\0\0MM\0*\0\0\0\x08\xff\xff" + b"\x01" * 40)
    meta = read_metadata(data)
    assert (meta.format, meta.parameters) == ("jpeg", None)


# --- hostile input --------------------------------------------------------------------


def _error(data: bytes) -> ImageMetadataError:
    with pytest.raises(ImageMetadataError) as caught:
        read_metadata(data)
    error = caught.value
    assert isinstance(error, ValidationError) and error.status == 400
    assert error.body() == {"error": "Unreadable image", "detail": error.detail} and error.detail
    return error


def test_not_an_image() -> None:
    assert "empty" in _error(b"").detail
    assert "PNG, WebP or JPEG" in _error(b"hello, this is text").detail
    for fmt in ("GIF", "BMP", "TIFF", "ICO"):  # real images, not ours to read
        assert "PNG, WebP or JPEG" in _error(encoded(fmt)).detail


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_truncated_files(fmt: str) -> None:
    whole = encoded(fmt, image=picture(200, 150), quality=90)
    assert read_metadata(whole).width == 200
    for cut in (len(whole) // 2, len(whole) - 20, len(whole) - 12, 30):
        _error(whole[:cut])


def test_more_than_the_limit_is_refused_before_anything_is_read() -> None:
    data = encoded("PNG")
    padded = data + b"\0" * (MAX_INSPECT_BYTES + 1 - len(data))
    assert len(padded) == MAX_INSPECT_BYTES + 1
    assert str(MAX_INSPECT_BYTES) in _error(padded).detail


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even Pillow's warning: our limit comes first
        assert "pixels" in _error(png_declaring(8200, 8200)).detail
        assert MAX_PIXELS < 8200 * 8200
    assert "pixels" in _error(png_declaring(100_000, 100_000)).detail  # Pillow's own error
    _error(png_declaring(0, 5))


def test_text_chunks_over_the_limits() -> None:
    huge = PngImagePlugin.PngInfo()
    huge.add_text("workflow", "x" * (MAX_TEXT_CHUNK + 1))
    assert "'workflow'" in _error(encoded("PNG", pnginfo=huge)).detail
    bomb = PngImagePlugin.PngInfo()  # 2 MiB of text in a few KB: Pillow's cap
    bomb.add_text("parameters", "a" * (2 * 1024 * 1024), zip=True)
    data = encoded("PNG", pnginfo=bomb)
    assert len(data) < 64 * 1024
    _error(data)
    comment = Image.Exif()
    comment.get_ifd(EXIF_IFD)[USER_COMMENT] = user_comment("y" * (MAX_TEXT_CHUNK + 1))
    assert "'parameters'" in _error(encoded("WEBP", exif=comment.tobytes())).detail


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on the broken EXIF
def test_mutated_files_give_metadata_or_our_error_never_another_exception() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", INFOTEXT)
    info.add_text("prompt", json.dumps(PROMPT))
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = user_comment(INFOTEXT)
    samples = [
        encoded("PNG", pnginfo=info),
        encoded("WEBP", exif=exif.tobytes()),
        encoded("JPEG", exif=exif.tobytes()),
    ]
    rng = random.Random(20)
    outcomes = {"read": 0, "refused": 0}
    for sample in samples:
        for _ in range(150):
            data = bytearray(sample)
            for _ in range(rng.randint(1, 6)):
                position = rng.randrange(min(len(data), 400))  # headers and metadata
                data[position] = rng.randrange(256)
            try:
                read_metadata(bytes(data))
                outcomes["read"] += 1
            except ImageMetadataError:
                outcomes["refused"] += 1
    assert outcomes["read"] > 0 and outcomes["refused"] > 0


def test_bytes_like_input_reads_the_same() -> None:
    data = encoded("PNG")
    assert read_metadata(bytearray(data)) == read_metadata(memoryview(data)) == read_metadata(data)
