"""Civitai's answer schema: a model version as ``by-hash`` answers it, parsed and checked.

A model version (``id``, ``modelId``, ``name``, ``model.name``, ``model.nsfw``,
``baseModel``, ``trainedWords``, ``description``, ``images[]`` with ``url``, ``nsfwLevel``,
``width``, ``height``) becomes a ``CivitaiVersion``; anything else is a
``CivitaiBadResponse``. The HTTP client (``civitai_client``) and the sidecar reader (a
``.civitai.info`` file holds the same JSON) both read it here; nothing here talks to the
network.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from hikaze_mm.errors import UpstreamError
from hikaze_mm.meta import MAX_TRIGGER_WORD_CHARS, MAX_TRIGGER_WORDS, trigger_words_of

MAX_DESCRIPTION_CHARS = 20_000
MAX_TEXT_CHARS = 255
MAX_BASE_CHARS = 64


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

    def meta_block(self, base_url: str) -> dict[str, Any]:
        """What ``meta.civitai`` holds."""
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
    nsfw = model.get("nsfw")
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
        images=images,
    )
