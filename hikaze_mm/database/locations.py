"""Where the catalog's paths are on this host: named roots (``HIKAZE_ROOT_NAMES``).

A studio's hosts mount one NAS at different paths (``/mnt/models`` on one, ``Z:\\models``
on another). Below a root this host has named, the catalog stores a *location*, the same
on every host: ``@NAME/relative/path``, with ``/`` separators and Unicode NFC. No absolute
path starts with ``@``, so a location never reads as a path. Everywhere else a path is
stored as it is (a root without a name keeps the behaviour of a single machine).

The stores translate at their edge: ``stored`` on the way in, ``host`` on the way out. A
location on a root this host does not mount has no path here (``host`` gives None); the
stores leave such rows out of the work lists of a scan and show the location itself in
records, with ``mounted`` false.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MARK = "@"


def root_of(stored: str) -> str | None:
    """The root name of a stored location (``@nas/x`` -> ``nas``), or None for a path."""
    if not stored.startswith(MARK):
        return None
    return stored[1:].partition("/")[0]


class Locations:
    """This host's mapping of root names to folders (none: every path stored as it is)."""

    def __init__(
        self,
        roots: Sequence[tuple[str, Path]] = (),
        sep: str = os.sep,
        fold: Callable[[str], str] = os.path.normcase,
    ) -> None:
        """``fold``: how this host's file system compares names (``normcase``: case folded
        on Windows), for telling whether a path lies below a named root."""
        self.sep = sep
        self._fold = fold
        self.folders = {name: str(folder).rstrip(sep) or sep for name, folder in roots}
        # The deepest folder first, so a root named inside another takes its own files.
        self._by_depth = sorted(
            ((fold(folder), name) for name, folder in self.folders.items()),
            key=lambda p: -len(p[0]),
        )

    @property
    def named(self) -> bool:
        return bool(self.folders)

    def stored(self, path: str | os.PathLike[str]) -> str:
        """``path`` as the catalog keeps it: a location below a named root, else as given."""
        text = os.fspath(path)
        if not self._by_depth or text.startswith(MARK):
            return text
        folded = self._fold(text)
        for folder, name in self._by_depth:
            if folded == folder:
                return MARK + name
            if folded.startswith(folder + self.sep):
                rel = unicodedata.normalize("NFC", text[len(folder) + 1 :].replace(self.sep, "/"))
                return f"{MARK}{name}/{rel}"
        return text

    def host(self, stored: str) -> str | None:
        """This host's path of a stored path or location; None for a location on a root
        this host does not mount."""
        name = root_of(stored)
        if name is None:
            return stored
        folder = self.folders.get(name)
        if folder is None:
            return None
        rel = stored[len(name) + 2 :]
        if not rel:
            return folder
        return folder.rstrip(self.sep) + self.sep + rel.replace("/", self.sep)

    def shown(self, stored: str) -> str:
        """This host's path, or the location itself where this host has none."""
        found = self.host(stored)
        return stored if found is None else found

    def mounted(self, stored: str) -> bool:
        return self.host(stored) is not None

    def here(self, rows: Sequence[tuple[Any, ...]], at: int = 0) -> list[tuple[Any, ...]]:
        """``rows`` with their stored path (index ``at``) as this host's path, less those on
        a root this host does not mount: no file of theirs is reachable here, so they are
        no work of this host's."""
        found = []
        for row in rows:
            stored = row[at]
            if not stored.startswith(MARK):  # a path: the row as it is (most rows, fast)
                found.append(row)
            elif (path := self.host(stored)) is not None:
                found.append((*row[:at], path, *row[at + 1 :]))
        return found

    def show(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` (a dict with ``path``, and ``missing`` for a model) as this host shows
        it, changed in place: where this host names roots or the path is a location, its
        ``path`` is this host's (or the location, unmounted), ``location`` is
        ``{"root", "path"}`` or None, ``mounted`` says whether this host reaches the root,
        and ``missing`` is true where it does not."""
        stored = record["path"]
        if not (self._by_depth or stored.startswith(MARK)):
            return record
        record["path"] = self.shown(stored)
        record["location"] = self.location(stored)
        record["mounted"] = self.mounted(stored)
        if "missing" in record:
            record["missing"] = bool(record["missing"]) or not record["mounted"]
        return record

    def location(self, stored: str) -> dict[str, str] | None:
        """``{"root", "path"}`` of a stored location (what the API shows), or None."""
        name = root_of(stored)
        if name is None:
            return None
        return {"root": name, "path": stored[len(name) + 2 :]}


NO_NAMES = Locations()
