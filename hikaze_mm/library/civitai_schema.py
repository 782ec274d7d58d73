"""Civitai's answer schema: a model version as ``by-hash`` answers it, parsed and checked.

A model version (``id``, ``modelId``, ``name``, ``model.name``, ``model.type``,
``model.nsfw``, ``baseModel``, ``air``, ``trainedWords``, ``description``, ``files[]`` with
``hashes``, ``images[]`` with ``url``, ``nsfwLevel``, ``width``, ``height``) becomes a
``CivitaiVersion``; anything else is a ``CivitaiBadResponse``. ``parse_versions`` reads the
batch answer (a JSON array of versions) and matches each version back to the hashes asked
by its files' ``hashes.SHA256``.

A version's AIR is Civitai's ``air`` when the answer has one, otherwise
``urn:air:{ecosystem}:{type}:civitai:{model_id}@{version_id}`` with the ecosystem from
``baseModel`` (``ECOSYSTEMS``: SD 1.x ``sd1``, SD 2.x ``sd2``, SDXL and its families
Illustrious and NoobAI ``sdxl``, Pony ``pony``, SD 3.x ``sd3``, Flux.1 ``flux1``, any other
its name in lower case, letters and digits only) and the type from ``model.type``
(``AIR_TYPES``: ``LORA`` ``lora``, ``LoCon`` ``lycoris``, ``Checkpoint`` ``checkpoint``,
``TextualInversion`` ``embedding``, ``VAE`` ``vae``, ...).

A version's files also carry what a download needs (``id``, ``name``, ``sizeKB``,
``type``, ``primary``, ``downloadUrl``, ``metadata``); ``parse_model`` reads ``GET
/api/v1/models/{id}`` (the creator, the tags, the versions, newest first).

The HTTP client (``civitai_client``), the download sources (``download_sources``) and the
sidecar reader (a ``.civitai.info`` file holds the same JSON) read it here; nothing here
talks to the network.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from hikaze_mm.errors import UpstreamError
from hikaze_mm.meta import MAX_TRIGGER_WORD_CHARS, MAX_TRIGGER_WORDS, trigger_words_of

MAX_DESCRIPTION_CHARS = 20_000
MAX_TEXT_CHARS = 255
MAX_BASE_CHARS = 64
MAX_HASH_CHARS = 128

# baseModel prefixes (lower case, first match wins) -> AIR ecosystem
ECOSYSTEMS: tuple[tuple[str, str], ...] = (
    ("sd 1", "sd1"),
    ("sd 2", "sd2"),
    ("sd 3", "sd3"),
    ("sdxl", "sdxl"),
    ("illustrious", "sdxl"),
    ("noobai", "sdxl"),
    ("pony", "pony"),
    ("flux.1", "flux1"),
)
# model.type -> AIR type
AIR_TYPES = {
    "checkpoint": "checkpoint",
    "textualinversion": "embedding",
    "hypernetwork": "hypernet",
    "aestheticgradient": "ag",
    "lora": "lora",
    "locon": "lycoris",
    "dora": "dora",
    "controlnet": "controlnet",
    "upscaler": "upscaler",
    "motionmodule": "motion",
    "vae": "vae",
    "poses": "poses",
    "wildcards": "wildcards",
    "workflows": "workflows",
    "other": "other",
}
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class CivitaiError(UpstreamError):
    """Civitai did not give a usable answer. ``fatal``: no other request would fare
    better (the network is down, the token is refused), so a job stops."""

    error = "Civitai unreachable"

    def __init__(self, detail: str, *, fatal: bool = False) -> None:
        super().__init__(detail)
        self.fatal = fatal


class CivitaiBadResponse(CivitaiError):
    """An answer that is not a model version (not JSON, the wrong shape, too large)."""

    error = "Bad answer from Civitai"


@dataclass(frozen=True)
class CivitaiImage:
    url: str
    nsfw_level: int | None
    width: int | None
    height: int | None
    kind: str | None  # "image" or "video"


@dataclass(frozen=True)
class CivitaiFile:
    sha256: str | None  # lower case; None when the file has no valid SHA256
    hashes: dict[str, str]  # as Civitai gives them: SHA256, AutoV2, AutoV3, BLAKE3, CRC32...
    # What a download needs (the version endpoints give them; a sidecar may not):
    id: int | None = None
    name: str | None = None
    size_kb: float | None = None
    type: str | None = None  # "Model", "Pruned Model", "Training Data", "Config", ...
    primary: bool = False
    download_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # format, fp, size (as given)

    def autov2(self) -> str | None:
        """The file's AutoV2 (10 hex digits, lower case), or None."""
        value = self.hashes.get("AutoV2", "").strip().lower()
        return value if re.fullmatch(r"[0-9a-f]{10}", value) else None


