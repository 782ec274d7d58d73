"""Legacy (v2) import and the promotion of pending models.

Stage 1's library function is exported here: ``from hikaze_mm.migration import
import_legacy_data`` (see ``hikaze_mm.migration.importer``). The export is lazy so that
importing one module of the package (e.g. running the image worker processes,
``python -m hikaze_mm.migration.legacy_workers``) does not import them all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImportReport", "import_legacy_data"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hikaze_mm.migration import importer

        return getattr(importer, name)
    raise AttributeError(f"module 'hikaze_mm.migration' has no attribute {name!r}")
