"""Where a download comes from: one ``source`` string, parsed and resolved into a ``Resolved``.

Source forms (``parse_source``, no network):

* Civitai, on ``HIKAZE_CIVITAI_URL`` or its NSFW site: a model page
  ``{civitai}/models/{id}[/slug][?modelVersionId={v}]`` (no ``v``: the model's latest
  version), ``civitai:{v}``, an AIR ``urn:air:{ecosystem}:{type}:civitai:{m}[@{v}]``, a
  download link ``{civitai}/api/download/models/{v}[?type=&format=&size=&fp=]``, or a hash,
  ``sha256:{64 hex}`` (or the bare 64 hex digits) or an AutoV2 (10 hex, or ``autov2:…``);
* Hugging Face, on ``HIKAZE_HF_URL``: ``{hf}/[datasets/]{owner}/{name}/resolve|blob/{rev}/{path}``
  or ``hf:[datasets/]{owner}/{name}[@{rev}]/{path}`` (rev ``main``);
* any other ``https://`` URL, or ``http://`` (a local mirror).

``resolve`` asks the site: Civitai's ``GET /api/v1/model-versions/{v}`` (or
``/by-hash/{hash}``, or ``/api/v1/models/{m}`` for the latest version) and
``GET /api/v1/models/{m}`` (the creator and tags, for the path template); Hugging Face's
``POST /api/{models|datasets}/{repo}/paths-info/{rev}`` (form ``paths=``), whose LFS
``oid`` is the file's SHA-256. A Civitai id or hash the main site does not know is asked on
the NSFW site (``HIKAZE_CIVITAI_NSFW_URL``); a URL is asked on the site it names.

Credentials: the token of a site goes in ``Resolved.headers``, which the fetcher sends only
to ``Resolved.auth_host`` (the API host), never after a redirect to a storage host; it is
never part of a URL, an error or a ``repr``.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from hikaze_mm.config import DEFAULT_CIVITAI_URL, DEFAULT_HF_URL, Config
from hikaze_mm.errors import (
    ForbiddenError,
    HikazeError,
    NotFoundError,
    UpstreamError,
    ValidationError,
)
from hikaze_mm.library.civitai_client import USER_AGENT, proxy_for
from hikaze_mm.library.civitai_schema import (
    CivitaiBadResponse,
    CivitaiFile,
    CivitaiModel,
    CivitaiVersion,
    parse_model,
    parse_version,
)

MAX_SOURCE_CHARS = 4096
MAX_NAME_BYTES = 200  # a file name's length in UTF-8 (file systems allow 255)
MAX_ID = 2**53  # Civitai's ids are JavaScript numbers
API_REDIRECTS = 3  # an API call follows this many redirects, on the same host only
TEMPLATE_KEYS = ("base_model", "model_name", "version_name", "author", "first_tag")

# Civitai's model types -> ComfyUI folder keys (a type not here goes to "other").
CIVITAI_FOLDERS: dict[str, str] = {
    "Checkpoint": "checkpoints",
    "LORA": "loras",
    "LoCon": "loras",
    "DoRA": "loras",
    "TextualInversion": "embeddings",
    "VAE": "vae",
    "Controlnet": "controlnet",
    "Upscaler": "upscale_models",
    "Hypernetwork": "hypernetworks",
    "MotionModule": "animatediff_models",  # AnimateDiff-Evolved's folder
    "Detection": "ultralytics",  # ADetailer/Impact Pack YOLO detectors
    "AestheticGradient": "other",
    "Poses": "other",
    "Wildcards": "other",
    "Workflows": "other",
    "Other": "other",
}
_FOLDER_BY_SLUG = {key.lower(): folder for key, folder in CIVITAI_FOLDERS.items()}

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX10 = re.compile(r"[0-9a-fA-F]{10}")
_DIGITS = re.compile(r"[0-9]{1,16}")
_AIR = re.compile(
    r"urn:air:([a-z0-9_.-]+):([a-z0-9_.-]+):([a-z0-9_.-]+):([0-9]{1,16})"
    r"(?:@([0-9]{1,16}))?(?::[a-z0-9_.-]+)?(?:\.[a-z0-9]+)?",
    re.IGNORECASE,
)
_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")
_UNSAFE_NAME_CHARS = re.compile(r'[<>:"|?*]')
# Control and format characters (a right-to-left override would disguise an extension),
# line and paragraph separators, lone surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.IGNORECASE)
_DOWNLOAD_QUERY = ("type", "format", "size", "fp")
_REDIRECTS = (301, 302, 303, 307, 308)
_HF_NOT_FOUND = ("RepoNotFound", "RepositoryNotFound", "EntryNotFound", "RevisionNotFound")
FORMS_HINT = (
    "give a Civitai or Hugging Face address, civitai:<version id>, an AIR "
    "(urn:air:…:civitai:<model>@<version>), sha256:<64 hex>, an AutoV2 (10 hex), "
    "hf:<owner>/<name>/<path>, or an https:// URL"
)

T = TypeVar("T")


# ---------------------------------------------------------------- errors
class SourceError(ValidationError):
    """A source we cannot read (400)."""

    error = "Bad source"


class SourceNotFound(NotFoundError):
    """The site has no such model, version or file (404)."""

    error = "Source not found"


class SourceRefused(ForbiddenError):
    """The site refused us (401/403): a token is missing or refused, a gated repo (403)."""

    error = "Source refused"


class SourceUnreachable(UpstreamError):
    """No usable answer from the site: no connection, a timeout, a 5xx, a malformed
    answer (502)."""

    error = "Source unreachable"


# ---------------------------------------------------------------- values
@dataclass(frozen=True)
class SourceSettings:
    """The sites sources are recognised on and resolved against, and their tokens (never
    in ``repr``). ``civitai_nsfw_url``: the second Civitai site, or None."""

    civitai_url: str = DEFAULT_CIVITAI_URL
    civitai_nsfw_url: str | None = None
    civitai_token: str | None = field(default=None, repr=False)
    hf_url: str = DEFAULT_HF_URL
    hf_token: str | None = field(default=None, repr=False)
    max_response_bytes: int = 8 * 1024 * 1024

    @classmethod
    def from_config(cls, config: Config) -> SourceSettings:
        return cls(
            civitai_url=config.civitai.url,
            civitai_nsfw_url=config.civitai.nsfw_site,
            civitai_token=config.civitai.token,
            hf_url=config.hf.url,
            hf_token=config.hf.token,
            max_response_bytes=config.civitai.max_response_bytes,
        )

    def civitai_sites(self) -> list[str]:
        """The Civitai sites an id or a hash is asked on, in order."""
        sites = [self.civitai_url]
        if self.civitai_nsfw_url and self.civitai_nsfw_url != self.civitai_url:
            sites.append(self.civitai_nsfw_url)
        return sites


@dataclass(frozen=True)
class ParsedSource:
    """A source string read (``parse_source``): its ``kind`` (civitai, hf, url), its
    ``form`` (civitai: page, version, air, download, hash; hf: url, short; url: url) and
    what it names. ``site`` is the site a URL is on (None: the configured ones)."""

    kind: str
    form: str
    site: str | None = None
    model_id: int | None = None
    version_id: int | None = None
    hash: str | None = None  # lower case: a SHA-256 (64 hex) or an AutoV2 (10 hex)
    query: Mapping[str, str] = field(default_factory=dict)  # a download link's file choice
    repo: str | None = None  # owner/name
    repo_type: str = "models"  # or "datasets"
    revision: str | None = None
    path: str | None = None  # the file's path in the repo
    url: str | None = None  # a plain URL


@dataclass(frozen=True)
class Resolved:
    """What to download. ``headers`` go to ``auth_host`` ("host:port", the API host)
    only; ``values`` are the path template's (all of ``TEMPLATE_KEYS``, "" when
    unknown)."""

    kind: str  # "civitai" | "hf" | "url"
    url: str
    file_name: str
    sha256: str | None
    size: int | None
    model_type: str | None
    auth_host: str | None
    headers: Mapping[str, str] = field(repr=False)
    civitai: dict[str, Any] | None
    values: Mapping[str, str]


def folder_of_civitai_type(civitai_type: str | None) -> str:
    """The ComfyUI folder key of a Civitai model type (``CIVITAI_FOLDERS``; "other")."""
    return _FOLDER_BY_SLUG.get((civitai_type or "").strip().lower(), "other")


def host_port(url: str) -> str | None:
    """``host:port`` of an http(s) URL (the port explicit, the host in lower case), or
    None; what ``Resolved.auth_host`` is compared with."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host or port is None:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def file_name_of(raw: str) -> str:
    """A file name from a source, cleaned: no control or reserved characters, no leading
    dots or spaces, at most ``MAX_NAME_BYTES`` bytes (the extension kept). SourceError for
    a path (a separator, ``.``, ``..``) or a name with nothing left."""
    name = unicodedata.normalize("NFC", raw).strip()
    if "/" in name or "\\" in name or name in (".", ".."):
        raise SourceError(f"the source's file name {raw[:80]!r} is a path, not a file name")
    name = "".join("_" if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in name)
    name = _UNSAFE_NAME_CHARS.sub("_", name).lstrip(". ").rstrip(". ")
    name = re.sub(r"\s+", " ", name)
    if not name.strip("_ "):
        raise SourceError(f"the source names no usable file name ({raw[:80]!r})")
    if _WINDOWS_RESERVED.fullmatch(name):
        name = f"_{name}"
    return _capped(name)


