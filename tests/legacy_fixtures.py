"""Builders of legacy (schema v2) databases and of real image files of every awkward kind.

Shared by the Stage 1 tests, the Stage 2 full-flow test and the benchmark. Everything is
built for real: a SQLite file with exactly the v2 schema, images encoded by Pillow.

Databases::

    info = build_legacy_db(
        tmp_path / "legacy" / "hikaze_mm.sqlite3",
        tags=[{"id": 1, "name": "lora", "color": "#ff0000"}],        # or LegacyTag(...)
        models=[{"id": 7, "path": "/m/loras/a.safetensors", "type": "lora",
                 "hash_hex": sha, "extra_json": {"images": ["/media/a.png"]}}],
        links=[(7, 1), (7, 99)],                                      # (model_id, tag_id)
        wal=True,
    )
    info.path, info.wal_path, info.tag_ids, info.model_ids

``extra_json`` / ``meta_json`` may be a dict/list (dumped as JSON), a str (stored as is,
so invalid JSON is possible) or None. ``wal=True`` leaves the file in WAL mode with a
``-wal`` beside it: the schema, directories and tags are checkpointed into the main file,
while every model and link lives ONLY in the un-checkpointed WAL (an importer that ignores
the WAL loses them).

Images::

    make_image(folder / "a.png", "rgba")       # -> Path; kinds in IMAGE_KINDS
    upload_name(7, 1_700_000_000_000, "my pic.png")  # "model_7_1700000000000_my_pic.png"
    GOOD_IMAGE_KINDS / BAD_IMAGE_KINDS          # which kinds an importer must accept/reject

``exif_rotated`` is stored 60x30 with EXIF Orientation 6, so upright it is 30x60 with its
top half blue and its bottom half red (stored: left half blue, right half red).
``bomb`` is a valid 1-bit PNG of 12000x12000 pixels (over the 64 MP limit),
only a few KB on disk.

A whole representative scenario (files, images, DB): ``build_sample_legacy(root)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import struct
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from hikaze_mm.legacy.importer import import_legacy_data

LEGACY_SCHEMA = """
CREATE TABLE schema_version(version INTEGER NOT NULL);
CREATE TABLE directories(id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE,
    alias TEXT, parent_id INTEGER);
CREATE TABLE models(id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE, name TEXT,
    type TEXT NOT NULL, size_bytes INTEGER, hash_hex TEXT NOT NULL, created_at INTEGER NOT NULL,
    meta_json TEXT, extra_json TEXT);
CREATE TABLE tags(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, color TEXT,
    created_at INTEGER);
CREATE TABLE model_tags(model_id INTEGER NOT NULL, tag_id INTEGER NOT NULL,
    PRIMARY KEY(model_id, tag_id));