@dataclass(frozen=True)
class CivitaiModel:
    """What ``GET /api/v1/models/{id}`` adds to a version: the creator, the tags, and the
    model's versions (newest first, as Civitai lists them)."""

    model_id: int
    name: str | None
    type: str | None
    author: str | None
    tags: list[str]
    version_ids: list[int]


@dataclass(frozen=True)
class CivitaiVersion:
    model_id: int
    version_id: int
    model_name: str | None
    version_name: str | None
    base_model: str | None
    trained_words: list[str]
    description: str | None
    nsfw: bool | None
    nsfw_level: int | None
    images: list[CivitaiImage] = field(default_factory=list)
    model_type: str | None = None
    air: str | None = None  # Civitai's own, when the answer has one
    files: list[CivitaiFile] = field(default_factory=list)

    def file_hashes(self, sha256: str) -> dict[str, str] | None:
        """The ``hashes`` of the file whose SHA256 is ``sha256`` (any case), or None."""
        wanted = sha256.lower()
        return next((f.hashes for f in self.files if f.sha256 == wanted), None)

    def air_urn(self) -> str:
        """Civitai's AIR of this version (its own, or derived; see the module)."""
        if self.air:
            return self.air
        return (
            f"urn:air:{ecosystem_of(self.base_model)}:{air_type_of(self.model_type)}"
            f":civitai:{self.model_id}@{self.version_id}"
        )

    def meta_block(self, base_url: str, sha256: str | None = None) -> dict[str, Any]:
        """What ``meta.civitai`` holds; with ``sha256`` (a lookup by hash, whose answer
        names the model's type) also the ``air`` and the matched file's ``hashes`` ({}
        when no file matches)."""
        block = self._meta_names(base_url)
        if sha256 is not None:
            block["air"] = self.air_urn()
            block["hashes"] = dict(self.file_hashes(sha256) or {})
        return block

    def file_block(self, base_url: str, file: CivitaiFile) -> dict[str, Any]:
        """What ``meta.civitai`` holds for one of this version's files (a download):
        the names, the ``air`` and that file's ``hashes``."""
        return {**self._meta_names(base_url), "air": self.air_urn(), "hashes": dict(file.hashes)}

    def _meta_names(self, base_url: str) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "version_id": self.version_id,
            "model_name": self.model_name,
            "version_name": self.version_name,
            "url": f"{base_url}/models/{self.model_id}?modelVersionId={self.version_id}",
            "base_model": self.base_model,
            "nsfw": self.nsfw,
            "nsfw_level": self.nsfw_level,
        }


def _slug(value: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (value or "").lower())


def ecosystem_of(base_model: str | None) -> str:
    """The AIR ecosystem of a Civitai ``baseModel`` (``other`` when there is none)."""
    name = (base_model or "").strip().lower()
    for prefix, ecosystem in ECOSYSTEMS:
        if name.startswith(prefix):
            return ecosystem
    return _slug(name) or "other"


def air_type_of(model_type: str | None) -> str:
    """The AIR type of a Civitai ``model.type`` (``other`` when there is none)."""
    slug = _slug(model_type)
    return AIR_TYPES.get(slug, slug or "other")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any, limit: int = MAX_TEXT_CHARS) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text[:limit] or None