def _capped(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
    return stem + suffix


def _check_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    text = sha256.strip().lower().removeprefix("sha256:")
    if not _HEX64.fullmatch(text):
        raise SourceError(f"sha256 must be 64 hex digits, not {sha256[:80]!r}")
    return text


# ---------------------------------------------------------------- parsing
def parse_source(source: str, settings: SourceSettings) -> ParsedSource:
    """Which form ``source`` is and what it names (no network); SourceError otherwise."""
    text = source.strip() if isinstance(source, str) else ""
    if not text:
        raise SourceError(f"the source is empty: {FORMS_HINT}")
    if len(text) > MAX_SOURCE_CHARS or any(unicodedata.category(c) == "Cc" for c in text):
        raise SourceError("the source is too long or has control characters")
    lower = text.lower()
    if lower.startswith("civitai:"):
        return ParsedSource("civitai", "version", version_id=_id(text[8:], "version id"))
    if lower.startswith("urn:air:"):
        return _parse_air(text)
    if lower.startswith("hf:"):
        return _parse_hf_short(text[3:])
    if lower.startswith(("sha256:", "autov2:")) or _HEX64.fullmatch(text) or _HEX10.fullmatch(text):
        return _parse_hash(text)
    if lower.startswith(("http://", "https://")):
        return _parse_url(text, settings)
    scheme = _SCHEME.match(text)
    if scheme:
        raise SourceError(f"{scheme.group(0)} sources are not supported: {FORMS_HINT}")
    raise SourceError(f"unknown source {text[:80]!r}: {FORMS_HINT}")


def _id(text: str, what: str) -> int:
    text = text.strip()
    if not _DIGITS.fullmatch(text) or not 0 < int(text) < MAX_ID:
        raise SourceError(f"a Civitai {what} is a positive number, not {text[:40]!r}")
    return int(text)


def _parse_air(text: str) -> ParsedSource:
    match = _AIR.fullmatch(text)
    if not match:
        raise SourceError(
            f"malformed AIR {text[:80]!r}: expected "
            "urn:air:<ecosystem>:<type>:civitai:<model>@<version>"
        )
    if match.group(3).lower() != "civitai":
        raise SourceError(f"only Civitai AIRs can be downloaded, not {match.group(3)!r} ones")
    version = match.group(5)
    return ParsedSource(
        "civitai",
        "air",
        model_id=_id(match.group(4), "model id"),
        version_id=_id(version, "version id") if version else None,
    )


def _parse_hash(text: str) -> ParsedSource:
    prefix, _, value = text.rpartition(":")
    value = value.strip().lower()
    if prefix.lower() in ("", "sha256") and _HEX64.fullmatch(value):
        return ParsedSource("civitai", "hash", hash=value)
    if prefix.lower() in ("", "autov2") and _HEX10.fullmatch(value):
        return ParsedSource("civitai", "hash", hash=value)
    want = "64 hex digits" if prefix.lower() == "sha256" else "10 hex digits"
    raise SourceError(f"malformed hash {text[:80]!r}: {prefix or 'a hash'} is {want}")


def _parse_url(text: str, settings: SourceSettings) -> ParsedSource:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise SourceError(f"malformed URL {text[:80]!r}") from None
    if not parts.hostname:
        raise SourceError(f"the URL {text[:80]!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise SourceError("a URL with a user name or password in it is refused (set a token)")
    for site in settings.civitai_sites():
        rest = _below(parts, site)
        if rest is not None:
            return _parse_civitai_url(parts, rest, site)
    rest = _below(parts, settings.hf_url)
    if rest is not None:
        return _parse_hf_url(rest, settings.hf_url)
    file_name_of(unquote(parts.path.rpartition("/")[2]))  # a path-traversing name fails here
    url = urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, ""))
    return ParsedSource("url", "url", url=url)


