"""Small helpers that keep handlers thin: parse input, run blocking work off the loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from hikaze_mm.errors import TooLargeError, ValidationError
from hikaze_mm.params import parse_bool, parse_int
from hikaze_mm.services import Services

T = TypeVar("T")

SERVICES_KEY = web.AppKey("hikaze_services", Services)


def services(request: web.Request) -> Services:
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
    return parse_int(request.query.get(name), name, default, minimum=minimum, maximum=maximum)


def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    return parse_bool(request.query.get(name), name, default)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))
