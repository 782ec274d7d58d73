"""Update checks: which models have a newer version on Civitai.

``POST /api/updates/check`` starts the check (the ``updates`` job: 202, 409 while one
runs), ``GET /api/updates/status`` follows it, ``GET /api/updates`` lists the models with
an update, and ``POST /api/models/{sha256}/update/ignore`` never offers that version again.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.server.http import json_response, read_json, run_sync, services
from hikaze_mm.server.requests.jobs import ignored_version, update_check_any_base

routes = web.RouteTableDef()


@routes.post("/api/updates/check")
async def check(request: web.Request) -> web.Response:
    """Optional body ``{"any_base": true}``: 202 with the job's status."""
    any_base = update_check_any_base(await read_json(request) if request.body_exists else None)
    status = await run_sync(services(request).updates.start, any_base=any_base)
    return json_response(status, status=202)


@routes.get("/api/updates/status")
async def status(request: web.Request) -> web.Response:
    return json_response(services(request).updates.status())


@routes.get("/api/updates")
async def updates(request: web.Request) -> web.Response:
    """``{"items": [...]}``: the models whose ``meta.update`` names a newer version."""
    items = await run_sync(services(request).updates.list)
    return json_response({"items": items, "total": len(items)})


@routes.post("/api/models/{sha256}/update/ignore")
async def ignore(request: web.Request) -> web.Response:
    version_id = ignored_version(await read_json(request))
    sha = request.match_info["sha256"]
    return json_response(await run_sync(services(request).updates.ignore, sha, version_id))
