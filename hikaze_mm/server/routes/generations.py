"""Generations API: what each model made (HikazeSaveImage's records), their files, and
turning one into a model image."""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.errors import ValidationError
from hikaze_mm.library.generations_service import MAX_PAGE
from hikaze_mm.params import parse_index
from hikaze_mm.server.http import int_param, json_response, read_json, run_sync, services
from hikaze_mm.server.routes.images import PENDING_CACHE_CONTROL, file_response

routes = web.RouteTableDef()


def _generation_id(request: web.Request) -> int:
    return parse_index(request.match_info["generation_id"], "generation id")


@routes.get("/api/models/{sha256}/generations")
async def model_generations(request: web.Request) -> web.Response:
    """``?offset=&limit=`` -> ``{total, items}``, newest first."""
    offset = int_param(request, "offset", 0)
    limit = int_param(request, "limit", 50, minimum=1, maximum=MAX_PAGE)
    generations = services(request).generations
    page = await run_sync(generations.for_model, request.match_info["sha256"], offset, limit)
    return json_response(page)


@routes.get("/api/generations/{generation_id}/image")
async def generation_image(request: web.Request) -> web.Response:
    """The saved image, only from ComfyUI's output folder; 404 when it is gone."""
    generation_id = _generation_id(request)
    generations = services(request).generations
    found = await run_sync(generations.image, generation_id, request.headers.get("If-None-Match"))
    return file_response(found, PENDING_CACHE_CONTROL)


@routes.post("/api/generations/{generation_id}/add-to-model")
async def add_to_model(request: web.Request) -> web.Response:
    """``{"sha256": ...}``: store the image as one of that model's images."""
    generation_id = _generation_id(request)
    body = await read_json(request)
    if set(body) != {"sha256"} or not isinstance(body["sha256"], str):
        raise ValidationError('body must be {"sha256": "<sha256>"}')
    generations = services(request).generations
    result = await run_sync(generations.add_to_model, generation_id, body["sha256"])
    return json_response(result, status=201)
