"""The aiohttp application: standalone (``create_app``) or mounted under a prefix (``mount``)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hikaze_mm.config import Config
from hikaze_mm.server.http import HOST_KEY, SERVICES_KEY, SLOT_KEY, LibrarySlot, library_gate
from hikaze_mm.server.middleware import json_errors, make_host_guard, same_origin
from hikaze_mm.server.routes import (
    civitai,
    downloads,
    events,
    generations,
    health,
    images,
    jobs,
    legacy_import,
    library,
    migration,
    scan,
    updates,
    web_ui,
    workflows,
)
from hikaze_mm.services import Services

# web_ui last: it owns the catch-all static routes of the UI.
ROUTE_MODULES = (
    health,
    events,
    jobs,
    legacy_import,
    migration,
    library,
    images,
    generations,
    scan,
    civitai,
    downloads,
    updates,
    workflows,
    web_ui,
)


def _build(
    slot: LibrarySlot, config: Config, *, close_services: bool, host: str
) -> web.Application:
    app = web.Application(
        middlewares=[json_errors, make_host_guard(config.host), same_origin, library_gate],
        # The largest body any route takes (an image upload); JSON routes cap lower.
        client_max_size=max(config.max_request_bytes, config.max_image_bytes) + 64 * 1024,
    )
    app[SLOT_KEY] = slot
    if slot.services is not None:
        app[SERVICES_KEY] = slot.services
    app[HOST_KEY] = host
    for module in ROUTE_MODULES:
        app.add_routes(module.routes)

    async def _resume_migration(_app: web.Application) -> None:
        if slot.services is not None:
            await asyncio.to_thread(slot.services.resume_migration)

    app.on_startup.append(_resume_migration)

    async def _end_event_streams(_app: web.Application) -> None:
        if slot.services is not None:  # the streams end, so shutting down waits on none
            slot.services.changes.publish(None)

    app.on_shutdown.append(_end_event_streams)
    if close_services:

        async def _close(_app: web.Application) -> None:
            if slot.services is not None:
                slot.services.close()

        app.on_cleanup.append(_close)
    return app


def create_app(services: Services, *, close_services: bool = True) -> web.Application:
    """A standalone application serving the API (and the UI) at ``/``."""
    slot = LibrarySlot(services)
    return _build(slot, services.config, close_services=close_services, host="standalone")


def mount(parent: web.Application, prefix: str, services: Services) -> web.Application:
    """Mount the manager's routes on an existing aiohttp app (ComfyUI's) under ``prefix``.

    The services close with the parent application; ``/api/health`` says ``"host":
    "comfyui"`` (the UI then offers "Send to workflow").
    """
    sub = _build(LibrarySlot(services), services.config, close_services=True, host="comfyui")
    parent.add_subapp(prefix, sub)
    return sub


def mount_later(parent: web.Application, prefix: str, config: Config, reason: str) -> LibrarySlot:
    """Mount the routes under ``prefix`` before the library is open: each answers 503
    with ``reason`` (or what ``slot.fail`` says later) until ``slot.fill(services)``. The
    caller resumes the migration (``Services.resume_migration``) and closes the services."""
    slot = LibrarySlot(reason=reason)
    parent.add_subapp(prefix, _build(slot, config, close_services=False, host="comfyui"))
    return slot
