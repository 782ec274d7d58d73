"""Sidecar files of other tools, read into the model they sit next to.

Kinds (``<stem>`` is the model file's name without its extension):

* ``<stem>.civitai.info`` (Civitai Helper): Civitai's model-version JSON;
* ``<stem>.metadata.json`` (ComfyUI-Lora-Manager): ``civitai`` (a model version),
  ``base_model``, ``notes``, ``modelDescription``, ``usage_tips`` (JSON text with
  ``strength``);
* ``<stem>.cm-info.json`` (Stability Matrix): ``ModelId``, ``VersionId``, ``ModelName``,
  ``VersionName``, ``BaseModel``, ``TrainedWords``, ``Nsfw``;
* ``<stem>.json`` (A1111's extra-networks user metadata): ``activation text``,
  ``preferred weight``, ``notes``, ``sd version``;
* previews ``<stem>.preview.{png,jpg,jpeg,webp}`` and ``<stem>.{png,jpg,jpeg,webp}``.

They fill ``meta.trigger_words``, ``meta.preferred_weight``, ``meta.description`` and
``meta.civitai`` when empty (``fill``: never a user's field; a sidecar may replace what it
filled itself, when it changed), recording ``meta.sources[field] = "sidecar:<kind>"``; a
base replaces an empty or probed one (never one a user, Civitai or another sidecar set).
Previews become image tiers unless their decoded pixels are already the model's
(``image_pixels`` keeps the digests). A bad sidecar (broken JSON, wrong types, over
``MAX_JSON_BYTES`` or the image store's cap, not an image) is a problem of kind
``sidecar``, skipped. ``sidecar_files`` keeps each one's size and mtime: the scanner
reads only those that changed (see ``Scanner``), a promotion reads all of a new model's.

Finding them never lists a folder once per model: a scan hands its promotions the
sidecars its walk found (``SidecarIndex``); a promotion outside a scan looks its stem up
in a listing of the folder indexed by stem (``FolderSidecars``), reused while the folder
is unchanged (``RecentFolders``).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from hikaze_mm.database.interfaces import Library
from hikaze_mm.images import ImageError, ImageStore
from hikaze_mm.library.civitai_schema import (
    MAX_BASE_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_TEXT_CHARS,
    CivitaiBadResponse,
    html_to_text,
    parse_version,
)
from hikaze_mm.library.fill import fill_empty, replaces_base
from hikaze_mm.library.scan_walk import SIDECAR_ENDINGS, SIDECAR_SUFFIXES, WalkProblem
from hikaze_mm.meta import (
    MAX_TRIGGER_WORD_CHARS,
    MAX_TRIGGER_WORDS,
    preferred_weight_of,
    sources_of,
    trigger_words_of,
)
from hikaze_mm.probe import SD1, SD2, SDXL

MAX_JSON_BYTES = 1024 * 1024
SOURCE_PREFIX = "sidecar:"
PROBE_SOURCE = "probe"  # ``meta.sources.base`` of a base read from the header
PREVIEW = "preview"
CIVITAI_URL = "https://civitai.com"  # sidecars describe civitai.com, whatever we look up
# Kinds by suffix, in the order they fill fields (the first one wins an empty field).
KINDS: dict[str, str] = {
    ".civitai.info": "civitai.info",
    ".metadata.json": "metadata.json",
    ".cm-info.json": "cm-info.json",
    ".json": "json",
}
MAX_RECENT_FOLDERS = 8  # listings a reader keeps (``RecentFolders``)
_ORDER = {kind: n for n, kind in enumerate([*KINDS.values(), PREVIEW])}
_A1111_BASES = {"SD1": SD1, "SD2": SD2, "SDXL": SDXL}
# (sidecar path, kind, size, mtime_ns)
Item = tuple[str, str, int, int]


class SidecarError(ValueError):
    """A sidecar that cannot be used; the reason is the message."""


@dataclass
class Fields:
    """What one metadata sidecar says, in ``meta`` terms."""

    values: list[tuple[str, Any]] = field(default_factory=list)
    base: str | None = None


def kind_of(name: str, stem: str) -> str:
    return KINDS.get(name[len(stem) :].lower(), PREVIEW)


def source_of(kind: str) -> str:
    return SOURCE_PREFIX + kind


def list_folder(folder: str) -> FolderSidecars | None:
    """One listing of ``folder``, indexed by sidecar stem; None when it cannot be listed.
    (A scan hands down its walk's listings instead: ``SidecarIndex``.)"""
    try:
        with os.scandir(folder or ".") as it:
            return FolderSidecars(it)
    except OSError:
        return None


class FolderSidecars:
    """A folder's entries that may be sidecars, indexed once by the stem each one would
    be the sidecar of (one name may fit several: ``a.preview.png`` is a preview of ``a``
    and of ``a.preview``); ``of(stem)`` then costs a lookup, not a pass over the folder."""

    def __init__(self, entries: Iterable[os.DirEntry[str]]) -> None:
        self._by_stem: dict[str, list[tuple[str, str]]] = {}  # stem -> [(path, kind)]
        for entry in entries:
            name = entry.name
            lower = name.lower()
            if not lower.endswith(SIDECAR_ENDINGS):
                continue
            for suffix in SIDECAR_SUFFIXES:
                if lower.endswith(suffix):
                    stem = name[: -len(suffix)]
                    self._by_stem.setdefault(stem, []).append((entry.path, kind_of(name, stem)))

    def of(self, stem: str) -> list[Item]:
        """The sidecars of the model file ``<stem><ext>``: one ``stat`` each, now; one
        that vanished or is no regular file is left out."""
        found: list[Item] = []
        for path, kind in self._by_stem.get(stem, ()):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((path, kind, st.st_size, st.st_mtime_ns))
        return found


class RecentFolders:
    """The listings of the folders a reader looked in last (up to ``MAX_RECENT_FOLDERS``),
    each reused while the folder's mtime is unchanged: promotions outside a scan (the
    Stage 2 worker's, a bulk promote) of many models in one folder list it once, not once
    per model. A sidecar created within the same timestamp tick as a listing may be missed
    by it; the next scan reads it (it is in no ``sidecar_files`` row)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the worker's threads share the reader
        self._listed: dict[str, tuple[int, FolderSidecars]] = {}

    def of(self, model_path: str) -> list[Item]:
        folder, name = os.path.split(model_path)
        try:
            mtime = os.stat(folder or ".").st_mtime_ns  # before listing: a change meanwhile
        except OSError:  # shows as a new mtime next time
            return []
        with self._lock:
            known = self._listed.get(folder)
        if known is None or known[0] != mtime:
            listed = list_folder(folder)
            if listed is None:
                return []
            known = (mtime, listed)
            with self._lock:
                if len(self._listed) >= MAX_RECENT_FOLDERS and folder not in self._listed:
                    self._listed.clear()
                self._listed[folder] = known
        return known[1].of(os.path.splitext(name)[0])


class SidecarIndex:
    """The sidecars a scan's walk found (from the folder listings it made anyway), by
    model file path: what a promotion during that scan reads, without listing again.
    ``found`` holds ``(model file path, sidecar path, kind, size, mtime_ns)``."""

    def __init__(self, found: Iterable[tuple[str, str, str, int, int]]) -> None:
        self._by_model: dict[str, list[Item]] = {}
        for model_path, path, kind, size, mtime_ns in found:
            self._by_model.setdefault(model_path, []).append((path, kind, size, mtime_ns))

    def of(self, model_path: str) -> list[Item]:
        return self._by_model.get(model_path, [])


# ---------------------------------------------------------------- parsing
def _typed(data: dict[str, Any], key: str, types: type | tuple[type, ...]) -> Any:
    """``data[key]`` if absent, None or of ``types``; SidecarError otherwise."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SidecarError(f"{key!r} has the wrong type")
    if not isinstance(value, types):
        raise SidecarError(f"{key!r} has the wrong type")
    return value


def _text(value: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    return " ".join(value.split())[:limit] or None if value else None


def _words(value: Any) -> list[str]:
    words = [w for w in trigger_words_of(value) if len(w) <= MAX_TRIGGER_WORD_CHARS]
    return words[:MAX_TRIGGER_WORDS]


def _description(value: str | None) -> str | None:
    return (html_to_text(value) or None) if value else None


def _civitai_info(data: dict[str, Any]) -> Fields:
    try:
        version = parse_version(data)
    except CivitaiBadResponse as exc:
        raise SidecarError(str(exc)) from None
    return Fields(
        [
            ("trigger_words", version.trained_words),
            ("description", version.description),
            ("civitai", version.meta_block(CIVITAI_URL)),
        ],
        version.base_model,
    )


def _lora_manager(data: dict[str, Any]) -> Fields:
    civitai = _typed(data, "civitai", dict) or {}
    notes = _typed(data, "notes", str)
    description = _typed(data, "modelDescription", str)
    tips = _typed(data, "usage_tips", str)
    base = _typed(data, "base_model", str)
    fields = Fields(base=_text(base, MAX_BASE_CHARS))
    weight = None
    if tips:
        try:
            parsed = json.loads(tips)
        except ValueError:
            raise SidecarError("'usage_tips' is not JSON") from None
        if not isinstance(parsed, dict):
            raise SidecarError("'usage_tips' has the wrong type")
        weight = preferred_weight_of(parsed.get("strength"))
    words = civitai.get("trainedWords")
    if civitai.get("id") and civitai.get("modelId"):
        try:
            version = parse_version(civitai)
        except CivitaiBadResponse as exc:
            raise SidecarError(f"'civitai': {exc}") from None
        fields.values.append(("civitai", version.meta_block(CIVITAI_URL)))
        words = version.trained_words
        fields.base = fields.base or version.base_model
    fields.values[:0] = [
        ("trigger_words", _words(words) if isinstance(words, list) else []),
        ("preferred_weight", weight),
        ("description", (notes or "").strip()[:MAX_DESCRIPTION_CHARS] or _description(description)),
    ]
    return fields


def _stability_matrix(data: dict[str, Any]) -> Fields:
    model_id, version_id = _typed(data, "ModelId", int), _typed(data, "VersionId", int)
    words = _typed(data, "TrainedWords", list)
    base = _text(_typed(data, "BaseModel", str), MAX_BASE_CHARS)
    nsfw = _typed(data, "Nsfw", bool)
    model_name = _text(_typed(data, "ModelName", str))
    version_name = _text(_typed(data, "VersionName", str))
    fields = Fields([("trigger_words", _words(words or []))], base)
    if model_id and version_id and model_id > 0 and version_id > 0:
        block = {
            "model_id": model_id,
            "version_id": version_id,
            "model_name": model_name,
            "version_name": version_name,
            "url": f"{CIVITAI_URL}/models/{model_id}?modelVersionId={version_id}",
            "base_model": base,
            "nsfw": nsfw,
            "nsfw_level": None,
        }
        fields.values.append(("civitai", block))
    return fields


def _a1111(data: dict[str, Any]) -> Fields:
    activation = _typed(data, "activation text", str) or ""
    weight = _typed(data, "preferred weight", (int, float))
    notes = _typed(data, "notes", str) or ""
    version = _typed(data, "sd version", str)
    words = _words([w for w in activation.split(",")])
    return Fields(
        [
            ("trigger_words", words),
            ("preferred_weight", preferred_weight_of(weight) or None),  # 0: not set
            ("description", notes.strip()[:MAX_DESCRIPTION_CHARS] or None),
        ],
        _A1111_BASES.get(version or ""),
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], Fields]] = {
    "civitai.info": _civitai_info,
    "metadata.json": _lora_manager,
    "cm-info.json": _stability_matrix,
    "json": _a1111,
}


