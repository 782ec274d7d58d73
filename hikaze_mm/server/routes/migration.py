"""Stage 2 API: promote pending models, run the background migration, hash a model file."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hikaze_mm.params import parse_index
from hikaze_mm.policy import PENDING_PAGE_LIMIT
from hikaze_mm.server.http import int_param, json_response, read_json, run_sync, services
from hikaze_mm.server.requests import migration as parse

routes = web.RouteTableDef()


async def optional_json(request: web.Request) -> dict[str, Any]:
    """The JSON body, or {} when the request has none."""
    if not request.body_exists:
        return {}
    return await read_json(request)


@routes.post("/api/migration/import_a_model")
async def import_a_model(request: web.Request) -> web.Response:
    """``{"id", "conf_strategy"}``: promote one pending model (409 on a conflict)."""
    promotion = parse.promote_one(await read_json(request))
    return json_response(await run_sync(services(request).pending.promote, promotion))


@routes.post("/api/migration/import_models")
async def import_models(request: web.Request) -> web.Response:
    """``{"ids", "conf_strategy"}``: promote many, a result each."""
    promotion = parse.promote_many(await read_json(request))
    return json_response(await run_sync(services(request).pending.promote_many, promotion))


@routes.post("/api/migration/start")
async def start(request: web.Request) -> web.Response:
    """``{legacy_db_path?, legacy_images_dir?, conf_strategy?}`` (or ``conflict_policy``)."""
    start = parse.migration_start(await optional_json(request))
    status = await run_sync(
        services(request).migration.start_full_migration,
        start.legacy_db_path,
        start.legacy_images_dir,
        conf_strategy=start.conf_strategy,
    )
    return json_response(status)


@routes.post("/api/migration/pause")
async def pause(request: web.Request) -> web.Response:
    return json_response(await run_sync(services(request).migration.pause_processing))


@routes.post("/api/migration/resume")
async def resume(request: web.Request) -> web.Response:
    return json_response(await run_sync(services(request).migration.resume_processing))


@routes.get("/api/migration/status")
async def status(request: web.Request) -> web.Response:
    svc = services(request)

    def read() -> dict[str, Any]:
        result = svc.migration.get_status()
        result["stats"].update(svc.hashes.totals())  # this host's, since it started
        result["pending"] = svc.db.pending.counts()
        result["legacy_import"] = svc.legacy_import.status()
        return result

    return json_response(await run_sync(read))


@routes.get("/api/migration/pending")
async def pending_list(request: web.Request) -> web.Response:
    offset = int_param(request, "offset", 0)
    limit = int_param(request, "limit", 100, minimum=1, maximum=PENDING_PAGE_LIMIT)
    wanted = request.query.get("status") or None
    pending = services(request).pending
    return json_response(await run_sync(pending.list, status=wanted, offset=offset, limit=limit))


@routes.get("/api/migration/pending/{pending_id}")
async def pending_detail(request: web.Request) -> web.Response:
    pending_id = parse_index(request.match_info["pending_id"], "pending id")
    return json_response(await run_sync(services(request).pending.detail, pending_id))


@routes.post("/api/models/sha256")
async def model_sha256(request: web.Request) -> web.Response:
    """``{"path", "pending_status": "pending" | "ignore"}``: hash a model file."""
    wanted = parse.hash_file(await read_json(request))
    return json_response(await run_sync(services(request).pending.hash_model_file, wanted))
