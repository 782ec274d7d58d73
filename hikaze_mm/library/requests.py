"""The typed requests the library services take: a model patch, bulk edits, tag edits,
an image order, a Civitai lookup and a scan.

Each is checked and normalized where it enters (``hikaze_mm.server.requests`` parses the
API's JSON bodies into them), so a service never sees a raw body. ``KEEP`` marks a
field a request leaves as it is, where ``None`` would clear it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from hikaze_mm.database import TagRef


class Keep(enum.Enum):
    """The type of ``KEEP``: a field left unchanged."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class TagEdit:
    """Tags by name (created when new; any case matches) or by id (which must exist):
    ``set_to`` replaces the model's tags, else ``add`` and ``remove`` (a tag the model
    lacks is not an error)."""

    add: tuple[TagRef, ...] = ()
    remove: tuple[TagRef, ...] = ()
    set_to: tuple[TagRef, ...] | None = None


@dataclass(frozen=True)
class MetaEdit:
    """``meta_json`` as a JSON merge patch (RFC 7386) or as the whole new meta."""

    mode: Literal["merge", "replace"]
    value: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelPatch:
    """An edit of one model, applied all or nothing. ``trigger_words`` ``()`` and
    ``preferred_weight`` ``None`` clear those fields; ``base`` ``None`` clears the base."""

    name: str | Keep = KEEP
    type: str | Keep = KEEP
    base: str | Keep | None = KEEP
    meta: MetaEdit | None = None
    trigger_words: tuple[str, ...] | Keep = KEEP
    preferred_weight: float | Keep | None = KEEP
    tags: TagEdit | None = None

    def columns(self) -> dict[str, str | None]:
        """The columns this patch sets (``name``, ``type``, ``base``)."""
        given = {"name": self.name, "type": self.type, "base": self.base}
        return {key: value for key, value in given.items() if value is not KEEP}

    def meta_fields(self) -> dict[str, Any]:
        """The meta fields this patch sets as fields of their own (None or [] clears)."""
        given = {"trigger_words": self.trigger_words, "preferred_weight": self.preferred_weight}
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in given.items()
            if value is not KEEP
        }

    def changes_meta(self) -> bool:
        """Whether the model's meta changes (a user's edit of ``base`` is recorded there)."""
        return self.meta is not None or bool(self.meta_fields()) or self.base is not KEEP


@dataclass(frozen=True)
class BulkTags:
    """Add and remove tags on many models in one transaction."""

    sha256s: tuple[str, ...]
    add: tuple[TagRef, ...] = ()
    remove: tuple[TagRef, ...] = ()


@dataclass(frozen=True)
class BulkDelete:
    """Delete many models (their files too with ``delete_file``)."""

    sha256s: tuple[str, ...]
    delete_file: bool = False


@dataclass(frozen=True)
class ModelMove:
    """Move models: each to its template folder (``template``; None: the configured one),
    or to ``folder`` (absolute, or relative to the model's type folder). ``dry_run``
    plans without touching anything."""

    sha256s: tuple[str, ...]
    template: str | None = None
    folder: str | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class TagCreate:
    """A new tag: a normalized name, a ``#rrggbb`` color or None."""

    name: str
    color: str | None = None


@dataclass(frozen=True)
class TagUpdate:
    """A tag's new name or color (None removes the color)."""

    name: str | Keep = KEEP
    color: str | Keep | None = KEEP


@dataclass(frozen=True)
class ImageOrder:
    """A model's image seqs in their new order (the first is the cover)."""

    seqs: tuple[int, ...]


@dataclass(frozen=True)
class CivitaiFetch:
    """Look models up on Civitai: these hashes, or (``missing``) every model without
    Civitai's data; ``force`` asks again about hashes Civitai did not know lately."""

    sha256s: tuple[str, ...] | None = None
    missing: bool = False
    force: bool = False


@dataclass(frozen=True)
class ScanRequest:
    """A scan of the model roots; with ``immediate_hashing`` new files are hashed and
    promoted at once, a conflict resolved by ``conf_strategy`` (None: reported)."""

    immediate_hashing: bool = False
    conf_strategy: str | None = None