"""

DEFAULT_CREATED_AT = 1_700_000_000_000  # ms


@dataclass
class LegacyTag:
    id: int
    name: str
    color: str | None = None
    created_at: int | None = DEFAULT_CREATED_AT


@dataclass
class LegacyModel:
    id: int
    path: str
    type: str = "checkpoint"
    hash_hex: str = ""
    name: str | None = None
    size_bytes: int | None = None
    created_at: int = DEFAULT_CREATED_AT
    meta_json: Any = None  # dict/list -> JSON; str stored as is; None -> NULL
    extra_json: Any = None


@dataclass
class LegacyDbInfo:
    path: Path
    wal_path: Path | None
    tag_ids: list[int]
    model_ids: list[int]
    links: list[tuple[int, int]]


def _as_tag(tag: LegacyTag | dict[str, Any]) -> LegacyTag:
    return tag if isinstance(tag, LegacyTag) else LegacyTag(**tag)


def _as_model(model: LegacyModel | dict[str, Any]) -> LegacyModel:
    return model if isinstance(model, LegacyModel) else LegacyModel(**model)


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _write_rows(
    conn: sqlite3.Connection, models: Sequence[LegacyModel], links: Iterable[tuple[int, int]]
) -> None:
    conn.executemany(
        "INSERT INTO models (id, path, name, type, size_bytes, hash_hex, created_at, meta_json, "
        "extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                m.id,
                m.path,
                m.name,
                m.type,
                m.size_bytes,
                m.hash_hex,
                m.created_at,
                _json_text(m.meta_json),
                _json_text(m.extra_json),
            )
            for m in models
        ],
    )
    conn.executemany("INSERT INTO model_tags (model_id, tag_id) VALUES (?, ?)", list(links))


def build_legacy_db(
    path: str | Path,
    *,
    tags: Iterable[LegacyTag | dict[str, Any]] = (),
    models: Iterable[LegacyModel | dict[str, Any]] = (),
    links: Iterable[tuple[int, int]] = (),
    directories: Iterable[str] = (),
    wal: bool = False,
    version: int = 2,
) -> LegacyDbInfo:
    """Write a legacy v2 database at ``path`` (replacing one there); see the module doc."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    tag_list = [_as_tag(t) for t in tags]
    model_list = [_as_model(m) for m in models]
    link_list = [(int(a), int(b)) for a, b in links]

    def write_base(conn: sqlite3.Connection) -> None:
        for statement in LEGACY_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.executemany("INSERT INTO directories (path) VALUES (?)", [(d,) for d in directories])
        conn.executemany(
            "INSERT INTO tags (id, name, color, created_at) VALUES (?, ?, ?, ?)",
            [(t.id, t.name, t.color, t.created_at) for t in tag_list],
        )

    if not wal:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN")
            write_base(conn)
            _write_rows(conn, model_list, link_list)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return LegacyDbInfo(
            path, None, [t.id for t in tag_list], [m.id for m in model_list], link_list
        )

    # WAL: build in a scratch folder, then copy the main file and its -wal while the
    # writer is still open (closing it would checkpoint and delete the WAL).
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / path.name
        conn = sqlite3.connect(work, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("BEGIN")
            write_base(conn)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("BEGIN")
            _write_rows(conn, model_list, link_list)
            conn.execute("COMMIT")
            shutil.copyfile(work, path)
            shutil.copyfile(f"{work}-wal", f"{path}-wal")
        finally:
            conn.close()
    return LegacyDbInfo(
        path,
        Path(f"{path}-wal"),
        [t.id for t in tag_list],
        [m.id for m in model_list],
        link_list,
    )


# ---------------------------------------------------------------------------- images

GOOD_IMAGE_KINDS = (
    "rgb_jpeg",
    "rgb_png",
    "rgba",
    "palette",
    "palette_transparent",
    "cmyk",
    "gray16",
    "exif_rotated",
    "webp",
    "gif",
)
BAD_IMAGE_KINDS = ("empty", "truncated", "not_image", "bomb")
IMAGE_KINDS = GOOD_IMAGE_KINDS + BAD_IMAGE_KINDS

# Words the reason of each bad kind contains (as ImageStore words them).
BAD_KIND_REASONS = {
    "empty": "empty",
    "truncated": "truncated",
    "not_image": "not an image",
    "bomb": "bomb",
}


def _gradient(size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size)
    img.putdata(
        [
            (x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), 128)
            for y in range(h)
            for x in range(w)
        ]
    )
    return img


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png_bytes(side: int = 12_000) -> bytes:
    """A valid all-black 1-bit PNG of side x side pixels, a few KB compressed."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def image_bytes(kind: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """The bytes of one image of ``kind`` (see IMAGE_KINDS)."""
    out = io.BytesIO()
    w, h = size
    if kind == "rgb_jpeg":
        _gradient(size).save(out, "JPEG", quality=90)
    elif kind == "rgb_png":
        _gradient(size).save(out, "PNG")
    elif kind == "rgba":
        img = Image.new("RGBA", size, (0, 200, 0, 255))
        img.paste((0, 0, 255, 64), (0, 0, w // 2, h))  # left half mostly transparent
        img.save(out, "PNG")
    elif kind == "palette":
        _gradient(size).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(out, "PNG")
    elif kind == "palette_transparent":
        img = Image.new("P", size, 0)
        img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
        img.paste(1, (0, 0, w // 2, h))
        img.save(out, "PNG", transparency=0)  # red (index 0) is transparent
    elif kind == "cmyk":
        Image.new("CMYK", size, (0, 255, 255, 0)).save(out, "JPEG", quality=95)  # red
    elif kind == "gray16":
        data = struct.pack(
            f"<{w * h}H", *[(x * 65535) // max(1, w - 1) for _ in range(h) for x in range(w)]
        )
        Image.frombytes("I;16", size, data).save(out, "PNG")
    elif kind == "exif_rotated":
        img = Image.new("RGB", (60, 30), (0, 0, 255))
        # Stored: left half blue, right half red. Orientation 6 turns it 90° clockwise,
        # so upright (30x60) the blue half is on top and the red half at the bottom.
        img.paste((255, 0, 0), (30, 0, 60, 30))
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x010F] = "LegacyCam"  # a Make tag that must be stripped
        img.save(out, "JPEG", quality=95, exif=exif.tobytes())
    elif kind == "webp":
        _gradient(size).save(out, "WEBP", quality=90)
    elif kind == "gif":
        _gradient(size).convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(out, "GIF")
    elif kind == "empty":
        return b""
    elif kind == "truncated":
        _gradient((max(w, 128), max(h, 128))).save(out, "PNG")
        data = out.getvalue()
        return data[: len(data) // 2]
    elif kind == "not_image":
        return b"this is a text file pretending to be a picture\n" * 20
    elif kind == "bomb":
        return bomb_png_bytes()
    else:
        raise ValueError(f"unknown image kind {kind!r}")
    return out.getvalue()


def make_image(path: str | Path, kind: str = "rgb_png", size: tuple[int, int] = (64, 48)) -> Path:
    """Write one image of ``kind`` at ``path`` (folders created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(kind, size))
    return path


