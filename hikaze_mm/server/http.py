"""Small helpers that keep handlers thin: parse input, run blocking work off the loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from hikaze_mm.errors import TooLargeError, ValidationError

T = TypeVar("T")


def services(request: web.Request):
    from hikaze_mm.server.app import SERVICES_KEY

    return request.config_dict[SERVICES_KEY]


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (SQLite, files) in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def read_json(request: web.Request, *, limit: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/413 ApiError."""
    svc = services(request)
    cap = limit or svc.config.max_request_bytes
    if request.content_length is not None and request.content_length > cap:
        raise TooLargeError(f"request body over {cap} bytes")
    chunks = bytearray()  # read(n) returns what is buffered, so loop to the end or the cap
    while chunk := await request.content.read(cap + 1 - len(chunks)):
        chunks += chunk
        if len(chunks) > cap:
            raise TooLargeError(f"request body over {cap} bytes")
    body = bytes(chunks)
    if not body.strip():
        raise ValidationError("request body must be a JSON object", error="Bad JSON")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"invalid JSON: {exc}", error="Bad JSON") from exc
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object", error="Bad JSON")
    return data


def int_param(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise ValidationError(f"{name} must be between {minimum}{upper}")
    return value


def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValidationError(f"{name} must be true or false, not {raw!r}")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))