def _read(path: str, size: int, cap: int) -> bytes:
    if size > cap:
        raise SidecarError(f"larger than {cap} bytes")
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise SidecarError(f"larger than {cap} bytes")
    return data


def read_fields(path: str, kind: str, size: int) -> Fields:
    """Parse one metadata sidecar; SidecarError (or OSError) when it cannot be used."""
    data = _read(path, size, MAX_JSON_BYTES)
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise SidecarError(f"not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise SidecarError("not a JSON object")
    return _PARSERS[kind](parsed)


def pixel_digest(data: bytes, max_pixels: int) -> str:
    """A digest of an image's decoded pixels (the same picture in another file format or
    with other metadata has the same digest); SidecarError when it is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise SidecarError(f"{width}x{height} is too large")
            rgba = img.convert("RGBA")
    except SidecarError:
        raise
    except Exception as exc:  # Pillow raises many kinds for a file that is no image
        raise SidecarError(f"not an image ({type(exc).__name__})") from None
    digest = hashlib.sha256(f"{width}x{height}:".encode())
    digest.update(rgba.tobytes())
    return digest.hexdigest()


class SidecarReader:
    """Applies sidecar files to models (the scanner's and the promoter's)."""

    def __init__(self, db: Library, images: ImageStore | None) -> None:
        self.db = db
        self.images = images
        self.recent = RecentFolders()

    def apply(self, sha256: str, items: Iterable[Item]) -> list[WalkProblem]:
        """Read ``items`` (sidecars of the model ``sha256``) and fill its empty fields;
        records each one read. Returns the problems (bad sidecars, skipped)."""
        ordered = sorted(items, key=lambda item: (_ORDER[item[1]], item[0]))
        if not ordered:
            return []
        problems: list[WalkProblem] = []
        read: list[tuple[str, Fields]] = []
        previews = 0
        for path, kind, size, _ in ordered:
            try:
                if kind == PREVIEW:
                    previews += self._preview(sha256, path, size)
                else:
                    read.append((source_of(kind), read_fields(path, kind, size)))
            except (SidecarError, ImageError, OSError) as exc:
                detail = exc.detail if isinstance(exc, ImageError) else str(exc)
                problems.append(WalkProblem(path, "sidecar", detail or type(exc).__name__))
        with self.db.transaction():
            record = self.db.models.get(sha256)
            if record is None:
                return problems
            self._fill(record, read, previews)
            self.db.sidecars.record([(p, size, mtime, sha256) for p, _, size, mtime in ordered])
        return problems

    def read_beside(self, sha256: str, model_path: str) -> list[dict[str, str]]:
        """Read every sidecar next to ``model_path`` into the model ``sha256`` (a promoted
        model's: ``Promoter``'s ``read_sidecars``); returns the problems as dicts."""
        return self.reader_of(self.recent)(sha256, model_path)

    def reader_of(
        self, index: SidecarIndex | RecentFolders
    ) -> Callable[[str, str], list[dict[str, str]]]:
        """A ``read_sidecars`` hook that takes a model's sidecars from ``index``: a scan's
        walk (no folder listed again), or the recent folders' listings (``read_beside``)."""

        def read(sha256: str, model_path: str) -> list[dict[str, str]]:
            return [problem.to_dict() for problem in self.apply(sha256, index.of(model_path))]

        return read

    def _fill(self, record: dict[str, Any], read: list[tuple[str, Fields]], previews: int) -> None:
        meta = copy.deepcopy(record["meta"])
        sources = sources_of(meta)
        base = record["base"]
        changed = False
        for source, fields in read:
            changed |= bool(fill_empty(meta, sources, fields.values, source, refill=True))
            over = (None, PROBE_SOURCE, source)
            if replaces_base(base, sources, fields.base, over=over):
                base = fields.base
                sources["base"] = source
                changed = True
        if previews and "images" not in sources:
            sources["images"] = source_of(PREVIEW)
            changed = True
        if changed:
            meta["sources"] = sources
            columns = {"base": base} if base != record["base"] else {}
            self.db.models.update(record["sha256"], meta=meta, **columns)

    def _preview(self, sha256: str, path: str, size: int) -> int:
        """Store one preview as image tiers; 0 when there is no store or it is already
        one of the model's images (by its pixels)."""
        if self.images is None:
            return 0
        data = _read(path, size, self.images.max_bytes)
        digest = pixel_digest(data, self.images.max_pixels)
        if self.db.sidecars.has_pixels(sha256, digest):
            return 0
        seq = self.images.add_image(sha256, data)
        self.db.sidecars.add_pixels(sha256, digest, seq)
        return 1
