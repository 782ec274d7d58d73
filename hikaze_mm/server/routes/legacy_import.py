"""Stage 1 API: ``POST /api/migration/migrate_legacy_db`` runs the one-time legacy import.

Body ``{"legacy_db_path": str, "legacy_images_dir": str | null}``. Answers 200 with the
report, 400 for a missing or invalid field or a path that does not exist, 422 for a file
that is not a legacy v2 database, 409 while an import is running (progress meanwhile in
``GET /api/migration/status``). The import runs in a worker thread, its image encoding in
worker processes, so the event loop stays free.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.errors import ValidationError
from hikaze_mm.server.http import json_response, read_json, run_sync, services

routes = web.RouteTableDef()

MAX_PATH_CHARS = 4096


def _path_field(body: dict, name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise ValidationError(f"{name} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string")
    if len(value) > MAX_PATH_CHARS or "\x00" in value:
        raise ValidationError(f"{name} is not a valid path")
    return value


@routes.post("/api/migration/migrate_legacy_db")
async def migrate_legacy_db(request: web.Request) -> web.Response:
    body = await read_json(request)
    db_path = _path_field(body, "legacy_db_path", required=True)
    images_dir = _path_field(body, "legacy_images_dir", required=False)
    job = services(request).legacy_import
    report = await run_sync(job.run_blocking, db_path, images_dir)
    return json_response(report)
