"""Legacy preview images: finding them, and encoding them on every core.

The legacy app referenced images in a model's metadata as URLs ``/media/<file name>``
whose files live flat in its images folder. ``image_refs`` collects every such reference
(from ``images`` and the other image-path keys), ``media_file_name`` turns one into a
plain file name (never a path: no traversal out of the images folder), and
``encode_legacy_image`` is the CPU job run in the worker processes: it reads the file
once, hashes the original (so the importer recognizes an image it has already imported)
and encodes the three WebP tiers with ``hikaze_mm.images.encode_tiers``.

The legacy app named every upload ``model_<legacy id>_<ms>_<safe name>`` and legacy ids
were never reused, so a file's name proves which row owns it. ``list_legacy_images``
reads the folder once per import (one ``os.scandir`` pass) into a ``LegacyImagesListing``:
the uploads of each legacy id (for rows whose ``extra_json`` was lost, see the importer)
and the set of files no row has claimed yet (reported as ``images_unreferenced``).

Processes beat threads here: Pillow's decoders hold the GIL, so on two cores a thread
pool reaches about 1.3x one core, worker processes about 2x (measured on 1024x1024 PNGs).
One worker per usable core: on two cores, 1,000 JPEG previews took 24.6 s with two workers,
33.6 s with three (the importer's own thread then waits for a core) and 43.3 s with one.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hikaze_mm.images import ImageError, encode_tiers
from hikaze_mm.legacy.workers import ProcessWorkers
from hikaze_mm.meta import IMAGE_PATH_KEYS

# Keys read in this order; ``images`` (a list) is the one the legacy app wrote.
_IMAGE_KEY_ORDER = ("images", "image", "preview", "previews", "preview_image")
_IMAGE_KEYS = (
    *(k for k in _IMAGE_KEY_ORDER if k in IMAGE_PATH_KEYS),
    *sorted(IMAGE_PATH_KEYS - set(_IMAGE_KEY_ORDER)),
)
_URL_KEYS = ("url", "path", "src", "file", "name")


def image_refs(*metas: Any) -> list[str]:
    """Every image reference in the given metadata dicts, in order, without repeats.

    An entry may be a string or an object with a ``url`` (or ``path``, ``src``...) string;
    anything else is returned as its ``repr`` so the importer can report it.
    """
    refs: list[str] = []
    for meta in metas:
        if not isinstance(meta, dict):
            continue
        for key in _IMAGE_KEYS:
            value = meta.get(key)
            items: Iterable[Any] = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):  # {"url": ...} and the like
                    item = next((item[k] for k in _URL_KEYS if isinstance(item.get(k), str)), item)
                if item is None or item == "":
                    continue
                ref = item if isinstance(item, str) else repr(item)
                if ref not in refs:
                    refs.append(ref)
    return refs


def media_file_name(ref: str) -> str:
    """The file name a legacy reference points to; ValueError if there is none.

    Accepts ``/media/a.png``, ``http://host/media/a%20b.png?v=2`` and a bare ``a.png``.
    Only the last path segment is used, so nothing outside the images folder is reached.
    """
    try:
        path = urlsplit(ref.strip()).path
    except ValueError:
        raise ValueError(f"not an image URL: {ref!r}") from None
    name = unquote(path).replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\x00" in name:
        raise ValueError(f"no file name in image URL {ref!r}")
    return name


def locate_image(images_dir: Path, ref: str) -> Path:
    """The file a reference names inside ``images_dir`` (it may not exist)."""
    return images_dir / media_file_name(ref)


# How the legacy app named an upload: model_<legacy id>_<ms>_<original name, made safe>.
UPLOAD_NAME = re.compile(r"model_(\d+)_(\d+)_(.*)", re.DOTALL)


@dataclass
class LegacyImagesListing:
    """The legacy images folder, read once: uploads by owner, and files not yet claimed.

    Names in ``unclaimed`` are ``os.path.normcase``d (a reference matches its file however
    the file system folds case). Hidden files (``.DS_Store``...) and anything that is not
    a regular file are left out.
    """

    uploads: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # id -> (ms, name)
    unclaimed: set[str] = field(default_factory=set)
    error: str | None = None  # why the folder could not be listed

    def claim(self, file_name: str) -> None:
        """A row references this file (by its metadata): it is not unreferenced."""
        self.unclaimed.discard(os.path.normcase(file_name))

    def take_uploads(self, legacy_id: int) -> list[str]:
        """The files the legacy app uploaded for ``legacy_id``, newest first (by the ``<ms>``
        in their names; ties by name), marked claimed. Each id's are handed out once."""
        found = self.uploads.pop(legacy_id, [])
        found.sort(key=lambda item: (-item[0], item[1]))
        for _ms, name in found:
            self.claim(name)
        return [name for _ms, name in found]


def list_legacy_images(folder: Path) -> LegacyImagesListing:
    """Read ``folder`` in one ``os.scandir`` pass (never per row); see ``LegacyImagesListing``.

    A folder that cannot be listed gives an empty listing with ``error`` set.
    """
    listing = LegacyImagesListing()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                try:
                    if not entry.is_file():
                        continue
                except OSError:
                    continue
                listing.unclaimed.add(os.path.normcase(name))
                upload = UPLOAD_NAME.fullmatch(name)
                if upload:
                    owner, ms = int(upload.group(1)), int(upload.group(2))
                    listing.uploads.setdefault(owner, []).append((ms, name))
    except OSError as exc:
        return LegacyImagesListing(error=f"cannot list {folder}: {exc.strerror or exc}")
    return listing


@dataclass(frozen=True)
class EncodedImage:
    source_sha: str  # SHA-256 of the original file
    tiers: dict[str, bytes]


def regular_file_stat(path: str | os.PathLike[str]) -> os.stat_result:
    """The stat of a regular file, or ImageError saying why the path is not one."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageError("not a regular file")
    return info


def read_image_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a regular file (at most ``max_bytes`` + 1 of them, so ``encode_tiers``
    still rejects a file that grew), or ImageError with a reason."""
    info = regular_file_stat(path)
    if info.st_size > max_bytes:  # said here with the file's real size
        raise ImageError(f"file is {info.st_size} bytes, over the {max_bytes} byte limit")
    try:
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None


def encode_legacy_image(path: str, max_pixels: int, max_bytes: int) -> EncodedImage:
    """Worker job: hash and encode one legacy image; ImageError if it is unusable."""
    data = read_image_file(path, max_bytes)
    tiers = encode_tiers(data, max_pixels=max_pixels, max_bytes=max_bytes)
    return EncodedImage(hashlib.sha256(data).hexdigest(), tiers)


def default_workers() -> int:
    """One per core this process may run on (a container's CPU set, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def make_encoder_pool(workers: int) -> Executor:
    """Worker processes when ``workers`` > 1 (see ``legacy_workers``), else one thread."""
    if workers <= 1:
        return ThreadPoolExecutor(1, thread_name_prefix="legacy-encode")
    return ProcessWorkers(workers)