def _below(parts: SplitResult, base: str) -> str | None:
    """The path of ``parts`` below the site ``base`` (same host and port, or ``www.`` on
    it; below its path), or None when it is not on that site."""
    bare = parts._replace(netloc=parts.netloc.lower().removeprefix("www."))
    if host_port(base) not in (host_port(urlunsplit(parts)), host_port(urlunsplit(bare))):
        return None
    prefix = urlsplit(base).path.rstrip("/")
    if not (parts.path == prefix or parts.path.startswith(prefix + "/")):
        return None
    return parts.path[len(prefix) :]


def _parse_civitai_url(parts: SplitResult, rest: str, site: str) -> ParsedSource:
    segments = [s for s in rest.split("/") if s]
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
    if len(segments) in (2, 3) and segments[0] == "models":
        model_id = _id(segments[1], "model id")
        raw_version = query.get("modelVersionId")
        version = _id(raw_version, "version id") if raw_version else None
        return ParsedSource("civitai", "page", site=site, model_id=model_id, version_id=version)
    if len(segments) == 4 and segments[:3] == ["api", "download", "models"]:
        choice = {k: query[k] for k in _DOWNLOAD_QUERY if query.get(k)}
        version = _id(segments[3], "version id")
        return ParsedSource("civitai", "download", site=site, version_id=version, query=choice)
    raise SourceError(
        f"a Civitai address must be a model page ({site}/models/<id>) or a download link "
        f"({site}/api/download/models/<version id>), not {rest[:80]!r}"
    )


