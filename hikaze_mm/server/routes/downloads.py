"""Downloads API: queue a download (``POST /api/downloads``), follow the queue and the
history (``GET /api/downloads``, ``GET /api/downloads/{id}``), pause, resume or cancel one
(``POST /api/downloads/{id}/pause|resume|cancel``) and drop a finished one from the
history (``DELETE /api/downloads/{id}``). The downloads run on the service's own thread;
these handlers only read and write their rows. No answer ever carries a token.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.errors import ValidationError
from hikaze_mm.server.http import json_response, read_json, run_sync, services
from hikaze_mm.server.requests.downloads import download_request

routes = web.RouteTableDef()


def _download_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValidationError(f"a download id is a positive integer, not {raw!r}")
    return int(raw)


@routes.post("/api/downloads")
async def enqueue(request: web.Request) -> web.Response:
    """``{source, type?, folder?, file_id?, sha256?}``: 202 ``{id, status}``."""
    args = download_request(await read_json(request))
    return json_response(await run_sync(services(request).downloads.enqueue, **args), status=202)


@routes.get("/api/downloads")
async def list_downloads(request: web.Request) -> web.Response:
    """The queue (in the order it runs), then the history (newest first)."""
    return json_response(await run_sync(services(request).downloads.list))


@routes.get("/api/downloads/{id}")
async def get_download(request: web.Request) -> web.Response:
    download_id = _download_id(request)
    return json_response(await run_sync(services(request).downloads.get, download_id))


@routes.post("/api/downloads/{id}/{action:pause|resume|cancel}")
async def control(request: web.Request) -> web.Response:
    """Pause, resume or cancel a download: its view (409 when its status forbids it)."""
    download_id = _download_id(request)
    downloads = services(request).downloads
    action = getattr(downloads, request.match_info["action"])
    return json_response(await run_sync(action, download_id))


@routes.delete("/api/downloads/{id}")
async def delete_download(request: web.Request) -> web.Response:
    """Drop a finished download from the history (409 while it is not over)."""
    await run_sync(services(request).downloads.delete, _download_id(request))
    return json_response({"deleted": True})