class _TextOfHtml(HTMLParser):
    BREAKS = frozenset({"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in self.BREAKS:
            self.parts.append("\n\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Civitai's HTML description as plain text: paragraphs kept, tags and entities gone."""
    parser = _TextOfHtml()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # the parser is lenient, but a description is never worth a failure
        text = html.unescape(markup)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    paragraphs, current = [], []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return "\n\n".join(paragraphs)[:MAX_DESCRIPTION_CHARS]


def _images(data: dict[str, Any]) -> list[CivitaiImage]:
    images = []
    for item in data.get("images") if isinstance(data.get("images"), list) else []:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            images.append(
                CivitaiImage(
                    url=item["url"],
                    nsfw_level=_int(item.get("nsfwLevel")),
                    width=_int(item.get("width")),
                    height=_int(item.get("height")),
                    kind=item.get("type") if isinstance(item.get("type"), str) else None,
                )
            )
    return images


def _files(data: dict[str, Any]) -> list[CivitaiFile]:
    """The version's files; an item that is not an object, or that has neither hashes nor
    an id, is left out."""
    files = []
    for item in data.get("files") if isinstance(data.get("files"), list) else []:
        if not isinstance(item, dict):
            continue
        raw = item.get("hashes")
        if not isinstance(raw, dict) and _int(item.get("id")) is None:
            continue
        hashes = {
            str(k)[:32]: v[:MAX_HASH_CHARS]
            for k, v in (raw.items() if isinstance(raw, dict) else ())
            if isinstance(v, str) and v.strip()
        }
        sha = hashes.get("SHA256", "").strip()
        files.append(_file(item, sha.lower() if _SHA256.fullmatch(sha) else None, hashes))
    return files


def _file(item: dict[str, Any], sha: str | None, hashes: dict[str, str]) -> CivitaiFile:
    size = item.get("sizeKB")
    url = item.get("downloadUrl")
    raw_meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    metadata = {str(k)[:32]: str(v)[:MAX_BASE_CHARS] for k, v in raw_meta.items() if v}
    return CivitaiFile(
        sha,
        hashes,
        id=_int(item.get("id")),
        name=item["name"] if isinstance(item.get("name"), str) else None,
        size_kb=float(size) if isinstance(size, (int, float)) and size >= 0 else None,
        type=_text(item.get("type"), MAX_BASE_CHARS),
        primary=item.get("primary") is True,
        download_url=url if isinstance(url, str) and len(url) <= 2048 else None,
        metadata=metadata,
    )


def parse_version(data: Any) -> CivitaiVersion:
    """A by-hash answer as a CivitaiVersion; CivitaiBadResponse if it is not one."""
    if not isinstance(data, dict):
        raise CivitaiBadResponse("the answer is not a JSON object")
    model_id, version_id = _int(data.get("modelId")), _int(data.get("id"))
    if not model_id or not version_id or model_id < 0 or version_id < 0:
        raise CivitaiBadResponse("the answer has no model and version id")
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    words = data.get("trainedWords") if isinstance(data.get("trainedWords"), list) else []
    words = [w for w in trigger_words_of(words) if len(w) <= MAX_TRIGGER_WORD_CHARS]
    description = data.get("description")
    nsfw = model.get("nsfw")
    air = _text(data.get("air"))
    return CivitaiVersion(
        model_id=model_id,
        version_id=version_id,
        model_name=_text(model.get("name")),
        version_name=_text(data.get("name")),
        base_model=_text(data.get("baseModel"), MAX_BASE_CHARS),
        trained_words=words[:MAX_TRIGGER_WORDS],
        description=(html_to_text(description) or None) if isinstance(description, str) else None,
        nsfw=nsfw if isinstance(nsfw, bool) else None,
        nsfw_level=_int(data.get("nsfwLevel")),
        images=_images(data),
        model_type=_text(model.get("type"), MAX_BASE_CHARS),
        air=air if air and air.startswith("urn:air:") else None,
        files=_files(data),
    )


def parse_model(data: Any) -> CivitaiModel:
    """A ``GET /api/v1/models/{id}`` answer (``id``, ``name``, ``type``,
    ``creator.username``, ``tags``, ``modelVersions[].id``); CivitaiBadResponse if it is
    not one."""
    if not isinstance(data, dict) or not _int(data.get("id")):
        raise CivitaiBadResponse("the answer is not a model")
    creator = data.get("creator") if isinstance(data.get("creator"), dict) else {}
    tags = data.get("tags") if isinstance(data.get("tags"), list) else []
    versions = data.get("modelVersions") if isinstance(data.get("modelVersions"), list) else []
    return CivitaiModel(
        model_id=data["id"],
        name=_text(data.get("name")),
        type=_text(data.get("type"), MAX_BASE_CHARS),
        author=_text(creator.get("username")),
        tags=[t for t in (_text(tag, MAX_BASE_CHARS) for tag in tags) if t],
        version_ids=[
            v["id"] for v in versions if isinstance(v, dict) and (_int(v.get("id")) or 0) > 0
        ],
    )


@dataclass
class BatchAnswer:
    """A batch answer matched back to the hashes asked: ``found`` by hash (lower case);
    ``problem`` says why some items could not be read (a hash not in ``found`` may then
    be among them, so it is not "not found")."""

    found: dict[str, CivitaiVersion] = field(default_factory=dict)
    problem: str | None = None


def parse_versions(data: Any, asked: list[str]) -> BatchAnswer:
    """The batch answer (a JSON array of versions) by the hashes ``asked``; each version
    matches the asked hashes among its files' SHA256. CivitaiBadResponse if it is not an
    array."""
    if not isinstance(data, list):
        raise CivitaiBadResponse("the answer is not a JSON array")
    wanted = {sha.lower() for sha in asked}
    answer = BatchAnswer()
    for item in data:
        try:
            version = parse_version(item)
        except CivitaiBadResponse as exc:
            answer.problem = f"an item of the answer is malformed: {exc.detail}"
            continue
        shas = [f.sha256 for f in version.files if f.sha256 in wanted]
        if not any(f.sha256 for f in version.files):
            answer.problem = f"version {version.version_id} of the answer has no file SHA256"
        for sha in shas:
            answer.found.setdefault(sha, version)
    return answer