def _parse_hf_url(rest: str, site: str) -> ParsedSource:
    segments = [unquote(s) for s in rest.split("/")][1:]  # rest starts with "/"
    repo_type = "models"
    if segments and segments[0] in ("datasets", "spaces"):
        if segments[0] == "spaces":
            raise SourceError("files of Hugging Face Spaces cannot be downloaded; use a model repo")
        repo_type, segments = "datasets", segments[1:]
    at = next((i for i in (2, 1) if len(segments) > i and segments[i] in ("resolve", "blob")), 0)
    if not at or len(segments) < at + 3:
        raise SourceError(
            f"a Hugging Face address must name a file: {site}/<owner>/<name>/resolve/<rev>/<path>"
        )
    return _hf_source("url", repo_type, segments[:at], segments[at + 1], segments[at + 2 :], site)


def _parse_hf_short(text: str) -> ParsedSource:
    segments = text.strip().split("/")
    repo_type = "models"
    if segments and segments[0] == "datasets":
        repo_type, segments = "datasets", segments[1:]
    if len(segments) < 3:
        raise SourceError(f"hf: sources are hf:<owner>/<name>/<path>, not hf:{text[:80]!r}")
    name, _, revision = segments[1].partition("@")
    return _hf_source(
        "short", repo_type, [segments[0], name], revision or "main", segments[2:], None
    )


def _hf_source(
    form: str, repo_type: str, repo: list[str], revision: str, path: list[str], site: str | None
) -> ParsedSource:
    if not all(_REPO_PART.fullmatch(p) for p in repo) or any(".." in p for p in repo):
        raise SourceError(f"malformed Hugging Face repo {'/'.join(repo)[:80]!r}")
    bad = [p for p in path if p in ("", ".", "..") or "\\" in p or "/" in p]
    if bad or not revision or ".." in revision or any(c in revision for c in "\\?#"):
        raise SourceError(
            f"malformed Hugging Face file {'/'.join(path)[:80]!r} at {revision[:40]!r}"
        )
    file_name_of(path[-1])
    return ParsedSource(
        "hf",
        form,
        site=site,
        repo="/".join(repo),
        repo_type=repo_type,
        revision=revision,
        path="/".join(path),
    )


