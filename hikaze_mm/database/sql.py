"""SQL helpers the stores share: path ranges, parameter chunks, rows as records.

Only stores import this module; code above ``database/`` never builds SQL.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from hikaze_mm.database.locations import MARK
from hikaze_mm.meta import parse_meta

# Columns that records (and the API) leave out: meta_json is parsed into ``meta``.
_INTERNAL_COLUMNS = frozenset(
    {
        "meta_json",
        "name_key",
        "name_fold",
        "path_fold",
        "words_fold",
        "search_fold",
        "tag_ids",
        "item_meta",
    }
)


def path_prefix_bounds(folder: str) -> tuple[str, str]:
    """``(low, high)`` such that ``low <= p < high`` holds exactly for paths below ``folder``.

    Every path below ``folder`` starts with ``folder + sep``; the next string after all
    of them swaps the separator for the character that follows it. A location
    (``@root/...``, ``database/locations.py``) is separated by ``/`` on every host.
    """
    sep = "/" if folder.startswith(MARK) else os.sep
    base = folder.rstrip(sep) or sep
    low = base if base.endswith(sep) else base + sep
    return low, low[:-1] + chr(ord(sep) + 1)


def path_ranges(column: str, folders: Sequence[str]) -> tuple[str, list[str]]:
    """``(column >= ? AND column < ?) OR ...``: the paths below ``folders``."""
    bounds = [path_prefix_bounds(folder) for folder in folders]
    where = " OR ".join(f"({column} >= ? AND {column} < ?)" for _ in bounds)
    return where, [value for pair in bounds for value in pair]


def chunks(items: Sequence[Any], size: int = 500) -> list[list[Any]]:
    """``items`` in lists of at most ``size`` (SQLite caps the bound parameters)."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def records(
    rows: Sequence[sqlite3.Row], tags: dict[Any, list[dict[str, Any]]], key: str
) -> list[dict[str, Any]]:
    """Rows as dicts: ``meta_json`` parsed into ``meta``, and each row's ``tags``."""
    result = []
    for row in rows:
        record = {k: row[k] for k in row.keys() if k not in _INTERNAL_COLUMNS}
        record["meta"] = parse_meta(row["meta_json"])
        record["tags"] = tags.get(row[key], [])
        result.append(record)
    return result
