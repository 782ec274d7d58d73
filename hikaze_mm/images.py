"""Preview images: validation, WebP tiers, and the one home of image naming.

Active images live flat in ``<data>/images/`` as ``<sha256>_<seq>_<quality>.webp`` with
quality ``high`` (at most 2 MP, WebP q80), ``medium`` and ``low`` (thumbnails). Pending
images (originals of models not hashed yet) live in ``<data>/images/pending/`` as
``<pending id>_<n>.<ext>``.

Naming and sequence logic lives only here (``ImageStore``):

* A sequence is claimed by creating its ``high`` file with O_EXCL, so two uploads, two
  threads or two processes never get the same seq. The tiers are written to temporary
  files and renamed into place, ``high`` last, so a reader never sees half a file.
* A crash can leave an empty claim or ``.tmp`` files; ``cleanup_partial()`` removes them.
* The order of a model's images (the first is its cover) is by seq unless the user chose
  one: then ``<data>/images/order/<sha256>.json`` holds ``[seq, ...]``. The tier files are
  never renamed to reorder, so a reorder cannot lose an image, and an image's URL keeps
  its content (browsers cache tiers for days). The order file is replaced atomically
  (temporary file, fsync, rename): a crash leaves the old order or the new one. Seqs it
  does not name (new uploads) follow in seq order; seqs no longer on disk are skipped.
* A folder that a studio's hosts share has a catalog (``ImageSeqStoreContract``): it numbers the
  images and keeps the orders. An order file (copied from a machine's own library) still
  counts for a model the catalog has no order for, until an order is chosen.

CPU work (``encode_tiers``) is a plain function of bytes or a path, so callers can run it
in a thread or a process pool, off the event loop.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from hikaze_mm.database import normalize_sha256
from hikaze_mm.database.interfaces import ImageSeqStoreContract
from hikaze_mm.errors import ConflictError, ValidationError

QUALITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class Tier:
    max_pixels: int
    quality: int


TIERS: dict[str, Tier] = {
    "high": Tier(2_000_000, 80),
    "medium": Tier(400_000, 72),
    "low": Tier(65_536, 60),
}
# The WebP encoder's effort, 0 (fastest) to 6; Pillow's default is 4. Measured (issue 13) on
# 1024x1024 JPEG previews, decode to three tiers: 90-94 ms at 4, 47 at 2, 39 at 1, 35 at 0 (3
# costs as much as 4: libwebp's rate-distortion search starts there). Against 4, methods 0
# and 1 give the same pixels as each other, 0.1-0.3 dB PSNR below 4 (0.6 on the smallest
# tier of a synthetic image); files are 10-20 % larger on photos (0 a few % more than 1).
# Method 0 packs an alpha plane poorly (+75 % against 1), so images with alpha use 1.
WEBP_METHOD = 0
WEBP_METHOD_ALPHA = 1
DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
PENDING_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")

# Public names a client may ask for: "<hash>.webp" (seq 0) or "<hash>_<seq>.webp".
PUBLIC_NAME_RE = re.compile(r"([0-9a-f]{64})(?:_(\d{1,6}))?\.webp")
_PENDING_FILE_RE = re.compile(r"(\d+)_(\d+)(\.[a-z]+)")
_TIER_FILE_RE = re.compile(r"([0-9a-f]{64})_(\d+)_(high|medium|low)\.webp")
_ORDER_FILE_RE = re.compile(r"([0-9a-f]{64})\.json")
ORDER_DIR = "order"

ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValidationError):
    """A file that is not a usable image: the reason is in ``detail``."""

    error = "Bad image"


def _open_checked(
    source: bytes | str | os.PathLike[str], max_pixels: int, max_bytes: int
) -> Image.Image:
    """Open and fully decode an image, or raise ImageError with a reason."""
    return _decode(source, max_pixels, max_bytes)[0]


def _decode(
    source: bytes | str | os.PathLike[str],
    max_pixels: int,
    max_bytes: int,
    *,
    draft_pixels: int | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    """``_open_checked``, and the image's full size.

    With ``draft_pixels``, a JPEG at least twice as wide and high as it needs to be to fill
    that many pixels is decoded by libjpeg at 1/2, 1/4 or 1/8 of its size, never smaller
    than that (``_fit_size`` of its full size): 2.5-3x cheaper than a full decode and resize.
    """
    if isinstance(source, bytes):
        size = len(source)
        stream: io.BytesIO | str = io.BytesIO(source)
    else:
        try:
            size = os.stat(source).st_size
        except FileNotFoundError:
            raise ImageError("file not found") from None
        except OSError as exc:
            raise ImageError(f"cannot read: {exc.strerror or exc}") from None
        stream = str(source)
    if size == 0:
        raise ImageError("empty file")
    if size > max_bytes:
        raise ImageError(f"file is {size} bytes, over the {max_bytes} byte limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(stream)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{width}x{height} is over {max_pixels} pixels (decompression bomb)"
                )
            if draft_pixels is not None and img.format == "JPEG":
                # Uniform scaling: an EXIF rotation afterwards does not change what is needed.
                fit_w, fit_h = _fit_size(width, height, draft_pixels)
                if fit_w * 2 <= width and fit_h * 2 <= height:
                    img.draft(img.mode, (fit_w, fit_h))
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("image too large (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from None
    return img, (width, height)


def _orientation(img: Image.Image) -> int:
    try:  # a broken EXIF block must not lose the image
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1
    return value if value in (1, 2, 3, 4, 5, 6, 7, 8) else 1


def _normalized(img: Image.Image) -> Image.Image:
    """Upright, 8-bit RGB or RGBA. It may be ``img`` itself, not a copy (so the caller
    keeps ``img`` open while it uses the result); metadata is dropped by the encoder."""
    if _orientation(img) != 1:
        with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
            img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clip.
        img = img.point(lambda v: v / 256 if mode.startswith("I;16") else v).convert("L")
        mode = "L"
    if mode == "F":
        img = img.convert("L")
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode in ("LA", "La", "RGBa"):
        img = img.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        img = img.convert("RGB")  # CMYK, YCbCr, L, 1, LAB, HSV ...
    if img.mode == "RGBA" and img.getextrema()[3][0] == 255:
        img = img.convert("RGB")  # fully opaque: drop the useless alpha channel
    return img


def _fit_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The size of a tier of at most ``max_pixels``, same aspect, never upscaled."""
    if width * height <= max_pixels:
        return width, height
    scale = (max_pixels / (width * height)) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode_tiers(
    source: bytes | str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, bytes]:
    """Validate an image and encode its three WebP tiers; raise ImageError if unusable.

    One decode (a draft one for a JPEG much larger than ``high``) and no copies; each tier
    is resized (Lanczos) from the one before, and encoded with ``WEBP_METHOD`` (or
    ``WEBP_METHOD_ALPHA``).
    """
    first = TIERS[QUALITIES[0]].max_pixels
    raw, (width, height) = _decode(source, max_pixels, max_bytes, draft_pixels=first)
    with raw:  # closing it frees its pixels, which ``current`` may share
        decoded = raw.size
        current = _normalized(raw)
        if current.size != decoded:  # turned a quarter by its EXIF orientation
            width, height = height, width
        method = WEBP_METHOD_ALPHA if current.mode == "RGBA" else WEBP_METHOD
        tiers: dict[str, bytes] = {}
        for quality in QUALITIES:  # largest first, each tier resized from the one before
            tier = TIERS[quality]
            # The first tier's size comes from the full size, so a draft decode cannot
            # change it; the others from the tier before, as always.
            width, height = _fit_size(width, height, tier.max_pixels)
            current = _fit(current, (width, height))
            out = io.BytesIO()
            current.save(
                out,
                "WEBP",
                quality=tier.quality,
                method=method,
                exif=b"",
                icc_profile=None,
            )
            tiers[quality] = out.getvalue()
    return tiers