# ---------------------------------------------------------------- resolving
async def resolve(
    source: str,
    session: aiohttp.ClientSession,
    settings: SourceSettings,
    *,
    file_id: int | None = None,
    sha256: str | None = None,
) -> Resolved:
    """What ``source`` downloads; ``file_id`` picks one of a Civitai version's files,
    ``sha256`` is the expected hash (a source that names another one is refused).
    SourceError, SourceNotFound, SourceRefused or SourceUnreachable."""
    parsed = parse_source(source, settings)
    expected = _check_sha256(sha256)
    if file_id is not None and (parsed.kind != "civitai" or isinstance(file_id, bool)):
        raise SourceError("file_id picks one of a Civitai version's files only")
    http = _Http(session, settings)
    if parsed.kind == "civitai":
        return await _resolve_civitai(parsed, http, file_id, expected)
    if parsed.kind == "hf":
        return await _resolve_hf(parsed, http, expected)
    assert parsed.url is not None
    name = file_name_of(unquote(urlsplit(parsed.url).path.rpartition("/")[2]))
    values = dict.fromkeys(TEMPLATE_KEYS, "")
    return Resolved("url", parsed.url, name, expected, None, None, None, {}, None, values)


def _agree(expected: str | None, given: str | None, where: str) -> str | None:
    if expected and given and expected != given:
        raise SourceError(f"the sha256 given ({expected}) is not the one {where} lists ({given})")
    return given or expected


class _Http:
    """JSON requests to a site's API; the site's token goes to its host only (a redirect
    to another host is followed without it)."""

    def __init__(self, session: aiohttp.ClientSession, settings: SourceSettings) -> None:
        self.session = session
        self.settings = settings

    async def json(
        self,
        method: str,
        url: str,
        missing: str,
        *,
        hf: bool = False,
        data: dict[str, str] | None = None,
    ) -> Any:
        """The JSON answer; SourceNotFound(``missing``) for a 404, and the other errors."""
        name = "Hugging Face" if hf else "Civitai"
        token = self.settings.hf_token if hf else self.settings.civitai_token
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        origin, where = host_port(url), _base(url)
        try:
            for _ in range(API_REDIRECTS + 1):
                if host_port(url) != origin:
                    headers.pop("Authorization", None)
                async with self.session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    proxy=proxy_for(url),
                    allow_redirects=False,
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status not in _REDIRECTS or not location:
                        return await self._answer(resp, name, missing, hf)
                    url = str(resp.url.join(URL(location)))
        except HikazeError:
            raise
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise SourceUnreachable(f"no answer from {name} ({where}) in time") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise SourceUnreachable(f"cannot reach {name} ({where}): {_reason(exc)}") from None
        raise SourceUnreachable(f"{name} ({where}) redirected a request too many times")

    async def _answer(self, resp: aiohttp.ClientResponse, name: str, missing: str, hf: bool) -> Any:
        code = resp.headers.get("X-Error-Code", "")
        variable = "HIKAZE_HF_TOKEN" if hf else "HIKAZE_CIVITAI_TOKEN"
        if resp.status == 404 or code in _HF_NOT_FOUND:
            raise SourceNotFound(missing)
        if code == "GatedRepo":
            raise SourceRefused(
                f"{name}: a gated repo; accept its terms on the site and set {variable}"
            )
        if resp.status in (401, 403):
            raise SourceRefused(
                f"{name} refused the request (HTTP {resp.status}); check {variable}"
            )
        if resp.status != 200:
            raise SourceUnreachable(f"{name} answered HTTP {resp.status}")
        cap = self.settings.max_response_bytes
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > cap:
                raise SourceUnreachable(f"{name}'s answer is over {cap} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise SourceUnreachable(f"{name}'s answer is not JSON") from None


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())[:200]


