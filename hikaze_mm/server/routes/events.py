"""``GET /api/events``: the library's changes as Server-Sent Events, as they commit.

Each event is ``event: models|tags|images|pending|jobs|resync`` with ``data: {"keys":
[...], "bulk": bool, "host": "..."}`` (``database.changes``): the pages refresh what they
show of those keys (everything, for ``bulk`` and ``resync``). A comment line every
``KEEPALIVE_S`` seconds keeps proxies from closing a quiet stream. The stream ends when
the server shuts down (``app``'s on_shutdown).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from hikaze_mm.server.http import run_sync, services

routes = web.RouteTableDef()

KEEPALIVE_S = 15.0
# How long the stream waits for the catalog's listener before it opens anyway (it then
# says ``resync`` when the listener is on).
READY_S = 5.0


@routes.get("/api/events")
async def events(request: web.Request) -> web.StreamResponse:
    feed = services(request).changes
    subscription = feed.subscribe()
    try:
        await run_sync(feed.wait_ready, READY_S)  # opened: what commits from now is sent
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n: hikaze-mm change events\n\n")
        while True:
            try:
                change = await subscription.next(KEEPALIVE_S)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if change is None:  # the library is closing
                break
            data = json.dumps(change.data(), separators=(",", ":"))
            await response.write(f"event: {change.kind}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        subscription.close()
    return response
