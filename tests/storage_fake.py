"""Our own storage host: a real aiohttp server on 127.0.0.1 (a thread with its own loop)
serving files from a folder at ``/files/{name}``, with ``Range`` support, as a CDN does.

Modes, per test: ``slow`` (bytes a second, in small pieces), ``drop_at`` (the connection
is cut once that many bytes of a file went out, once per entry of the list), ``ignore_range``
(answers every request 200 with the whole file), ``html`` (a login page instead of files).
``/redirect/{name}`` answers 302 to ``/files/{name}`` (of ``redirect_to``: another fake).
Every request is logged with its headers (``requests``), so a test proves which headers
reached this host (no ``Authorization``).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

LOGIN_PAGE = b"<!DOCTYPE html><html><body>Please log in</body></html>"


class FakeStorage:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.slow: int = 0  # bytes per second (0: full speed)
        self.drop_at: list[int] = []
        self.ignore_range = False
        self.html = False
        self.redirect_to: FakeStorage | None = None
        self.served_bytes = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def put(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def headers_seen(self) -> list[dict[str, str]]:
        return [headers for _path, headers in self.requests]

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        if self.html:
            return web.Response(body=LOGIN_PAGE, content_type="text/html")
        path = self.folder / request.match_info["name"]
        if not path.is_file():
            return web.Response(status=404, text="no such file")
        size = path.stat().st_size
        start = _range_start(request.headers.get("Range"))
        if start is not None and start >= size and not self.ignore_range:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        if self.ignore_range or start is None:
            start = 0
        status = 206 if start else 200
        resp = web.StreamResponse(status=status)
        resp.content_type = "application/octet-stream"
        resp.content_length = size - start
        if start:
            resp.headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        resp.headers["Accept-Ranges"] = "bytes"
        await resp.prepare(request)
        await self._send(request, resp, path, start)
        return resp

    async def _send(
        self, request: web.Request, resp: web.StreamResponse, path: Path, start: int
    ) -> None:
        drop = self.drop_at.pop(0) if self.drop_at else None
        piece = 16 * 1024 if self.slow else 1024 * 1024
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while data := f.read(piece):
                if drop is not None and start + sent + len(data) > drop:
                    data = data[: max(0, drop - start - sent)]
                    await resp.write(data)
                    self.served_bytes += len(data)
                    assert request.transport is not None
                    request.transport.close()  # the connection drops mid-file
                    return
                await resp.write(data)
                sent += len(data)
                self.served_bytes += len(data)
                if self.slow:
                    await asyncio.sleep(len(data) / self.slow)
        await resp.write_eof()

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        target = self.redirect_to or self
        raise web.HTTPFound(target.file_url(request.match_info["name"]))

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_get("/files/{name}", self._file)
            app.router.add_get("/redirect/{name}", self._redirect)
            runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-storage", daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def _range_start(value: str | None) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", (value or "").strip())
    return int(match.group(1)) if match else None


def fake_storage_server(folder: Path) -> Iterator[FakeStorage]:
    fake = FakeStorage(folder)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[FakeStorage]:
    """A storage host on 127.0.0.1 serving ``tmp_path / "storage"``."""
    yield from fake_storage_server(tmp_path / "storage")


def any_header(fake: FakeStorage, name: str) -> list[Any]:
    """The values of header ``name`` in every request the fake got."""
    return [h[name] for h in fake.headers_seen() if name in h]
