"""The web UI: ``index.html`` at ``/`` and its static files under ``/static/``.

The UI uses relative URLs only (``static/js/app.js``, ``api/models``), so it works the
same standalone at ``/`` and mounted under a prefix such as ComfyUI's ``/hikaze/``. A
request for the bare prefix (``/hikaze``) is redirected to ``/hikaze/`` so that relative
URLs resolve inside the prefix.

Static names are validated against a strict pattern and resolved inside the package's
``web`` folder: no traversal, no globbing of user input. Files are served with
``Cache-Control: no-cache`` (revalidated by ETag / Last-Modified) so an upgrade of the
package is picked up at once.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from hikaze_mm.errors import NotFoundError
from hikaze_mm.server.http import run_sync

routes = web.RouteTableDef()

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"

# Segments of letters, digits, dot, dash and underscore (no leading dot), known extensions.
_STATIC_RE = re.compile(
    r"(?:[A-Za-z0-9_][A-Za-z0-9_.\-]*/){0,4}[A-Za-z0-9_][A-Za-z0-9_.\-]*\.(js|css|svg|png|ico|json)"
)
_CONTENT_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
    "json": "application/json",
}

# The UI loads only its own scripts, styles and images, and talks only to its own server.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)


def _no_cache(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@routes.get("")
@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    """The UI page. ``/prefix`` without its slash (when mounted) goes to ``/prefix/``."""
    if not request.path.endswith("/"):
        raise web.HTTPFound(request.path + "/")
    response = web.FileResponse(WEB_DIR / "index.html")
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "same-origin"
    return _no_cache(response)


def _ui_file(name: str) -> Path:
    """The file ``name`` inside WEB_DIR (blocking: it resolves links and stats the file)."""
    try:
        path = (WEB_DIR / name).resolve()
        if path.is_relative_to(WEB_DIR) and path.is_file():
            return path
    except OSError:  # a name too long for the file system, say
        pass
    raise NotFoundError(f"no UI file {name!r:.120}")


@routes.get("/static/{name:.+}")
async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    match = _STATIC_RE.fullmatch(name)
    if not match or ".." in name:
        raise NotFoundError(f"no UI file {name!r}")
    response = web.FileResponse(await run_sync(_ui_file, name))
    response.headers["Content-Type"] = _CONTENT_TYPES[match.group(1)]
    return _no_cache(response)
