"""Middlewares: JSON errors, same-origin guard for state-changing requests, Host guard."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from hikaze_mm.config import is_loopback_name
from hikaze_mm.errors import HikazeError

log = logging.getLogger("hikaze_mm.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_body(status: int, error: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as ``{"error", "detail"}``; a traceback never reaches the client."""
    try:
        return await handler(request)
    except HikazeError as exc:
        return web.json_response(exc.body(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        if exc.status == 413:
            return error_body(413, "Payload too large", "request body over the size limit")
        detail = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
        return error_body(exc.status, exc.reason, detail or exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_body(500, "Internal error", "the server failed; see its log")


def _split(url: str) -> tuple[str, str] | None:
    """``(netloc, hostname)`` of a URL, or None when it cannot be parsed (``http://[``)."""
    try:
        parts = urlsplit(url)
        return parts.netloc, parts.hostname or ""
    except ValueError:
        return None


def make_host_guard(bind_host: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """When bound to loopback, accept only loopback Host headers (stops DNS rebinding)."""
    guard = is_loopback_name(bind_host)

    @web.middleware
    async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if guard:
            parts = _split(f"//{request.host}")
            if parts is None:
                return error_body(400, "Bad request", f"malformed Host header {request.host!r}")
            if not is_loopback_name(parts[1]):
                return error_body(403, "Forbidden", f"host {request.host!r} is not served here")
        return await handler(request)

    return host_guard


@web.middleware
async def same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reject state-changing requests sent by pages of another origin."""
    if request.method in UNSAFE_METHODS:
        origin = request.headers.get("Origin")
        if origin is not None:
            parts = _split(origin)
            if origin == "null" or parts is None or parts[0].lower() != request.host.lower():
                return error_body(403, "Forbidden", f"cross-origin request from {origin!r}")
        elif request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return error_body(403, "Forbidden", "cross-site request")
    return await handler(request)
