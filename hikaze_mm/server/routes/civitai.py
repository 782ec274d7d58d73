"""Civitai API: look models up by hash (``POST /api/civitai/fetch``, a background job),
follow the job (``GET /api/civitai/status``), or look one model up now
(``POST /api/models/{sha256}/civitai``).

Every lookup here is an explicit request, so it runs whatever ``HIKAZE_CIVITAI_AUTO``
says. Civitai failing is not the client's mistake: the single lookup answers 502
``{"error": "Civitai unreachable", "detail"}`` (or "Bad answer from Civitai"), and a
hash Civitai does not know is a 200 whose ``civitai.status`` is ``not_found``.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.server.http import json_response, read_json, run_sync, services
from hikaze_mm.server.requests.jobs import civitai_fetch, civitai_force

routes = web.RouteTableDef()


@routes.post("/api/civitai/fetch")
async def fetch(request: web.Request) -> web.Response:
    """``{"sha256s": [...]}`` or ``{"missing": true}`` (``"force": true`` asks again about
    hashes remembered as unknown): 202 with the job's status, 409 while one runs."""
    fetch = civitai_fetch(await read_json(request))
    status = await run_sync(
        services(request).civitai.start,
        sha256s=fetch.sha256s,
        missing=fetch.missing,
        force=fetch.force,
    )
    return json_response(status, status=202)


@routes.get("/api/civitai/status")
async def status(request: web.Request) -> web.Response:
    """Progress of the running job (or the last one's), from memory."""
    return json_response(services(request).civitai.status())


@routes.post("/api/models/{sha256}/civitai")
async def lookup_one(request: web.Request) -> web.Response:
    """Look one model up now; its detail with ``civitai`` (this lookup's result).
    Optional body ``{"force": true}``."""
    force = civitai_force(await read_json(request) if request.body_exists else {})
    civitai = services(request).civitai
    sha = request.match_info["sha256"]
    return json_response(await run_sync(civitai.lookup_one, sha, force=force))
