"""``TagsService``: tag CRUD from request bodies, on top of the tag store.

Names are trimmed (inner runs of spaces collapsed) and unique regardless of case; colors
are ``#RRGGBB`` or null. The store enforces both (a 400 before it writes anything); this
service only checks the body's shape: known fields, and a name that is a string.
"""

from __future__ import annotations

from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import NotFoundError, ValidationError
from hikaze_mm.library.validation import check_keys

TAG_FIELDS = ("name", "color")


def _name(body: dict[str, Any]) -> str:
    """The name as given (the store trims and checks it); None is not a name here,
    whereas ``update(name=None)`` would mean "leave the name"."""
    name = body.get("name")
    if not isinstance(name, str):
        raise ValidationError("name must be a string")
    return name


class TagsService:
    def __init__(self, db: Library) -> None:
        self.db = db

    def list(self) -> list[dict[str, Any]]:
        """Every tag with ``model_count`` and ``pending_count``, by name."""
        return self.db.tags.list()

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        check_keys(body, TAG_FIELDS, "tag")
        if "name" not in body:
            raise ValidationError("name is required")
        tag = self.db.tags.create(_name(body), body.get("color"))
        return {**tag, "model_count": 0, "pending_count": 0}

    def update(self, tag_id: int, body: dict[str, Any]) -> dict[str, Any]:
        check_keys(body, TAG_FIELDS, "tag")
        kwargs: dict[str, Any] = {}
        if "name" in body:
            kwargs["name"] = _name(body)
        if "color" in body:
            kwargs["color"] = body["color"]
        return self.db.tags.update(tag_id, **kwargs)

    def delete(self, tag_id: int) -> dict[str, Any]:
        """Delete a tag; models and pending models that carried it lose it."""
        if not self.db.tags.delete(tag_id):
            raise NotFoundError(f"no tag {tag_id}")
        return {"id": tag_id, "deleted": True}
