"""``ImagesService``: the image API's blocking work: tiers, uploads, deletion, order,
originals.

Naming and sequence numbers stay in ``hikaze_mm.images.ImageStore``; this module only
maps validated public names onto it and adds HTTP-facing details: ETags (from size and
mtime_ns, so a changed file gets a new tag) and ``If-None-Match`` handling that answers
without reading the file. Every function here blocks; handlers call them via ``run_sync``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hikaze_mm.database import normalize_sha256
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import NotFoundError
from hikaze_mm.images import ImageStore, check_quality, parse_public_name, public_name
from hikaze_mm.library.requests import ImageOrder
from hikaze_mm.params import parse_index

PENDING_CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@dataclass(frozen=True)
class ImageFile:
    """A file to send: ``data`` is None when the client's copy is current (304)."""

    etag: str
    content_type: str
    data: bytes | None


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of ``If-None-Match`` against our (strong) tag."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def read_image_file(path: Path, content_type: str, if_none_match: str | None) -> ImageFile:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size == 0:  # a seq claimed by an upload still being written
                raise NotFoundError(f"no image {path.name}")
            etag = _etag(st)
            if etag_matches(if_none_match, etag):
                return ImageFile(etag, content_type, None)
            return ImageFile(etag, content_type, f.read())
    except (FileNotFoundError, IsADirectoryError):
        raise NotFoundError(f"no image {path.name}") from None


def parse_seq(raw: str) -> int:
    return parse_index(raw, "seq", max_digits=6)


class ImagesService:
    """Model images as the API serves them: tiers, uploads, deletion, pending originals."""

    def __init__(self, db: Library, images: ImageStore) -> None:
        self.db = db
        self.images = images

    def read_tier(self, filename: str, quality: str, if_none_match: str | None = None) -> ImageFile:
        """``<hash>[_<seq>].webp`` at one quality; NotFoundError when absent."""
        sha, seq = parse_public_name(filename)
        path = self.images.tier_path(sha, seq, check_quality(quality))
        return read_image_file(path, "image/webp", if_none_match)

    def sample_names(self, sha256: str) -> list[str]:
        """``["<hash>_0.webp", ...]`` for the images on disk (an unknown hash has none)."""
        return self.images.image_names(sha256)

    def require_model(self, sha256: str) -> str:
        sha = normalize_sha256(sha256)
        if not self.db.models.exists(sha):
            raise NotFoundError(f"no model {sha}")
        return sha

    def upload(self, sha256: str, data: bytes) -> dict[str, Any]:
        """Validate and encode an image into the three tiers at the model's next seq.

        The caller checks the model first (``require_model``, before reading the upload);
        it is checked again after encoding, in case it was deleted meanwhile.
        """
        sha = normalize_sha256(sha256)
        seq = self.images.add_image(sha, data)
        if not self.db.models.exists(sha):  # the model was deleted while we encoded
            self.images.delete_image(sha, seq)
            raise NotFoundError(f"no model {sha}")
        return {"sha256": sha, "seq": seq, "name": public_name(sha, seq)}

    def delete(self, sha256: str, seq: int) -> dict[str, Any]:
        sha = normalize_sha256(sha256)
        if not self.images.delete_image(sha, seq):
            raise NotFoundError(f"no image {public_name(sha, seq)}")
        return {"sha256": sha, "seq": seq, "deleted": True}

    def set_order(self, sha256: str, order: ImageOrder) -> dict[str, Any]:
        """Show the model's images in that order (the first is the cover). It must be a
        permutation of the current images (else 409); nothing changes on any error.
        Answers ``{"sha256", "images", "cover_image"}`` in the new order."""
        sha = self.require_model(sha256)
        seqs = self.images.set_order(sha, list(order.seqs))
        names = [public_name(sha, seq) for seq in seqs]
        return {"sha256": sha, "images": names, "cover_image": names[0] if names else None}

    def read_pending(self, pending_id: int, n: int, if_none_match: str | None = None) -> ImageFile:
        """A pending model's original image number ``n`` with its own content type."""
        prefix = f"{int(pending_id)}_{int(n)}."
        for path in self.images.pending_images(pending_id):
            if path.name.startswith(prefix):
                content_type = PENDING_CONTENT_TYPES.get(path.suffix.lower())
                if content_type is None:
                    break
                return read_image_file(path, content_type, if_none_match)
        raise NotFoundError(f"pending import {pending_id} has no image {n}")
