"""Plain ``http(s)://`` sources, resolved without asking anyone: the URL is the file.

``library/download_sources.py`` resolves every source form (Civitai, Hugging Face, URLs);
this module is the fallback the download service uses for a URL when that module is not
there, and the check it runs on a URL before queueing it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from hikaze_mm.errors import ValidationError


class ResolvedSource(Protocol):
    """What the download service reads of a resolved source (``download_sources.Resolved``
    has these fields)."""

    @property
    def kind(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def file_name(self) -> str: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def size(self) -> int | None: ...
    @property
    def model_type(self) -> str | None: ...
    @property
    def auth_host(self) -> str | None: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def civitai(self) -> dict[str, Any] | None: ...
    @property
    def values(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class UrlResolved:
    """The fields of ``download_sources.Resolved`` a plain URL fills."""

    kind: str
    url: str
    file_name: str
    sha256: str | None = None
    size: int | None = None
    model_type: str | None = None
    auth_host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    civitai: dict[str, Any] | None = None
    values: Mapping[str, str] = field(default_factory=dict)


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def check_url(source: str) -> str:
    """An http(s) URL with a host; ValidationError otherwise."""
    try:
        parts = urlsplit(source)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValidationError(f"not a URL we can download: {redact(source)}")
    return source


def resolve_url(source: str, sha256: str | None = None) -> UrlResolved:
    check_url(source)
    name = unquote(posixpath.basename(urlsplit(source).path)) or "download"
    return UrlResolved(kind="url", url=source, file_name=name, sha256=sha256)


_SECRET_KEYS = ("token", "key", "api_key", "apikey", "access_token", "sig", "signature")


def redact(url: str) -> str:
    """``url`` with the values of token-like query parameters and any user info hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query and "@" not in parts.netloc:
        return url
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        key, sep, _value = pair.partition("=")
        pairs.append(f"{key}=***" if sep and key.lower() in _SECRET_KEYS else pair)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc, query="&".join(pairs)).geturl()