def media_url(file_name: str) -> str:
    """How the legacy app referenced an image in extra_json["images"]."""
    return f"/media/{file_name}"


def upload_name(legacy_id: int, ms: int, original: str) -> str:
    """The file name the legacy app gave an image uploaded for a model at time ``ms``:
    ``model_<legacy id>_<ms>_<original base name, [^A-Za-z0-9._-] replaced by _>``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(original))
    return f"model_{legacy_id}_{ms}_{safe}"


# ---------------------------------------------------------------------------- a sample


def write_model_file(
    path: Path, size: int = 4096, seed: str = "", metadata: dict[str, str] | None = None
) -> str:
    """Write a small deterministic model file; return its sha256. With ``metadata``, it
    is a safetensors file (one LoRA tensor, that ``__metadata__``) padded to ``size``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(f"{path.name}:{seed}".encode()).digest()
    head = b""
    if metadata is not None:
        header = {
            "__metadata__": metadata,
            "lora_unet_down_blocks_0_attn1_to_q.lora_down.weight": {
                "dtype": "F16",
                "shape": [4, 320],
                "data_offsets": [0, 0],
            },
        }
        raw = json.dumps(header).encode()
        head = struct.pack("<Q", len(raw)) + raw
    body = (block * (size // len(block) + 1))[: max(size - len(head), 8)]
    data = head + body
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@dataclass
class SampleLegacy:
    """What ``build_sample_legacy`` made, and what an import of it must produce."""

    db: LegacyDbInfo
    images_dir: Path
    models_dir: Path
    shas: dict[int, str]  # legacy id -> sha256 (lowercase) of hashed models
    active_ids: list[int]  # legacy ids that become active models (the merged twin excluded)
    pending_ids: list[int]  # legacy ids that stay pending
    merged_pairs: list[tuple[int, int]]  # (kept legacy id, merged legacy id)
    expected: dict[str, int] = field(default_factory=dict)  # report counts


def build_sample_legacy(root: str | Path, *, wal: bool = False) -> SampleLegacy:
    """A small legacy install under ``root``: model files, an images folder and the DB.

    Legacy ids 1-3 are hashed (1 and 3 are the same file at two paths, with the hash in
    upper case on 3), 4-5 are unhashed (pending, real files on disk), 6 has a hash that is
    not 64 hex characters (pending). Tags 1-4; link (5, 99) and (42, 1) dangle.
    """
    root = Path(root)
    models_dir = root / "models"
    images_dir = root / "legacy_images"
    sha1 = write_model_file(models_dir / "checkpoints" / "one.safetensors", seed="1")
    shutil.copyfile(
        models_dir / "checkpoints" / "one.safetensors",
        models_dir / "checkpoints" / "one_copy.safetensors",
    )
    sdxl = {"ss_base_model_version": "sdxl_base_v1-0", "ss_network_module": "networks.lora"}
    sd1 = {"ss_base_model_version": "sd_v1", "ss_network_module": "networks.lora"}
    sha2 = write_model_file(models_dir / "loras" / "two.safetensors", seed="2", metadata=sdxl)
    write_model_file(models_dir / "loras" / "four.safetensors", seed="4", metadata=sd1)
    write_model_file(models_dir / "embeddings" / "five.pt", seed="5")
    write_model_file(models_dir / "vae" / "six.pt", seed="6")

    make_image(images_dir / "one.png", "rgb_png", (120, 80))
    make_image(images_dir / "one_b.jpg", "exif_rotated")
    make_image(images_dir / "two.png", "rgba")
    make_image(images_dir / "two_bad.png", "truncated")
    make_image(images_dir / "three.png", "palette")
    make_image(images_dir / "four.jpg", "cmyk")
    make_image(images_dir / "four_empty.png", "empty")

    def path_of(*parts: str) -> str:
        return str(models_dir.joinpath(*parts))

    tags = [
        LegacyTag(1, "checkpoint", "#ff0000"),
        LegacyTag(2, "lora", "#00ff00"),
        LegacyTag(3, "favourite", None, 1_600_000_000_000),
        LegacyTag(4, "embedding"),
    ]
    models = [
        LegacyModel(
            1,
            path_of("checkpoints", "one.safetensors"),
            "checkpoint",
            sha1,
            "one",
            4096,
            extra_json={
                "images": [media_url("one.png"), media_url("one_b.jpg")],
                "description": "first",
                "prompts": {"positive": "a cat", "negative": "blur"},
            },
        ),
        LegacyModel(
            2,
            path_of("loras", "two.safetensors"),
            "lora",
            sha2,
            "two",
            4096,
            extra_json={
                "images": [media_url("two.png"), media_url("two_bad.png"), media_url("gone.png")],
                "community_links": ["https://example.org/two"],
                "params": {"strength": 0.8},
                "custom": 1,
            },
        ),
        LegacyModel(
            3,
            path_of("checkpoints", "one_copy.safetensors"),
            "checkpoint",
            sha1.upper(),
            "one copy",
            4096,
            extra_json={"images": [media_url("three.png")]},
        ),
        LegacyModel(
            4,
            path_of("loras", "four.safetensors"),
            "lora",
            "",
            "four",
            4096,
            extra_json={
                "images": [media_url("four.jpg"), media_url("four_empty.png")],
                "description": "pending one",
            },
        ),
        LegacyModel(
            5,
            path_of("embeddings", "five.pt"),
            "embedding",
            "",
            "five",
            4096,
            extra_json="{not json",
        ),
        LegacyModel(
            6,
            path_of("vae", "six.pt"),
            "vae",
            "abc123",
            "six",
            4096,
            extra_json=["not", "an", "object"],
        ),
    ]
    links = [(1, 1), (1, 3), (2, 2), (3, 1), (3, 3), (3, 2), (4, 2), (5, 4), (5, 99), (42, 1)]
    info = build_legacy_db(
        root / "legacy" / "hikaze_mm.sqlite3", tags=tags, models=models, links=links, wal=wal
    )
    return SampleLegacy(
        db=info,
        images_dir=images_dir,
        models_dir=models_dir,
        shas={1: sha1, 2: sha2, 3: sha1},
        active_ids=[1, 2],
        pending_ids=[4, 5, 6],
        merged_pairs=[(1, 3)],
        expected={
            "tags": 4,
            "active_models": 2,
            "pending_models": 3,
            "merged_duplicates": 1,
            # valid legacy links imported (the two dangling ones excluded)
            "links": 8,
            "dangling_links": 2,
            # one.png, one_b.jpg, two.png, three.png
            "images_encoded": 4,
            # four.jpg
            "images_copied": 1,
            # two_bad.png (truncated), gone.png (missing), four_empty.png (empty)
            "image_errors": 3,
        },
    )


def import_into(
    services: Any, legacy_db: str | Path, images_dir: str | Path | None, **options: Any
):
    """Stage 1 of ``legacy_db`` (and its ``images_dir``) into the library of ``services``,
    with its work folder; ``options`` go to ``import_legacy_data`` (``workers``...)."""
    return import_legacy_data(
        legacy_db,
        images_dir,
        db=services.db,
        images=services.images,
        work_dir=services.config.legacy_work_dir,
        **options,
    )


def build_legacy(root: Path, n: int) -> tuple[Path, Path]:
    """A legacy library of ``n`` hashed models with one small preview each."""
    images = root / "imgs"
    models = []
    for i in range(1, n + 1):
        name = f"m{i}.png"
        make_image(images / name, "rgb_png", (160, 120 + i % 50))
        sha = hashlib.sha256(f"model{i}".encode()).hexdigest()
        extra = {"images": [f"/media/{name}"]}
        models.append(LegacyModel(i, f"/models/m{i}.safetensors", "lora", sha, extra_json=extra))
    links = [(i, 1 + i % 3) for i in range(1, n + 1)]
    tags = [LegacyTag(t, f"tag{t}") for t in range(1, 4)]
    info = build_legacy_db(root / "legacy.sqlite3", tags=tags, models=models, links=links)
    return info.path, images
