"""Scan API: ``POST /api/scan`` starts a background scan, ``GET /api/scan/status`` follows it.

The scan itself runs in the scanner's own thread; these handlers only start it and read
its in-memory status, so neither touches the disk or the database on the event loop.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hikaze_mm.errors import ValidationError
from hikaze_mm.server.http import json_response, read_json, services

routes = web.RouteTableDef()

SCAN_OPTIONS = ("immediate_hashing", "conflict_strategy")


def parse_scan_options(body: dict[str, Any]) -> dict[str, Any]:
    """``{"immediate_hashing": bool, "conflict_strategy": str|null}``, both optional."""
    unknown = sorted(set(body) - set(SCAN_OPTIONS))
    if unknown:
        raise ValidationError(f"unknown scan options: {', '.join(unknown)}")
    immediate = body.get("immediate_hashing", False)
    if not isinstance(immediate, bool):
        raise ValidationError("immediate_hashing must be true or false")
    # The strategy's value is checked by the scanner against the promotion strategies.
    return {"immediate_hashing": immediate, "conf_strategy": body.get("conflict_strategy")}


@routes.post("/api/scan")
async def start_scan(request: web.Request) -> web.Response:
    """Start a scan of the model roots: 202 with the status, 409 while one runs."""
    body = await read_json(request) if request.body_exists else {}
    options = parse_scan_options(body)
    status = services(request).scanner.start(**options)
    return json_response(status, status=202)


@routes.get("/api/scan/status")
async def scan_status(request: web.Request) -> web.Response:
    """The running scan's progress, or the last scan's result (``last_report``)."""
    return json_response(services(request).scanner.status())
