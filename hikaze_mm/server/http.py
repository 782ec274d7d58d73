"""Small helpers that keep handlers thin: parse input, run blocking work off the loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from hikaze_mm.errors import HikazeError, TooLargeError, ValidationError
from hikaze_mm.params import parse_bool, parse_int, parse_json
from hikaze_mm.policy import MAX_INT
from hikaze_mm.services import Services

T = TypeVar("T")


class LibraryUnavailableError(HikazeError):
    """The app has no library (yet): it is still opening, or could not open."""

    status = 503
    error = "Hikaze Model Manager unavailable"


class LibrarySlot:
    """The services an app serves: given when it is built, or later (inside ComfyUI a
    library on a database server opens in the background, ``app.mount_later``). Until
    ``fill``, every route answers 503 with ``reason`` (``library_gate``)."""

    def __init__(self, services: Services | None = None, reason: str = "") -> None:
        self.services = services
        self.reason = reason or "the library is not open"

    def fill(self, services: Services) -> None:
        self.services = services

    def fail(self, reason: str) -> None:
        """Why there are no services (while ``services`` is None)."""
        self.reason = reason

    def require(self) -> Services:
        if self.services is None:
            raise LibraryUnavailableError(self.reason)
        return self.services


# The app's services, set when they are known as it is built (tests read it).
SERVICES_KEY = web.AppKey("hikaze_services", Services)
SLOT_KEY = web.AppKey("hikaze_slot", LibrarySlot)
# Where the app runs: "standalone" (``hikaze-mm serve``) or "comfyui" (mounted by the plugin).
HOST_KEY = web.AppKey("hikaze_host", str)


def services(request: web.Request) -> Services:
    return request.config_dict[SLOT_KEY].require()


@web.middleware
async def library_gate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every route answers 503 with the reason while the app has no library."""
    request.config_dict[SLOT_KEY].require()
    return await handler(request)


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (SQLite, files) in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


@asynccontextmanager
async def reading_body() -> AsyncIterator[None]:
    """Turn aiohttp's errors for a body it cannot decode (a ``Content-Encoding`` that does
    not match the bytes, a malformed multipart or chunked body) into a 400."""
    try:
        yield
    except (RequestPayloadError, HttpProcessingError) as exc:
        reason = " ".join(str(exc).split("message:", 1)[-1].split()) or type(exc).__name__
        raise ValidationError(f"the request body cannot be read: {reason}") from None


async def read_body(request: web.Request, cap: int) -> bytes:
    """The whole body, or a 413 past ``cap`` bytes (400 if it cannot be decoded)."""
    if request.content_length is not None and request.content_length > cap:
        raise TooLargeError(f"request body over {cap} bytes")
    chunks = bytearray()  # read(n) returns what is buffered, so loop to the end or the cap
    async with reading_body():
        while chunk := await request.content.read(cap + 1 - len(chunks)):
            chunks += chunk
            if len(chunks) > cap:
                raise TooLargeError(f"request body over {cap} bytes")
    return bytes(chunks)


async def read_json(request: web.Request, *, limit: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object (limits: ``params.parse_json``), or a 400/413."""
    body = await read_body(request, limit or services(request).config.max_request_bytes)
    data = parse_json(body) if body.strip() else None
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object", error="Bad JSON")
    return data


def int_param(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int = MAX_INT
) -> int:
    return parse_int(request.query.get(name), name, default, minimum=minimum, maximum=maximum)


def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    return parse_bool(request.query.get(name), name, default)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def json_text_response(body: str, status: int = 200) -> web.Response:
    """A body that is JSON text already (built once, by the service), sent as it is."""
    return web.Response(text=body, status=status, content_type="application/json")
