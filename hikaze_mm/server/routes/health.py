from __future__ import annotations

from aiohttp import web

from hikaze_mm import __version__
from hikaze_mm.server.http import HOST_KEY, json_response, run_sync, services

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    db = services(request).db
    revision = await run_sync(db.schema_version)
    return json_response(
        {
            "status": "ok",
            "version": __version__,
            "schema_revision": revision,
            "host": request.app[HOST_KEY],
        }
    )


@routes.get("/api/hosts")
async def hosts(request: web.Request) -> web.Response:
    """The hosts the catalog has seen: ``[{name, release, first_seen, last_seen}]``."""
    return json_response(await run_sync(services(request).db.hosts))