# ---------------------------------------------------------------- Civitai
async def _on_sites(sites: list[str], ask: Callable[[str], Awaitable[T]]) -> tuple[str, T]:
    """The first site's answer that is not a 404 (the main site, then the NSFW one)."""
    missing: SourceNotFound | None = None
    for site in sites:
        try:
            return site, await ask(site)
        except SourceNotFound as exc:
            missing = exc
    assert missing is not None
    if len(sites) > 1:
        missing = SourceNotFound(f"{missing.detail} (asked {' and '.join(sites)})")
    raise missing


async def _civitai_version(
    parsed: ParsedSource, http: _Http
) -> tuple[str, CivitaiVersion, CivitaiModel | None]:
    """The version a Civitai source names, the site that knows it, and its model when it
    was asked for already (the latest version of a model)."""
    sites = _sites_from(parsed.site, http.settings.civitai_sites())
    if parsed.hash is not None:
        site, data = await _on_sites(
            sites,
            lambda base: http.json(
                "GET",
                f"{base}/api/v1/model-versions/by-hash/{parsed.hash}",
                f"Civitai knows no file of hash {parsed.hash}",
            ),
        )
        return site, _version(data), None
    model: CivitaiModel | None = None
    version_id = parsed.version_id
    if version_id is None:
        assert parsed.model_id is not None
        site, model = await _on_sites(sites, lambda base: _model(http, base, parsed.model_id))
        if not model.version_ids:
            raise SourceNotFound(f"Civitai model {model.model_id} has no published version")
        version_id, sites = model.version_ids[0], [site]
    site, data = await _on_sites(
        sites,
        lambda base: http.json(
            "GET",
            f"{base}/api/v1/model-versions/{version_id}",
            f"Civitai has no model version {version_id}",
        ),
    )
    return site, _version(data), model


def _sites_from(site: str | None, configured: list[str]) -> list[str]:
    """The sites to ask, in order: all of them for no site or the main one (what it does
    not know may be on the NSFW site), else just the URL's own."""
    if site is None:
        return configured
    return configured[configured.index(site) :] if site in configured else [site]


def _version(data: Any) -> CivitaiVersion:
    try:
        return parse_version(data)
    except CivitaiBadResponse as exc:
        raise SourceUnreachable(f"Civitai's answer is not a model version: {exc.detail}") from None


async def _model(http: _Http, site: str, model_id: int | None) -> CivitaiModel:
    data = await http.json(
        "GET", f"{site}/api/v1/models/{model_id}?nsfw=true", f"Civitai has no model {model_id}"
    )
    try:
        return parse_model(data)
    except CivitaiBadResponse as exc:
        raise SourceUnreachable(f"Civitai's answer is not a model: {exc.detail}") from None


def pick_file(
    version: CivitaiVersion,
    file_id: int | None = None,
    *,
    hash: str | None = None,
    query: Mapping[str, str] | None = None,
) -> CivitaiFile:
    """The file of ``version`` to download: ``file_id``'s, else the one of ``hash`` (a
    SHA-256 or AutoV2), else the one a download link's ``query`` (type, format, size, fp)
    names, else the primary, else the first of type ``Model``, else the first."""
    files = version.files
    if not files:
        raise SourceNotFound(f"Civitai version {version.version_id} has no files")
    if file_id is not None:
        found = next((f for f in files if f.id == file_id), None)
        if found is None:
            ids = ", ".join(str(f.id) for f in files)
            raise SourceNotFound(
                f"Civitai version {version.version_id} has no file {file_id} (its files: {ids})"
            )
        return found
    if hash is not None:
        found = next((f for f in files if hash in (f.sha256, f.autov2())), None)
        if found is not None:
            return found
    if query:
        found = next((f for f in files if _matches(f, query)), None)
        if found is None:
            raise SourceNotFound(
                f"Civitai version {version.version_id} has no file of {dict(query)}"
            )
        return found
    return next(
        (f for f in files if f.primary),
        next((f for f in files if (f.type or "").lower() == "model"), files[0]),
    )


def _matches(file: CivitaiFile, query: Mapping[str, str]) -> bool:
    have = {k.lower(): v.lower() for k, v in file.metadata.items()}
    have["type"] = (file.type or "").lower()
    return all(have.get(key) == value.lower() for key, value in query.items())


