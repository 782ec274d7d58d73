"""Jobs API: every background job of the manager, with the same fields for each.

``GET /api/jobs`` lists them; ``GET /api/jobs/{name}`` is one (404 for a name that is not
a job), and ``?started_at=`` one of its recent runs (what the CLI follows: its own run,
even when another run of the job has started since; 404 once forgotten). Each is ``{name,
running, progress: {done, total, unit, phase}, started_at, finished_at, error,
last_report}``; the jobs' own status routes (``/api/scan/status``...) stay as they were.
Both read in-memory state only.
"""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.params import parse_int
from hikaze_mm.server.http import json_response, services

routes = web.RouteTableDef()


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """``{"jobs": [...]}``: every job, running or not, in a fixed order."""
    return json_response({"jobs": services(request).jobs.snapshots()})


@routes.get("/api/jobs/{name}")
async def get_job(request: web.Request) -> web.Response:
    """One job by name (``scan``, ``legacy-import``, ``migration``, ``probe``, ``civitai``,
    ``search-index``), or its run that started at ``?started_at=`` (epoch ms); 404 for any
    other name or a run it does not know."""
    raw = request.query.get("started_at")
    started_at = None if raw is None else parse_int(raw, "started_at", 0)
    jobs = services(request).jobs
    return json_response(jobs.snapshot(request.match_info["name"], started_at))
