"""Scan API: ``POST /api/scan`` starts a background scan, ``GET /api/scan/status`` follows it.

The scan itself runs in the scanner's own thread; these handlers only start it and read
its in-memory status, so neither touches the disk or the database on the event loop.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.server.http import json_response, read_json, services
from hikaze_mm.server.requests.jobs import scan_request

routes = web.RouteTableDef()


@routes.post("/api/scan")
async def start_scan(request: web.Request) -> web.Response:
    """Start a scan of the model roots: 202 with the status, 409 while one runs."""
    scan = scan_request(await read_json(request) if request.body_exists else {})
    status = services(request).scanner.start(
        immediate_hashing=scan.immediate_hashing, conf_strategy=scan.conf_strategy
    )
    return json_response(status, status=202)


@routes.get("/api/scan/status")
async def scan_status(request: web.Request) -> web.Response:
    """The running scan's progress, or the last scan's result (``last_report``)."""
    return json_response(services(request).scanner.status())