async def _resolve_civitai(
    parsed: ParsedSource, http: _Http, file_id: int | None, expected: str | None
) -> Resolved:
    site, version, model = await _civitai_version(parsed, http)
    if model is None:
        try:
            model = await _model(http, site, version.model_id)
        except SourceNotFound:
            model = None  # the creator and tags are for the path template only
    file = pick_file(version, file_id, hash=parsed.hash, query=parsed.query)
    url = _download_url(file, version, site, parsed, http.settings)
    auth = host_port(url)
    token = http.settings.civitai_token
    if auth not in {host_port(s) for s in [*http.settings.civitai_sites(), site]}:
        auth = None
    return Resolved(
        kind="civitai",
        url=url,
        file_name=file_name_of(file.name or f"civitai-{version.version_id}.safetensors"),
        sha256=_agree(expected, file.sha256, "Civitai"),
        size=round(file.size_kb * 1024) if file.size_kb is not None else None,
        model_type=folder_of_civitai_type(version.model_type),
        auth_host=auth,
        headers={"Authorization": f"Bearer {token}"} if token and auth else {},
        civitai=version.file_block(site, file),
        values=_template_values(version, model),
    )


def _download_url(
    file: CivitaiFile,
    version: CivitaiVersion,
    site: str,
    parsed: ParsedSource,
    settings: SourceSettings,
) -> str:
    """The file's ``downloadUrl`` when it is an http(s) address on a Civitai site; else
    the download link built on ``site``."""
    url = file.download_url or ""
    on_civitai = {host_port(s) for s in [*settings.civitai_sites(), site]}
    if url.lower().startswith(("http://", "https://")) and host_port(url) in on_civitai:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return urlunsplit(parts._replace(fragment=""))
    query = "&".join(f"{k}={quote(v)}" for k, v in parsed.query.items())
    return f"{site}/api/download/models/{version.version_id}" + (f"?{query}" if query else "")


def _template_values(version: CivitaiVersion, model: CivitaiModel | None) -> dict[str, str]:
    return {
        "base_model": version.base_model or "",
        "model_name": version.model_name or (model.name if model else None) or "",
        "version_name": version.version_name or "",
        "author": (model.author if model else None) or "",
        "first_tag": model.tags[0] if model and model.tags else "",
    }


# ---------------------------------------------------------------- Hugging Face
async def _resolve_hf(parsed: ParsedSource, http: _Http, expected: str | None) -> Resolved:
    assert parsed.repo and parsed.path and parsed.revision
    site = parsed.site or http.settings.hf_url
    repo, path, rev = parsed.repo, parsed.path, quote(parsed.revision, safe="")
    missing = f"Hugging Face has no file {path} in {repo} at {parsed.revision}"
    data = await http.json(
        "POST",
        f"{site}/api/{parsed.repo_type}/{repo}/paths-info/{rev}",
        missing,
        hf=True,
        data={"paths": path},
    )
    entry = next(
        (
            e
            for e in (data if isinstance(data, list) else [])
            if isinstance(e, dict) and e.get("path") == path and e.get("type") == "file"
        ),
        None,
    )
    if entry is None:
        raise SourceNotFound(missing)
    lfs = entry.get("lfs") if isinstance(entry.get("lfs"), dict) else {}
    oid = lfs.get("oid")
    sha = oid.lower() if isinstance(oid, str) and _HEX64.fullmatch(oid) else None
    size = lfs.get("size", entry.get("size"))
    prefix = "datasets/" if parsed.repo_type == "datasets" else ""
    url = f"{site}/{prefix}{repo}/resolve/{rev}/{quote(path)}"
    token = http.settings.hf_token
    owner, _, name = repo.rpartition("/")  # "gpt2": no owner
    return Resolved(
        kind="hf",
        url=url,
        file_name=file_name_of(path.rpartition("/")[2]),
        sha256=_agree(expected, sha, "Hugging Face"),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        model_type=None,
        auth_host=host_port(url),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        civitai=None,
        values={**dict.fromkeys(TEMPLATE_KEYS, ""), "author": owner, "model_name": name},
    )
