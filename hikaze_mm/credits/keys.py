"""Civitai's names for a resource: the AutoV2 hash and the keys of the ``Hashes`` object.

Civitai reads ``Hashes: {...}`` with a pattern that stops at the first ``}`` and
``Civitai resources: [...]`` at the first ``]``, so any name written inside them is cleaned
first: no braces, brackets, quotes, commas, colons or control characters.
"""

from __future__ import annotations

import re
import unicodedata

ROLES = ("model", "lora", "embedding")
# ``model`` is a checkpoint or a diffusion model: Civitai credits both only under "model".
KEY_PREFIXES = {"model": "model", "lora": "lora", "embedding": "embed"}
FALLBACK_NAME = "model"
MAX_NAME_CHARS = 200
UNSAFE_CHARS = frozenset("{}[]\"',:")
# Control characters, surrogates and line/paragraph separators become spaces.
SPACED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_HEX = re.compile(r"[0-9a-fA-F]+")


def autov2(sha256: str) -> str:
    """Civitai's AutoV2 hash: the first 10 hex digits of the SHA-256, upper case."""
    head = sha256.strip()[:10]
    if len(head) != 10 or not _HEX.fullmatch(head):
        raise ValueError(f"not a SHA-256: {sha256!r:.80}")
    return head.upper()


def clean_text(text: str) -> str:
    """``text`` without the characters that break Civitai's parser, spaces collapsed and
    stripped, at most ``MAX_NAME_CHARS`` long; may be empty."""
    kept = []
    for char in text:
        if char in UNSAFE_CHARS:
            continue
        kept.append(" " if unicodedata.category(char) in SPACED_CATEGORIES else char)
    return " ".join("".join(kept).split())[:MAX_NAME_CHARS].strip()


def clean_name(name: str) -> str:
    """A resource name safe inside a ``Hashes`` key or a JSON string; never empty."""
    return clean_text(name) or FALLBACK_NAME


def hashes_key(role: str, name: str) -> str:
    """The ``Hashes`` key of a resource: ``model``, ``lora:<name>`` or ``embed:<name>``."""
    if role not in KEY_PREFIXES:
        raise ValueError(f"unknown resource role {role!r}; one of {', '.join(ROLES)}")
    if role == "model":
        return "model"
    return f"{KEY_PREFIXES[role]}:{clean_name(name)}"
