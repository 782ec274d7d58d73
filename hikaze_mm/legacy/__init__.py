"""Stage 1: the one-time import of a legacy (v2, path-based) library.

Only the CLI, the server and ``hikaze_mm.services`` import this package; the library core
(``library``, ``pending``) never does. ``import_legacy_data`` is exported lazily so that
the image worker processes (``python -m hikaze_mm.legacy.workers``) import only what
they use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImportReport", "import_legacy_data"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hikaze_mm.legacy import importer

        return getattr(importer, name)
    raise AttributeError(f"module 'hikaze_mm.legacy' has no attribute {name!r}")
