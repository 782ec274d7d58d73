"""Stage 1 API: ``POST /api/migration/migrate_legacy_db`` starts the one-time legacy import.

Body ``{"legacy_db_path": str, "legacy_images_dir": str | null}``. The input is checked
first: 400 for a missing or invalid field or a path that does not exist, 422 for a file
that is not a legacy v2 database, 409 while an import is running. Then the import runs in
the background and the answer is 202 ``{status, status_url, legacy_import}``; its progress,
report or error are polled from ``GET /api/migration/status`` (``legacy_import``), like a
scan's and Stage 2's. The image encoding runs in worker processes; the loop stays free.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.errors import ValidationError
from hikaze_mm.params import parse_path
from hikaze_mm.server.http import json_response, read_json, run_sync, services

routes = web.RouteTableDef()


def _path_field(body: dict, name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise ValidationError(f"{name} is required")
        return None
    return str(parse_path(value, name))


@routes.post("/api/migration/migrate_legacy_db")
async def migrate_legacy_db(request: web.Request) -> web.Response:
    body = await read_json(request)
    db_path = _path_field(body, "legacy_db_path", required=True)
    images_dir = _path_field(body, "legacy_images_dir", required=False)
    status = await run_sync(services(request).legacy_import.start, db_path, images_dir)
    status_url = request.path.rsplit("/", 1)[0] + "/status"
    response = json_response(
        {"status": "started", "status_url": status_url, "legacy_import": status}, status=202
    )
    response.headers["Location"] = status_url
    return response