def validate_image(
    source: bytes | str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> str:
    """Check that ``source`` is a complete, decodable image; return its format (e.g. PNG)."""
    with _open_checked(source, max_pixels, max_bytes) as img:
        return (img.format or "").upper()


def public_name(sha256: str, seq: int) -> str:
    return f"{sha256}_{seq}.webp"


def parse_public_name(name: str) -> tuple[str, int]:
    """``<hash>.webp`` -> (hash, 0); ``<hash>_<seq>.webp`` -> (hash, seq); else ValidationError."""
    match = PUBLIC_NAME_RE.fullmatch(name)
    if not match:
        raise ValidationError(f"not an image name: {name!r}")
    return match.group(1), int(match.group(2) or 0)


def check_quality(quality: str) -> str:
    if quality not in QUALITIES:
        raise ValidationError(f"quality must be one of {', '.join(QUALITIES)}, not {quality!r}")
    return quality


class ImageStore:
    """The image folders of one data dir."""

    def __init__(
        self,
        images_dir: Path,
        pending_dir: Path,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        catalog: ImageSeqStoreContract | None = None,
    ) -> None:
        """``catalog``: for a folder that several hosts write, the catalog numbers the
        models' images and keeps their order (``ImageSeqStore``); else exclusive creates
        number them and order files keep the order."""
        self.images_dir = Path(images_dir)
        self._catalog = catalog
        self.pending_dir = Path(pending_dir)
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._index: dict[str, set[int]] = {}
        self._index_mtime: int | None = None
        self.order_dir = self.images_dir / ORDER_DIR
        self._orders: dict[str, list[int]] = {}
        self._file_orders: dict[str, list[int]] = {}
        self._orders_mtime: int | None = None

    # ------------------------------------------------------------ naming
    def tier_path(self, sha256: str, seq: int, quality: str) -> Path:
        sha = normalize_sha256(sha256)
        return self.images_dir / f"{sha}_{int(seq)}_{check_quality(quality)}.webp"

    # ------------------------------------------------------------ index of what is on disk
    def _refresh_index(self) -> None:
        """Rebuild the seq index when the folder changed (any create, rename or delete)."""
        mtime = os.stat(self.images_dir).st_mtime_ns
        if mtime == self._index_mtime:
            return
        index: dict[str, set[int]] = {}
        with os.scandir(self.images_dir) as entries:
            for entry in entries:
                match = _TIER_FILE_RE.fullmatch(entry.name)
                if match and match.group(3) == "high":
                    try:
                        if entry.stat().st_size == 0:
                            continue  # a claim whose image is not written yet
                    except OSError:
                        continue
                    index.setdefault(match.group(1), set()).add(int(match.group(2)))
        self._index = index
        self._index_mtime = mtime

    def _refresh_orders(self) -> None:
        """Reload the chosen orders: the order files' when their folder changed (each
        write is a rename), under the catalog's (one query) for a shared folder. A model
        the catalog has no order for keeps its order file's: one copied into the shared
        folder from a machine's own library keeps its cover."""
        files = self._order_files()
        self._orders = files if self._catalog is None else {**files, **self._catalog.orders()}

    def _order_files(self) -> dict[str, list[int]]:
        try:
            mtime = os.stat(self.order_dir).st_mtime_ns
        except FileNotFoundError:
            self._file_orders, self._orders_mtime = {}, None
            return {}
        if mtime == self._orders_mtime:
            return self._file_orders
        orders: dict[str, list[int]] = {}
        with os.scandir(self.order_dir) as entries:
            for entry in entries:
                match = _ORDER_FILE_RE.fullmatch(entry.name)
                if not match:
                    continue
                try:
                    with open(entry.path, encoding="utf-8") as f:
                        raw = json.load(f)
                except (OSError, ValueError):
                    continue  # unreadable: the model's images fall back to seq order
                if isinstance(raw, list):
                    seqs = [v for v in raw if isinstance(v, int) and not isinstance(v, bool)]
                    orders[match.group(1)] = list(dict.fromkeys(seqs))
        self._file_orders, self._orders_mtime = orders, mtime
        return orders

    def _ordered(self, sha: str) -> list[int]:
        """A model's seqs on disk in display order; call with the lock held, both fresh."""
        found = self._index.get(sha)
        if not found:
            return []
        chosen = [seq for seq in self._orders.get(sha, ()) if seq in found]
        placed = set(chosen)
        return chosen + sorted(seq for seq in found if seq not in placed)

    def list_seqs(self, sha256: str) -> list[int]:
        """The sequence numbers of a model's complete images, in display order (the first
        is the cover): the chosen order, then any others by seq."""
        sha = normalize_sha256(sha256)
        with self._lock:
            self._refresh_index()
            self._refresh_orders()
            return self._ordered(sha)

    def image_names(self, sha256: str) -> list[str]:
        sha = normalize_sha256(sha256)
        return [public_name(sha, seq) for seq in self.list_seqs(sha)]

    def image_counts(self, sha256s: Iterable[str]) -> dict[str, int]:
        with self._lock:
            self._refresh_index()
            return {s: len(self._index.get(s, ())) for s in sha256s}

    def counts_and_covers(self, sha256s: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """``{sha256: (image count, first image name in display order, or None)}``, in one
        pass of the in-memory index and orders (no disk reads unless a folder changed)."""
        with self._lock:
            self._refresh_index()
            self._refresh_orders()
            firsts = {s: (len(self._index.get(s, ())), self._ordered(s)[:1]) for s in sha256s}
        return {
            s: (n, public_name(s, first[0]) if first else None) for s, (n, first) in firsts.items()
        }

    # ------------------------------------------------------------ order
    def _order_path(self, sha: str) -> Path:
        return self.order_dir / f"{sha}.json"

    def _write_order(self, sha: str, seqs: list[int] | None) -> None:
        """Replace (or with None remove) a model's order: in the catalog (and its order
        file is removed), or its order file atomically."""
        path = self._order_path(sha)
        if self._catalog is not None:
            self._catalog.set_order(sha, seqs)
            seqs = None  # an order file copied from a machine's library is superseded
        if seqs is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        self.order_dir.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(seqs, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            fd = os.open(self.order_dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def set_order(self, sha256: str, order: list[int]) -> list[int]:
        """Show a model's images in ``order`` (the first is the cover); return the new order.

        ``order`` must name each of the model's current images exactly once; anything else
        raises ConflictError (the images changed meanwhile, or a stale list) and changes
        nothing. Only the order file is written: no image file moves.
        """
        sha = normalize_sha256(sha256)
        seqs = [int(seq) for seq in order]
        with self._lock:
            self._refresh_index()
            self._refresh_orders()
            current = self._ordered(sha)
            if len(set(seqs)) != len(seqs):
                raise ValidationError("order names an image twice")
            if sorted(seqs) != sorted(current):
                missing = sorted(set(current) - set(seqs))
                unknown = sorted(set(seqs) - set(current))
                raise ConflictError(
                    "order must name each of the model's current images once "
                    f"(current {current}; missing {missing}; unknown {unknown})"
                )
            # Seq order needs no file; the file drops when it would say nothing.
            self._write_order(sha, None if seqs == sorted(seqs) else seqs)
            self._orders_mtime = None  # reread on next use (mtime may not tick)
            return seqs

    def snapshot(self, pending_ids: Iterable[int]) -> StoreSnapshot:
        """What a batch of promotions needs from the folders, from one listing of each:
        the hashes with any tier file (complete, partial or a claim) or an order file,
        and the original images of the pending ids (the folder's mtime is taken first,
        so a change during the listing shows as a changed folder)."""
        pending_mtime = os.stat(self.pending_dir).st_mtime_ns
        originals = self._pending_files(pending_ids)
        found = set(_matching(self.images_dir, _TIER_FILE_RE))
        if self.order_dir.is_dir():
            found.update(_matching(self.order_dir, _ORDER_FILE_RE))
        return StoreSnapshot(self, frozenset(found), originals, pending_mtime)

    def _tier_files(self, sha: str) -> list[re.Match[str]]:
        prefix = f"{sha}_"
        matches = []
        with os.scandir(self.images_dir) as entries:
            for entry in entries:
                if entry.name.startswith(prefix):
                    match = _TIER_FILE_RE.fullmatch(entry.name)
                    if match:
                        matches.append(match)
        return matches

    # ------------------------------------------------------------ writing
    def claim_seq(self, sha256: str) -> int:
        """Reserve the next free seq (the catalog's, given a ``catalog``) by creating its
        empty ``high`` file (O_EXCL).

        The caller fills it with ``write_tiers(sha, tiers, target_seq=seq)``, or releases it
        with ``delete_image``; until then it is invisible to readers (an empty claim), and
        ``cleanup_partial`` removes it if the process dies.
        """
        sha = normalize_sha256(sha256)
        # Start after the seqs this process knows of, without listing the folder (that
        # would make every claim cost O(images) and an import quadratic). The index may be
        # stale or not loaded yet: O_EXCL skips every seq that exists, so it is only a hint.
        # With a catalog, the number is the catalog's (never given twice, across hosts);
        # O_EXCL then only steps over files older than the catalog's count.
        with self._lock:
            known = self._index.get(sha)
        seq = max(known) + 1 if known else 0
        while True:
            if self._catalog is not None:
                seq = self._catalog.claim(sha, seq)
            try:
                fd = os.open(self.tier_path(sha, seq, "high"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                seq += 1
                continue
            os.close(fd)
            return seq

    def write_tiers(
        self, sha256: str, tiers: dict[str, bytes], target_seq: int | None = None
    ) -> int:
        """Store encoded tiers at ``target_seq`` (overwriting it) or at a newly claimed seq."""
        sha = normalize_sha256(sha256)
        if set(tiers) != set(QUALITIES):
            raise ValueError("tiers must hold high, medium and low")
        seq = self.claim_seq(sha) if target_seq is None else int(target_seq)
        if seq < 0:
            raise ValidationError("seq must be >= 0")
        for quality in ("low", "medium", "high"):
            final = self.tier_path(sha, seq, quality)
            tmp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as f:
                f.write(tiers[quality])
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        with self._lock:
            self._index.setdefault(sha, set()).add(seq)
        return seq

    def add_image(
        self, sha256: str, source: bytes | str | os.PathLike[str], target_seq: int | None = None
    ) -> int:
        """Validate, encode and store one image for a model; return its seq."""
        tiers = encode_tiers(source, max_pixels=self.max_pixels, max_bytes=self.max_bytes)
        return self.write_tiers(sha256, tiers, target_seq)

    def promote_pending_image(
        self, source: str | os.PathLike[str], sha256: str, target_seq: int | None = None
    ) -> int:
        """Encode a pending original into tiers at ``target_seq`` (None: the next free seq).

        The pending file is not removed: the caller removes it after its DB commit.
        """
        return self.add_image(sha256, source, target_seq)

    def move_image(self, sha256: str, src_seq: int, dst_seq: int) -> None:
        """Rename an image's tiers from one seq onto another, replacing what was there.

        ``low`` and ``medium`` go first and ``high`` last, so the image at ``dst_seq`` is
        replaced as a whole; a tier already moved is skipped, so a retry after a crash
        completes the move.
        """
        sha = normalize_sha256(sha256)
        for quality in ("low", "medium", "high"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(
                    self.tier_path(sha, src_seq, quality), self.tier_path(sha, dst_seq, quality)
                )

    def delete_image(self, sha256: str, seq: int) -> bool:
        sha = normalize_sha256(sha256)
        removed = False
        for quality in ("high", "medium", "low"):  # high first: the image disappears at once
            try:
                os.unlink(self.tier_path(sha, seq, quality))
                removed = True
            except FileNotFoundError:
                pass
        self._drop_from_order(sha, int(seq))
        return removed

    def _drop_from_order(self, sha: str, seq: int) -> None:
        """Forget a deleted seq in the chosen order, so a later image reusing it goes last."""
        with self._lock:
            self._refresh_orders()
            chosen = self._orders.get(sha)
            if not chosen or seq not in chosen:
                return
            rest = [s for s in chosen if s != seq]
            self._write_order(sha, rest if rest != sorted(rest) else None)
            self._orders_mtime = None

    def delete_all(self, sha256: str) -> int:
        sha = normalize_sha256(sha256)
        seqs = {int(m.group(2)) for m in self._tier_files(sha)}
        for seq in seqs:
            self.delete_image(sha, seq)
        with self._lock:
            self._write_order(sha, None)
            self._orders_mtime = None
        return len(seqs)

    def cleanup_partial(self, older_than_s: float = 0) -> int:
        """Remove leftovers of interrupted writes: ``.tmp`` files and empty claims; with
        ``older_than_s``, only those not changed for that long (in a folder several hosts
        write, another host's write in progress is no leftover)."""
        removed = 0
        before = time.time() - older_than_s
        folders = [self.images_dir, self.pending_dir]
        if self.order_dir.is_dir():
            folders.append(self.order_dir)
        for folder in folders:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    partial = entry.name.endswith(".tmp") or (
                        _TIER_FILE_RE.fullmatch(entry.name) and entry.stat().st_size == 0
                    )
                    if partial and (not older_than_s or entry.stat().st_mtime < before):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
                            removed += 1
        return removed

    # ------------------------------------------------------------ pending originals
    def _pending_files(self, pending_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
        """``(n, file name)`` of each pending model's originals, sorted by n; one listing."""
        wanted = {int(i) for i in pending_ids}
        found: dict[int, list[tuple[int, str]]] = {i: [] for i in wanted}
        with os.scandir(self.pending_dir) as entries:
            for entry in entries:
                match = _PENDING_FILE_RE.fullmatch(entry.name)
                if match and int(match.group(1)) in wanted and match.group(3) in PENDING_EXTENSIONS:
                    found[int(match.group(1))].append((int(match.group(2)), entry.name))
        return {i: sorted(files) for i, files in found.items()}

    def pending_images(self, pending_id: int) -> list[Path]:
        """A pending model's original images, ordered by their index n."""
        return [
            self.pending_dir / name for _, name in self._pending_files([pending_id])[pending_id]
        ]

    def pending_image_names(self, pending_ids: Iterable[int]) -> dict[int, list[str]]:
        """The original image names of several pending models, in one folder listing."""
        return {
            i: [name for _, name in files] for i, files in self._pending_files(pending_ids).items()
        }

    def add_pending_image(
        self, pending_id: int, source: str | os.PathLike[str], n: int | None = None
    ) -> Path:
        """Validate and copy an original image for a pending model as ``<id>_<n>.<ext>``.

        With ``n`` given the copy is idempotent (an existing ``<id>_<n>`` is replaced).
        """
        fmt = validate_image(source, max_pixels=self.max_pixels, max_bytes=self.max_bytes)
        ext = {
            "JPEG": ".jpg",
            "PNG": ".png",
            "WEBP": ".webp",
            "GIF": ".gif",
            "BMP": ".bmp",
            "TIFF": ".tif",
        }.get(fmt)
        if ext is None:
            ext = Path(source).suffix.lower()
            if ext not in PENDING_EXTENSIONS:
                raise ImageError(f"unsupported image format {fmt or ext!r}")
        if n is not None:  # the caller chose n: no listing, no lock
            return self._copy_pending(int(pending_id), int(n), source, ext)
        with self._lock:
            existing = self._pending_files([pending_id])[int(pending_id)]
            n = existing[-1][0] + 1 if existing else 0
            return self._copy_pending(int(pending_id), n, source, ext)

    def _copy_pending(
        self, pending_id: int, n: int, source: str | os.PathLike[str], ext: str
    ) -> Path:
        """Copy ``source`` to ``<id>_<n><ext>`` atomically, replacing ``<id>_<n>`` of any type."""
        final = self.pending_dir / f"{pending_id}_{n}{ext}"
        for other in PENDING_EXTENSIONS:
            if other != ext:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.pending_dir / f"{pending_id}_{n}{other}")
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, final)
        return final


def _matching(folder: Path, pattern: re.Pattern[str]) -> Iterator[str]:
    """The hash (first group) of each name in ``folder`` that ``pattern`` matches."""
    with os.scandir(folder) as entries:
        names = [entry.name for entry in entries]
    for match in map(pattern.fullmatch, names):
        if match:
            yield match.group(1)


class StoreSnapshot:
    """One listing of an image store's folders, taken before a batch of promotions (a
    scan's) so that no promotion lists them once per model (``ImageStore.snapshot``)."""

    def __init__(
        self,
        store: ImageStore,
        tiered: frozenset[str],
        originals: dict[int, list[tuple[int, str]]],
        pending_mtime: int,
    ) -> None:
        self._store = store
        self._tiered = tiered
        self._originals = originals
        self._pending_mtime = pending_mtime

    def may_have_tiers(self, sha256: str) -> bool:
        """False when ``sha256`` had no tier file and no order file at the snapshot."""
        return normalize_sha256(sha256) in self._tiered

    def pending_images(self, pending_id: int) -> list[Path]:
        """``ImageStore.pending_images`` from the snapshot while the pending folder is
        unchanged since (one ``stat``); listed again once it changed."""
        pid = int(pending_id)
        files = self._originals.get(pid)
        if files is None or os.stat(self._store.pending_dir).st_mtime_ns != self._pending_mtime:
            return self._store.pending_images(pid)
        return [self._store.pending_dir / name for _, name in files]
