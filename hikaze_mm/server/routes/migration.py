"""Stage 2 API: promote pending models, run the background migration, hash a model file."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hikaze_mm.errors import ValidationError
from hikaze_mm.hashing import FileChangedError
from hikaze_mm.params import parse_index
from hikaze_mm.pending.operations import (
    PAGE_LIMIT,
    check_ids,
    hash_answer,
    hash_failure,
    list_pending,
    pending_id_for,
    promote_batch,
    resolve_hash_path,
)
from hikaze_mm.pending.promotion import API_STRATEGIES, check_strategy
from hikaze_mm.server.http import int_param, json_response, read_json, run_sync, services

routes = web.RouteTableDef()


async def optional_json(request: web.Request) -> dict[str, Any]:
    """The JSON body, or {} when the request has none."""
    if not request.body_exists:
        return {}
    return await read_json(request)


@routes.post("/api/migration/import_a_model")
async def import_a_model(request: web.Request) -> web.Response:
    body = await read_json(request)
    if "id" not in body:
        raise ValidationError("id is required")
    strategy = check_strategy(body.get("conf_strategy"), API_STRATEGIES)
    result = await run_sync(services(request).promoter.promote, body["id"], strategy)
    return json_response(result)


@routes.post("/api/migration/import_models")
async def import_models(request: web.Request) -> web.Response:
    body = await read_json(request)
    ids = check_ids(body.get("ids"))
    strategy = check_strategy(body.get("conf_strategy"), API_STRATEGIES)
    results = await run_sync(promote_batch, services(request).promoter, ids, strategy)
    succeeded = sum(1 for r in results if r["status"] == "success")
    return json_response(
        {"results": results, "succeeded": succeeded, "failed": len(ids) - succeeded}
    )


@routes.post("/api/migration/start")
async def start(request: web.Request) -> web.Response:
    body = await optional_json(request)
    svc = services(request)
    status = await run_sync(
        svc.migration.start_full_migration,
        body.get("legacy_db_path"),
        body.get("legacy_images_dir"),
        policy=body.get("conflict_policy"),
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
        result["pending"] = svc.db.pending_counts()
        result["legacy_import"] = svc.legacy_import.status()
        return result

    return json_response(await run_sync(read))


@routes.get("/api/migration/pending")
async def pending_list(request: web.Request) -> web.Response:
    offset = int_param(request, "offset", 0)
    limit = int_param(request, "limit", 100, minimum=1, maximum=PAGE_LIMIT)
    wanted = request.query.get("status") or None
    svc = services(request)
    page = await run_sync(
        list_pending, svc.db, svc.images, status=wanted, offset=offset, limit=limit
    )
    return json_response(page)


@routes.get("/api/migration/pending/{pending_id}")
async def pending_detail(request: web.Request) -> web.Response:
    pending_id = parse_index(request.match_info["pending_id"], "pending id")
    return json_response(await run_sync(services(request).promoter.pending_view, pending_id))


@routes.post("/api/models/sha256")
async def model_sha256(request: web.Request) -> web.Response:
    body = await read_json(request)
    mode = body.get("pending_status", "ignore")
    if mode not in ("pending", "ignore"):
        raise ValidationError('pending_status must be "pending" or "ignore"')
    svc = services(request)
    path = await run_sync(resolve_hash_path, svc.config, svc.db, body.get("path"))
    if mode == "pending":
        pending_id = await run_sync(pending_id_for, svc.db, path)
        if pending_id is not None:
            result = await run_sync(svc.promoter.promote, pending_id, None)
            return json_response({"sha256": result["sha256"], "promoted": result})
    try:
        result = await svc.hashes.hash_file_async(path)
    except (OSError, FileChangedError) as exc:
        raise hash_failure(path, exc) from None
    return json_response(hash_answer(result))
