"""Change events: what a committed change touched, for the screens that show it.

Every committed change to the tracked tables (``TRACKED``) becomes a ``Change``: its kind
(``models``, ``tags``, ``images``, ``pending``), the keys it touched (a model's SHA-256, a
tag's or a pending model's id, as text), or ``bulk`` past ``MAX_KEYS``, and the host that
made it. Jobs announce themselves (``jobs``, by name) through ``Library.notify``. A
library calls the callback given to ``watch_changes`` with each one, from a thread of its
own: SQLite in this process, after the change commits (temporary triggers call
``hikaze_changed``, a function of the connection, and the keys wait for the COMMIT);
PostgreSQL for every process of the catalog, by ``NOTIFY`` (``postgres/schema``'s
triggers; a listener connection, ``postgres/listener``). A listener that lost its
connection says ``resync`` once it is back, since what was sent meanwhile is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# The channel of PostgreSQL's NOTIFY.
CHANNEL = "hikaze_changes"
# A change that touched more keys than this is sent as ``bulk`` (NOTIFY's payload is at
# most 8,000 bytes: 100 hashes fit).
MAX_KEYS = 100
KINDS = ("models", "tags", "images", "pending", "jobs", "resync")
# table -> (kind, key column): the tables whose changes are sent.
TRACKED = {
    "models": ("models", "sha256"),
    "model_tags": ("models", "model_hash"),
    "tags": ("tags", "id"),
    "pending_import": ("pending", "id"),
    "image_pixels": ("images", "sha256"),
}


@dataclass(frozen=True)
class Change:
    kind: str
    keys: tuple[str, ...]
    bulk: bool
    host: str

    def data(self) -> dict[str, Any]:
        """What an event says (``GET /api/events``)."""
        return {"keys": list(self.keys), "bulk": self.bulk, "host": self.host}

    def payload(self) -> str:
        """As NOTIFY sends it."""
        return json.dumps({"kind": self.kind, **self.data()}, separators=(",", ":"))


ChangeCallback = Callable[[Change], None]


def change_of(kind: str, keys: Iterable[Any], host: str) -> Change:
    """A change of these keys (``bulk`` past ``MAX_KEYS``)."""
    unique = tuple(dict.fromkeys(str(key) for key in keys))
    if len(unique) > MAX_KEYS:
        return Change(kind, (), True, host)
    return Change(kind, unique, False, host)


def parse_payload(text: str) -> Change | None:
    """A NOTIFY payload as a ``Change`` (None for one this release cannot read)."""
    try:
        raw = json.loads(text)
        kind, keys, host = raw["kind"], raw.get("keys"), raw.get("host")
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in KINDS:
        return None
    if keys is None:
        return Change(kind, (), True, str(host or ""))
    return Change(kind, tuple(str(k) for k in keys), bool(raw.get("bulk")), str(host or ""))


def sqlite_triggers() -> list[str]:
    """Temporary triggers (of one connection, never in the file) that pass each changed
    row's key to ``hikaze_changed(kind, key)``."""
    statements = []
    for table, (kind, column) in TRACKED.items():
        for op, rows in (("INSERT", ("NEW",)), ("UPDATE", ("NEW", "OLD")), ("DELETE", ("OLD",))):
            calls = " ".join(f"SELECT hikaze_changed('{kind}', {row}.{column});" for row in rows)
            statements.append(
                f"CREATE TEMP TRIGGER IF NOT EXISTS hikaze_{table}_{op.lower()} AFTER {op} "
                f"ON main.{table} BEGIN {calls} END"
            )
    return statements


class PendingChanges:
    """The keys one connection's open transaction touched, by kind."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, None]] = {}

    def add(self, kind: str, key: Any) -> None:
        self.keys.setdefault(kind, {})[str(key)] = None

    def take(self, host: str) -> list[Change]:
        changes = [change_of(kind, keys, host) for kind, keys in self.keys.items()]
        self.keys = {}
        return changes
