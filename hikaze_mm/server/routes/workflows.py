"""Workflows API: the models a workflow (or an image's workflow) needs, and fetching the
ones the library lacks."""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.credits.containers import MAX_INSPECT_BYTES
from hikaze_mm.server.http import bool_param, json_response, read_json, run_sync, services

routes = web.RouteTableDef()

# A workflow, or an image of at most 32 MiB in base64 with room for the JSON around it.
MAX_WORKFLOW_BODY = MAX_INSPECT_BYTES * 4 // 3 + 64 * 1024


@routes.post("/api/workflows/missing")
async def missing_models(request: web.Request) -> web.Response:
    """A workflow (UI or API shape) or ``{"image": <base64>}`` -> ``{resources}``; sources
    are looked up (Civitai by hash, the workflow's URLs) unless ``?lookup=false``."""
    lookup = bool_param(request, "lookup", True)
    body = await read_json(request, limit=MAX_WORKFLOW_BODY)
    workflows = services(request).workflows
    return json_response(await run_sync(lambda: workflows.missing(body, lookup=lookup)))


@routes.post("/api/workflows/fetch-missing")
async def fetch_missing(request: web.Request) -> web.Response:
    """The same body: a download queued for each missing model with a source."""
    body = await read_json(request, limit=MAX_WORKFLOW_BODY)
    workflows = services(request).workflows
    return json_response(await run_sync(workflows.fetch_missing, body), status=202)
