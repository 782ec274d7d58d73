"""Image metadata in PNG, WebP and JPEG files: read from anyone's image, written into ours.

Where each piece lives:

* PNG: text chunks (``tEXt``, ``zTXt`` or ``iTXt``) named ``parameters`` (the A1111 text),
  ``prompt`` (ComfyUI's API graph) and ``workflow`` (ComfyUI's editor graph), as A1111's
  and ComfyUI's ``SaveImage`` write them;
* WebP and JPEG: the A1111 text in EXIF ``UserComment`` (``0x9286`` in the Exif IFD,
  ``UNICODE\\0`` then UTF-16BE); ComfyUI's graphs as ``prompt:{json}`` in EXIF ``0x0110``
  (Model) and ``workflow:{json}`` in ``0x010F`` (Make) and below, as its WebP nodes write.

Reading is for images that others made, so every size is limited: the file
(``MAX_INSPECT_BYTES``), its pixels (``MAX_PIXELS``, checked from the header before any
decoding), each text (``MAX_TEXT_CHUNK``; Pillow's own cap on a compressed chunk applies
too). The image must decode (a truncated file does not). Whatever goes wrong is an
``ImageMetadataError`` (400) with a message that says what; a graph that is not a JSON
object reads as ``None``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from hikaze_mm.errors import ValidationError

log = logging.getLogger(__name__)

MAX_INSPECT_BYTES = 32 * 1024 * 1024
MAX_PIXELS = 8192 * 8192
MAX_TEXT_CHUNK = 4 * 1024 * 1024  # characters of one text (a chunk, a comment, a tag)
FORMATS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpeg"}
TEXT_KEYS = ("parameters", "prompt", "workflow")
EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
EXIF_MODEL = 0x0110  # ComfyUI: "prompt:{json}"
EXIF_MAKE = 0x010F  # ComfyUI: the first extra_pnginfo key ("workflow:{json}"), then below
COMFY_EXIF_TAGS = range(0x0100, 0x0111)
UNICODE_PREFIX = b"UNICODE\0"
PNG_COMPRESS_LEVEL = 4  # as ComfyUI's SaveImage
JPEG_MAX_EXIF = 65533  # one JPEG marker segment
# Every PNG ends with this chunk (its CRC is fixed); Pillow decodes an image whose last
# bytes are cut as long as the pixel data is whole.
PNG_END = b"\0\0\0\0IEND\xaeB`\x82"


class ImageMetadataError(ValidationError):
    """Not a PNG, WebP or JPEG image we can read: not an image, truncated, too large."""

    error = "Unreadable image"


@dataclass
class ImageMetadata:
    format: str  # "png" | "webp" | "jpeg"
    width: int
    height: int
    parameters: str | None  # the A1111 text: PNG "parameters" or EXIF UserComment
    prompt: dict | None  # ComfyUI's "prompt" (API graph), or None
    workflow: dict | None  # ComfyUI's "workflow", or None


# --- reading --------------------------------------------------------------------------


def read_metadata(data: bytes) -> ImageMetadata:
    """The metadata of a PNG, WebP or JPEG image; ``ImageMetadataError`` for anything else."""
    if len(data) > MAX_INSPECT_BYTES:
        raise ImageMetadataError(
            f"the image is {len(data)} bytes; at most {MAX_INSPECT_BYTES} are read"
        )
    if not data:
        raise ImageMetadataError("the file is empty")
    if not isinstance(data, bytes):  # a bytearray or memoryview
        data = bytes(data)
    with _decoded(data) as image:
        texts = _texts(image)
        return ImageMetadata(
            format=FORMATS[str(image.format)],
            width=image.width,
            height=image.height,
            parameters=texts.get("parameters") or None,
            prompt=_json_object(texts.get("prompt")),
            workflow=_json_object(texts.get("workflow")),
        )


def _decoded(data: bytes) -> Image.Image:
    """The image, opened (only these three formats), its size checked, then decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as exc:
        raise ImageMetadataError(f"the image declares too many pixels ({_why(exc)})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageMetadataError("not a PNG, WebP or JPEG image") from exc
    except Exception as exc:  # Pillow's header parsers raise many kinds
        raise ImageMetadataError(f"not a readable image: {_why(exc)}") from exc
    if image.format == "PNG" and data.rfind(PNG_END) < 0:
        image.close()
        raise ImageMetadataError("the PNG file is truncated (it has no IEND chunk)")
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        image.close()
        raise ImageMetadataError(
            f"the image is {width}x{height} pixels; at most {MAX_PIXELS} pixels are read"
        )
    try:
        image.load()
    except Exception as exc:  # truncated data, a broken chunk, a compressed-text bomb...
        image.close()
        raise ImageMetadataError(
            f"the image does not decode (truncated or damaged): {_why(exc)}"
        ) from exc
    return image


def _why(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__


def _texts(image: Image.Image) -> dict[str, str]:
    """``parameters``, ``prompt`` and ``workflow``, from PNG text chunks first, then EXIF,
    then (a JPEG's) comment; each checked against ``MAX_TEXT_CHUNK``."""
    found: dict[str, str] = {}
    if image.format == "PNG":
        chunks = getattr(image, "text", {})
        found = {key: _png_text(chunks[key]) for key in TEXT_KEYS if key in chunks}
    for key, value in _exif_texts(image).items():
        found.setdefault(key, value)
    comment = image.info.get("comment")
    if "parameters" not in found and isinstance(comment, bytes):
        text = comment.decode("utf-8", "replace")
        if "Steps:" in text:
            found["parameters"] = text
    for key, value in found.items():
        if len(value) > MAX_TEXT_CHUNK:
            raise ImageMetadataError(
                f"the image's {key!r} text is {len(value)} characters; at most "
                f"{MAX_TEXT_CHUNK} are read"
            )
    return found


def _png_text(value: str) -> str:
    """A ``tEXt``/``zTXt`` value is Latin-1 by the standard, but some tools write UTF-8
    there: read it as UTF-8 when it is that."""
    if isinstance(value, PngImagePlugin.iTXt):
        return str(value)
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _exif_texts(image: Image.Image) -> dict[str, str]:
    """``UserComment`` as ``parameters``; ComfyUI's ``prompt:``/``workflow:`` tags. A
    damaged EXIF block reads as none (the image itself decoded)."""
    found: dict[str, str] = {}
    try:
        exif = image.getexif()
        comment = exif.get_ifd(EXIF_IFD).get(USER_COMMENT)
        tags = [exif.get(tag) for tag in COMFY_EXIF_TAGS]
    except Exception:  # Pillow's EXIF parser on hostile bytes
        return found
    if isinstance(comment, (bytes, str)) and comment:
        found["parameters"] = decode_user_comment(comment)
    for value in tags:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if isinstance(text, str):
            key, colon, rest = text.partition(":")
            if colon and key in ("prompt", "workflow"):
                found.setdefault(key, rest)
    return found


def decode_user_comment(raw: bytes | str) -> str:
    """An EXIF ``UserComment``: its 8-byte charset (``UNICODE``: UTF-16, big-endian by the
    standard, little-endian by a BOM or when its zero bytes say so; ``ASCII``; ``JIS``;
    undefined), or plain bytes with none."""
    if isinstance(raw, str):
        return raw.strip("\x00")
    head, body = raw[:8], raw[8:]
    if head == UNICODE_PREFIX:
        text = _utf16(body)
    elif head == b"ASCII\0\0\0" or head == b"\0" * 8:
        text = body.decode("utf-8", "replace")
    elif head == b"JIS\0\0\0\0\0":
        text = body.decode("shift_jis", "replace")
    else:
        text = raw.decode("utf-8", "replace")
    return text.strip("\x00")


def _utf16(body: bytes) -> str:
    if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
        encoding = "utf-16-be" if body[:2] == b"\xfe\xff" else "utf-16-le"
        body = body[2:]
    else:  # ASCII-heavy text: the high byte of each unit is zero
        encoding = "utf-16-le" if body[1::2].count(0) > body[0::2].count(0) else "utf-16-be"
    return body[: len(body) // 2 * 2].decode(encoding, "replace")


def _json_object(text: str | None) -> dict | None:
    """A JSON object, or ``None`` (missing, invalid, nested too deep, not an object).
    ``NaN`` and ``Infinity`` read as ``null``: what we answer must be valid JSON."""
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=lambda _name: None)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


# --- writing --------------------------------------------------------------------------


def user_comment(text: str) -> bytes:
    """An EXIF ``UserComment`` holding ``text``: ``UNICODE\\0`` then UTF-16BE."""
    return UNICODE_PREFIX + text.encode("utf-16-be", "replace")


def save_image(
    image: Image.Image,
    path: str | os.PathLike[str],
    fmt: str,
    quality: int,
    infotext: str,
    prompt: dict | None,
    extra_pnginfo: dict | None,
) -> None:
    """Write ``image`` to ``path`` with its metadata, atomically (a temporary file in the
    same folder, then ``os.replace``). ``fmt``: ``png`` (``quality`` unused), ``webp`` or
    ``jpeg`` (``quality`` 1-100)."""
    fmt = {"jpg": "jpeg"}.get(fmt.lower(), fmt.lower())
    if fmt not in FORMATS.values():
        raise ValidationError(f"format must be png, webp or jpeg, not {fmt!r:.40}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValidationError(f"quality must be an integer from 1 to 100, not {quality!r:.40}")
    options = _save_options(image, fmt, quality, _safe_text(infotext), prompt, extra_pnginfo)
    if fmt == "jpeg" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".hikaze-save-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            image.save(file, format=fmt.upper(), **options)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _save_options(
    image: Image.Image,
    fmt: str,
    quality: int,
    infotext: str,
    prompt: dict | None,
    extra_pnginfo: dict | None,
) -> dict[str, Any]:
    if fmt == "png":
        return {
            "pnginfo": _png_info(infotext, prompt, extra_pnginfo),
            "compress_level": PNG_COMPRESS_LEVEL,
        }
    exif = _exif_bytes(infotext, prompt, extra_pnginfo)
    if fmt == "jpeg" and len(exif) > JPEG_MAX_EXIF:  # the graphs go first, then the text
        log.warning("credits: EXIF too long for a JPEG (%d bytes): graphs left out", len(exif))
        exif = _exif_bytes(infotext, None, None)
        if len(exif) > JPEG_MAX_EXIF:
            log.warning("credits: the infotext alone is too long for a JPEG: left out")
            exif = b""
    return {"quality": quality, "exif": exif}


def _png_info(infotext: str, prompt: dict | None, extra: dict | None) -> PngImagePlugin.PngInfo:
    """``parameters``, then ComfyUI's ``prompt`` and one chunk per ``extra_pnginfo`` key
    (``json.dumps`` of each, as ComfyUI's ``SaveImage`` writes them)."""
    info = PngImagePlugin.PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra or {}).items():
        if not _png_keyword(key):
            log.warning("credits: extra_pnginfo key %r is not a PNG keyword; left out", key)
            continue
        info.add_text(key, json.dumps(value))
    return info


def _png_keyword(key: object) -> bool:
    if not isinstance(key, str) or not 1 <= len(key) <= 79:
        return False
    try:
        key.encode("latin-1")
    except UnicodeError:
        return False
    return True


def _exif_bytes(infotext: str, prompt: dict | None, extra: dict | None) -> bytes:
    exif = Image.Exif()
    if infotext:
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = user_comment(infotext)
    if prompt is not None:
        exif[EXIF_MODEL] = f"prompt:{json.dumps(prompt)}"
    tag = EXIF_MAKE
    for key, value in (extra or {}).items():
        if tag < COMFY_EXIF_TAGS.start:
            break
        exif[tag] = f"{key}:{json.dumps(value)}"
        tag -= 1
    return exif.tobytes()


def _safe_text(text: str) -> str:
    """``text`` without lone surrogates (no encoder writes them)."""
    return text.encode("utf-8", "replace").decode("utf-8")
