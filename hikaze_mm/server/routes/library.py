"""Library API: model listing, detail, edits, deletion, facets, stats and tags.

Handlers only parse the request, run a library service off the event loop and answer.
``/api/models/types`` and ``/api/models/bases`` are declared before ``/api/models/{sha256}``
(routes match in declaration order). No ``POST /api/models/{sha256}`` exists: that path
shape belongs to ``POST /api/models/sha256`` of the migration routes.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.library.queries import query_from_params
from hikaze_mm.params import parse_index
from hikaze_mm.server.http import (
    bool_param,
    json_response,
    json_text_response,
    read_json,
    run_sync,
    services,
)
from hikaze_mm.server.requests import edits as parse
from hikaze_mm.server.requests.jobs import probe_every
from hikaze_mm.server.requests.moves import model_move

routes = web.RouteTableDef()


# ---------------------------------------------------------------- models
@routes.get("/api/models")
async def list_models(request: web.Request) -> web.Response:
    """Query: type, base, tags=a,b, exclude_tags, q, folder, used, sort, order, offset,
    limit, include_missing."""
    multi = {key: request.query.getall(key, []) for key in ("tags", "exclude_tags")}
    query = query_from_params(request.query, multi)
    return json_text_response(await run_sync(services(request).models.list_json, query))


@routes.get("/api/models/types")
async def model_types(request: web.Request) -> web.Response:
    include_missing = bool_param(request, "include_missing")
    models = services(request).models
    return json_response(await run_sync(models.type_counts, include_missing=include_missing))


@routes.get("/api/models/bases")
async def model_bases(request: web.Request) -> web.Response:
    include_missing = bool_param(request, "include_missing")
    models = services(request).models
    return json_response(await run_sync(models.base_counts, include_missing=include_missing))


@routes.get("/api/models/folders")
async def model_folders(request: web.Request) -> web.Response:
    """The subfolder tree of each model root, with the models under each folder."""
    return json_response(await run_sync(services(request).models.folders))


@routes.post("/api/models/bulk/tags")
async def bulk_tags(request: web.Request) -> web.Response:
    """``{"sha256s": [...], "add": [...], "remove": [...]}``: one transaction."""
    edit = parse.bulk_tags(await read_json(request))
    return json_response(await run_sync(services(request).models.bulk_tags, edit))


@routes.post("/api/models/bulk/delete")
async def bulk_delete(request: web.Request) -> web.Response:
    """``{"sha256s": [...], "delete_file": bool}``: a summary of what was deleted."""
    deletion = parse.bulk_delete(await read_json(request))
    return json_response(await run_sync(services(request).models.bulk_delete, deletion))


@routes.post("/api/models/move")
async def move_models(request: web.Request) -> web.Response:
    """``{"sha256s": [...], "template"?, "dry_run"?}`` or ``{"sha256", "folder", "dry_run"?}``:
    ``{counts, results: [{sha256, from, to, status, error}]}`` (``organizer``)."""
    move = model_move(await read_json(request))
    return json_response(await run_sync(services(request).organizer.move, move))


@routes.post("/api/models/probe")
async def probe_models(request: web.Request) -> web.Response:
    """``{"all": bool}`` (optional): probe the headers of the models with no base (``all``:
    every model whose base no user set) in the background; 202 with the status, 409 busy."""
    every = probe_every(await read_json(request) if request.body_exists else None)
    return json_response(await run_sync(services(request).prober.start, every=every), status=202)


@routes.get("/api/models/probe/status")
async def probe_status(request: web.Request) -> web.Response:
    return json_response(services(request).prober.status())


@routes.get("/api/duplicates")
async def duplicates(request: web.Request) -> web.Response:
    """Models found at several paths, the largest waste first."""
    return json_response(await run_sync(services(request).models.duplicates))


@routes.delete("/api/models/{sha256}/files")
async def delete_copy(request: web.Request) -> web.Response:
    """``?path=...&confirm=true``: delete one extra copy of a model's file."""
    sha = request.match_info["sha256"]
    path = request.query.get("path")
    confirm = bool_param(request, "confirm")
    models = services(request).models
    return json_response(await run_sync(models.delete_copy, sha, path, confirm=confirm))


@routes.get("/api/models/{sha256}")
async def get_model(request: web.Request) -> web.Response:
    sha = request.match_info["sha256"]
    return json_response(await run_sync(services(request).models.detail, sha))


@routes.patch("/api/models/{sha256}")
async def patch_model(request: web.Request) -> web.Response:
    sha = request.match_info["sha256"]
    patch = parse.model_patch(await read_json(request))
    return json_response(await run_sync(services(request).models.patch, sha, patch))


@routes.delete("/api/models/{sha256}")
async def delete_model(request: web.Request) -> web.Response:
    """Removes the record and its images; ``?delete_file=true`` also deletes the file."""
    sha = request.match_info["sha256"]
    delete_file = bool_param(request, "delete_file")
    models = services(request).models
    return json_response(await run_sync(models.delete, sha, delete_file=delete_file))


@routes.post("/api/models/{sha256}/used")
async def mark_used(request: web.Request) -> web.Response:
    models = services(request).models
    return json_response(await run_sync(models.mark_used, request.match_info["sha256"]))


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.Response:
    return json_response(await run_sync(services(request).models.stats))


# ---------------------------------------------------------------- tags
@routes.get("/api/tags")
async def list_tags(request: web.Request) -> web.Response:
    return json_response(await run_sync(services(request).tags.list))


@routes.post("/api/tags")
async def create_tag(request: web.Request) -> web.Response:
    tag = await run_sync(services(request).tags.create, parse.tag_create(await read_json(request)))
    return json_response(tag, status=201)


@routes.patch("/api/tags/{tag_id}")
async def update_tag(request: web.Request) -> web.Response:
    tag_id = parse_index(request.match_info["tag_id"], "tag id")
    update = parse.tag_update(await read_json(request))
    return json_response(await run_sync(services(request).tags.update, tag_id, update))


@routes.delete("/api/tags/{tag_id}")
async def delete_tag(request: web.Request) -> web.Response:
    tag_id = parse_index(request.match_info["tag_id"], "tag id")
    return json_response(await run_sync(services(request).tags.delete, tag_id))
