"""``TagsService``: tag CRUD on top of the tag store.

Names are trimmed (inner runs of spaces collapsed) and unique regardless of case; colors
are ``#RRGGBB`` or null. Requests come typed (``TagCreate``, ``TagUpdate``), checked where
they enter; the store enforces both rules again (a 400 before it writes anything), and
a name another tag has, in any case, is a 409.
"""

from __future__ import annotations

from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import NotFoundError
from hikaze_mm.library.requests import KEEP, TagCreate, TagUpdate


class TagsService:
    def __init__(self, db: Library) -> None:
        self.db = db

    def list(self) -> list[dict[str, Any]]:
        """Every tag with ``model_count`` and ``pending_count``, by name."""
        return self.db.tags.list()

    def create(self, request: TagCreate) -> dict[str, Any]:
        tag = self.db.tags.create(request.name, request.color)
        return {**tag, "model_count": 0, "pending_count": 0}

    def update(self, tag_id: int, request: TagUpdate) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if request.name is not KEEP:
            changes["name"] = request.name
        if request.color is not KEEP:
            changes["color"] = request.color
        return self.db.tags.update(tag_id, **changes)

    def delete(self, tag_id: int) -> dict[str, Any]:
        """Delete a tag; models and pending models that carried it lose it."""
        if not self.db.tags.delete(tag_id):
            raise NotFoundError(f"no tag {tag_id}")
        return {"id": tag_id, "deleted": True}
