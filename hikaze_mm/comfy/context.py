"""What the Hikaze nodes use of the library, bound once by the plugin (``CONTEXT``).

ComfyUI creates nodes without arguments, so ``plugin._bind`` fills ``CONTEXT`` at start-up:
the resolver and use tracking for the loaders; for ``HikazeSaveImage`` the lookups that
credit a model by hash or by file (``credit_lookup.LibraryCredits``), ComfyUI's folder
lookup, and ``record_generation``. A library that could not open leaves its reason in
``broken``, and every loader fails with it (the save node still saves, without credits).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hikaze_mm.errors import HikazeError
from hikaze_mm.library.resolver import ModelResolver, Resolved

if TYPE_CHECKING:
    from hikaze_mm.comfy.credit_lookup import KnownModel
    from hikaze_mm.credits.infotext import Parameters, Resource

log = logging.getLogger("hikaze_mm.comfy")

CATEGORY = "Hikaze"


@dataclass
class Context:
    """What the nodes use: the resolver and use tracking, or why the library is broken."""

    resolver: ModelResolver | None = None
    mark_used: Callable[[str], object] | None = None
    trigger_words: Callable[[str], list[str]] | None = None
    # HikazeSaveImage: the library's model by SHA-256 / by absolute file path (the path,
    # else the hash cache for that exact file; never reading it); None when unknown.
    credit_model: Callable[[str], KnownModel | None] | None = None
    credit_file: Callable[[str], KnownModel | None] | None = None
    # (ComfyUI folder key, name as a node gave it, with or without extension) -> full path.
    find_file: Callable[[str, str], str | None] | None = None
    # (file relative to the output folder, parameters, resources, extra) -> generation id;
    # None when recording is off or the library is read-only.
    record_generation: (
        Callable[[str, Parameters, Sequence[Resource], dict[str, Any]], int] | None
    ) = None
    broken: str | None = "the Hikaze library has not been set up"

    def require(self) -> ModelResolver:
        if self.resolver is None:
            raise RuntimeError(f"Hikaze Model Manager: {self.broken}")
        return self.resolver

    def used(self, resolved: Resolved) -> None:
        if resolved.sha256 and self.mark_used is not None:
            try:
                self.mark_used(resolved.sha256)
            except HikazeError as exc:  # a model deleted meanwhile: the load still counts
                log.warning("hikaze: could not record the use of %s: %s", resolved.sha256, exc)


CONTEXT = Context()
