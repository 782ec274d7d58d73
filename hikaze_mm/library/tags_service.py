"""Tag CRUD from request bodies, on top of DatabaseManager's tag methods.

Names are trimmed (inner runs of spaces collapsed) and unique regardless of case; colors
are ``#RRGGBB`` or null. DatabaseManager enforces both (a 400 before it writes anything);
this module only checks the body's shape: known fields, and a name that is a string.
"""

from __future__ import annotations

from typing import Any

from hikaze_mm.database import DatabaseManager
from hikaze_mm.errors import NotFoundError, ValidationError
from hikaze_mm.library.validation import check_keys

TAG_FIELDS = ("name", "color")


def _name(body: dict[str, Any]) -> str:
    """The name as given (DatabaseManager trims and checks it); None is not a name here,
    whereas ``update_tag(name=None)`` would mean "leave the name"."""
    name = body.get("name")
    if not isinstance(name, str):
        raise ValidationError("name must be a string")
    return name


def list_tags(db: DatabaseManager) -> list[dict[str, Any]]:
    """Every tag with ``model_count`` and ``pending_count``, by name."""
    return db.list_tags()


def create_tag(db: DatabaseManager, body: dict[str, Any]) -> dict[str, Any]:
    check_keys(body, TAG_FIELDS, "tag")
    if "name" not in body:
        raise ValidationError("name is required")
    tag = db.create_tag(_name(body), body.get("color"))
    return {**tag, "model_count": 0, "pending_count": 0}


def update_tag(db: DatabaseManager, tag_id: int, body: dict[str, Any]) -> dict[str, Any]:
    check_keys(body, TAG_FIELDS, "tag")
    kwargs: dict[str, Any] = {}
    if "name" in body:
        kwargs["name"] = _name(body)
    if "color" in body:
        kwargs["color"] = body["color"]
    return db.update_tag(tag_id, **kwargs)


def delete_tag(db: DatabaseManager, tag_id: int) -> dict[str, Any]:
    """Delete a tag; models and pending models that carried it lose it."""
    if not db.delete_tag(tag_id):
        raise NotFoundError(f"no tag {tag_id}")
    return {"id": tag_id, "deleted": True}
