"""Our own Civitai: a real aiohttp server on 127.0.0.1 (a thread with its own loop) that
answers ``GET /api/v1/model-versions/by-hash/{sha256}`` and ``POST
/api/v1/model-versions/by-hash`` (a JSON array of hashes, any case, answered by a JSON array
of the versions whose files carry them) in Civitai's documented shape and serves images, as
scripted per test. It logs every request (``requests``; ``posted`` holds each POST's
hashes). No test reaches the internet: the settings' base URL always points here.

For downloads it also answers ``GET /api/v1/model-versions/{id}`` (``versions``), ``GET
/api/v1/models/{id}`` (``models``) and ``GET /api/download/models/{id}``, which redirects
(302) to the storage URL given per version (``downloads``; another server, so a token sent
after the redirect shows), to the HTML login page ``/login?returnUrl=…`` when no
``Authorization`` is sent (``login_required``, as Civitai does), or answers 403 for an
early-access version (``early_access``).

Scripting is per hash (``lookups``): a GET answers the hash's next reply; a POST composes
its answer from the next reply of each hash asked (a 200 is a version in the array, a 404
none), and answers the first other reply (a 429, a 5xx, a 400) as a whole, waiting for any
reply that waits. ``batch_script`` replaces that with whole replies for the POST (a 405 for
a Civitai without the endpoint, a malformed answer), answered in order, the last repeating.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from hikaze_mm.config import CivitaiSettings
from tests.library_helpers import png_bytes
from tests.waiting import wait_until_async


@dataclass
class Reply:
    """One scripted answer: JSON (``body``), raw bytes (``raw``), a wait first
    (``sleep`` seconds, or until ``FakeCivitai.release`` with ``hold``), or a stream of
    ``stream`` bytes with no Content-Length."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0
    hold: bool = False
    stream: int = 0
    content_type: str = "image/png"


NOT_FOUND = Reply(404, {"error": "Model not found"})


def file_json(sha: str, name: str = "alpha.safetensors", **extra: Any) -> dict[str, Any]:
    """A version's file as Civitai lists it: its hashes in upper case, an id (from the
    hash unless given), a size and metadata; ``version_json`` adds its ``downloadUrl``."""
    up = sha.upper()
    hashes = {
        "AutoV1": up[:8],
        "AutoV2": up[:10],
        "SHA256": up,
        "CRC32": up[-8:],
        "BLAKE3": up[::-1],
        "AutoV3": up[2:14],
    }
    return {
        "id": int(sha[:6], 16),
        "name": name,
        "sizeKB": 1024.5,
        "type": "Model",
        "primary": True,
        "metadata": {"format": "SafeTensor", "fp": "fp16", "size": "pruned"},
        "hashes": hashes,
        **extra,
    }


def _with_download_urls(base: str, version_id: int, files: list[dict[str, Any]]) -> None:
    """Each file's ``downloadUrl`` as Civitai gives it: the version's link, with the
    file's type and format for a file that is not the primary one."""
    for item in files:
        if "downloadUrl" in item:
            continue
        url = f"{base}/api/download/models/{version_id}"
        if not item.get("primary"):
            fmt = (item.get("metadata") or {}).get("format", "")
            url += f"?type={quote(str(item.get('type', '')))}&format={quote(fmt)}"
        item["downloadUrl"] = url


def version_json(
    base: str,
    model_id: int = 11,
    version_id: int = 101,
    *,
    sha: str | None = None,
    files: list[dict[str, Any]] | None = None,
    model_type: str = "LORA",
    images: list[dict[str, Any]] | None = None,
    words: list[str] | None = None,
    base_model: str = "SDXL 1.0",
    description: str | None = "<p>A <b>fine</b> LoRA &amp; more.</p><p>Second.</p>",
    nsfw: bool = False,
) -> dict[str, Any]:
    """A model version as Civitai's by-hash and by-id endpoints answer it."""
    files = files if files is not None else [file_json(sha)] if sha else []
    _with_download_urls(base, version_id, files)
    return {
        "id": version_id,
        "modelId": model_id,
        "name": "v1.0",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "baseModel": base_model,
        "baseModelType": "Standard",
        "trainedWords": ["alpha style", " alpha ", "alpha style"] if words is None else words,
        "description": description,
        "model": {"name": "Alpha LoRA", "type": model_type, "nsfw": nsfw, "poi": False},
        "files": files,
        "images": images if images is not None else [image(base, "a.png", 1)],
        "downloadUrl": f"{base}/api/download/models/{version_id}",
    }


def model_json(
    version: dict[str, Any],
    *,
    versions: list[dict[str, Any]] | None = None,
    author: str = "alice",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """The model of ``version`` as ``GET /api/v1/models/{id}`` answers it: its creator,
    tags and versions (``versions``, newest first; default just ``version``)."""
    listed = versions if versions is not None else [version]
    return {
        "id": version["modelId"],
        "name": version["model"]["name"],
        "description": version.get("description"),
        "type": version["model"]["type"],
        "nsfw": version["model"]["nsfw"],
        "tags": ["style", "anime"] if tags is None else tags,
        "creator": {"username": author, "image": None},
        "modelVersions": [
            {k: v for k, v in item.items() if k not in ("model", "modelId")} for item in listed
        ],
    }


def image(base: str, name: str, nsfw_level: int | None = 1, **extra: Any) -> dict[str, Any]:
    data = {"url": f"{base}/img/{name}", "width": 64, "height": 48, "type": "image"}
    if nsfw_level is not None:
        data["nsfwLevel"] = nsfw_level
    return {**data, **extra}


class FakeCivitai:
    def __init__(self) -> None:
        self.lookups: dict[str, list[Reply]] = {}  # by sha: answered in order, last repeats
        self.batch_script: list[Reply] = []  # whole POST answers, in order, last repeats
        self.posted: list[list[str]] = []  # the hashes of each POST, as sent
        self.images: dict[str, Reply] = {}
        self.versions: dict[int, Reply] = {}  # GET /api/v1/model-versions/{id}
        self.models: dict[int, Reply] = {}  # GET /api/v1/models/{id}
        self.downloads: dict[int, str] = {}  # version id -> the storage URL it redirects to
        self.early_access: set[int] = set()  # versions whose download answers 403
        self.login_required = True  # a download without Authorization goes to /login
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.streamed = 0  # bytes a stream reply wrote before the client went away
        self.release = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: Any) -> CivitaiSettings:
        """Settings that point here, quick to run: fast pacing, short backoffs."""
        base = CivitaiSettings(
            url=self.url,
            requests_per_second=1000.0,
            connect_timeout=5.0,
            timeout=10.0,
            backoff_seconds=0.01,
        )
        return dataclasses.replace(base, **overrides)

    def lookup_paths(self) -> list[str]:
        return [p for p, _ in self.requests if p.startswith("/api/")]

    # ------------------------------------------------------------ scripting
    def found(self, sha: str, **kwargs: Any) -> dict[str, Any]:
        """``sha`` is a version (``version_json``'s arguments) with one file of this hash."""
        body = version_json(self.url, sha=sha, **kwargs)
        self.lookups[sha] = [Reply(body=body)]
        return body

    def publish(
        self, version: dict[str, Any], *, storage_url: str | None = None, **model: Any
    ) -> dict[str, Any]:
        """``version`` (a ``version_json``) answered by id, its model (``model_json``'s
        arguments) by id, and its download redirected to ``storage_url``."""
        self.versions[version["id"]] = Reply(body=version)
        body = model_json(version, **model)
        self.models[version["modelId"]] = Reply(body=body)
        if storage_url is not None:
            self.downloads[version["id"]] = storage_url
        return body

    def serve_png(self, name: str, size: tuple[int, int] = (64, 48)) -> None:
        self.images[name] = Reply(raw=png_bytes(size))

    # ------------------------------------------------------------ serving
    async def _reply(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.hold:
            await wait_until_async(
                self.release.is_set, timeout=120, interval=0.01, message="the test's release"
            )
        if reply.sleep:  # not a wait: a Civitai that answers this late, as scripted
            await asyncio.sleep(reply.sleep)
        if reply.stream:
            resp = web.StreamResponse(status=reply.status, headers=reply.headers)
            resp.content_type = reply.content_type
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            chunk = b"\x89PNG" + b"\0" * (64 * 1024 - 4)
            try:
                while self.streamed < reply.stream:
                    await resp.write(chunk)
                    self.streamed += len(chunk)
            except (ConnectionError, RuntimeError):
                pass
            return resp
        if reply.raw is not None:
            return web.Response(
                status=reply.status,
                body=reply.raw,
                headers=reply.headers,
                content_type=reply.content_type,
            )
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def _by_hash(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        script = self.lookups.get(request.match_info["sha"].lower())
        if not script:
            return await self._reply(request, NOT_FOUND)
        reply = script.pop(0) if len(script) > 1 else script[0]
        return await self._reply(request, reply)

    async def _by_hashes(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        try:
            asked = await request.json()
        except ValueError:
            asked = None
        if not isinstance(asked, list) or not all(isinstance(h, str) for h in asked):
            return web.json_response({"error": "expected an array of hashes"}, status=400)
        self.posted.append(asked)
        if self.batch_script:
            script = self.batch_script
            return await self._reply(request, script.pop(0) if len(script) > 1 else script[0])
        replies = []
        for sha in asked:
            script = self.lookups.get(sha.lower())
            if script:
                replies.append(script.pop(0) if len(script) > 1 else script[0])
        return await self._reply(request, _composed(replies))

    async def _scripted(
        self, request: web.Request, script: dict[int, Reply], missing: str
    ) -> web.StreamResponse:
        self.requests.append((request.path_qs, dict(request.headers)))
        reply = script.get(int(request.match_info["id"]))
        return await self._reply(request, reply or Reply(404, {"error": missing}))

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return await self._scripted(request, self.versions, "Model version not found")

    async def _model(self, request: web.Request) -> web.StreamResponse:
        return await self._scripted(request, self.models, "Model not found")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path_qs, dict(request.headers)))
        version = int(request.match_info["id"])
        if self.login_required and "Authorization" not in request.headers:
            target = f"/login?returnUrl={quote(request.path_qs, safe='')}"
            return web.Response(status=302, headers={"Location": target})
        if version in self.early_access:
            return web.json_response({"error": "This model version is in early access"}, status=403)
        if version not in self.downloads:
            return web.json_response({"error": "Model version not found"}, status=404)
        raise web.HTTPFound(self.downloads[version])

    async def _login(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path_qs, dict(request.headers)))
        page = "<!DOCTYPE html><html><head><title>Sign in | Civitai</title></head></html>"
        return web.Response(text=page, content_type="text/html")

    async def _image(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        reply = self.images.get(request.match_info["name"])
        if reply is None:
            return web.Response(status=404, text="no such image")
        return await self._reply(request, reply)

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_get("/api/v1/model-versions/by-hash/{sha}", self._by_hash)
            app.router.add_post("/api/v1/model-versions/by-hash", self._by_hashes)
            app.router.add_get("/img/{name}", self._image)
            app.router.add_get(r"/api/v1/model-versions/{id:\d+}", self._version)
            app.router.add_get(r"/api/v1/models/{id:\d+}", self._model)
            app.router.add_get(r"/api/download/models/{id:\d+}", self._download)
            app.router.add_get("/login", self._login)
            self._runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-civitai", daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        self.release.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def _composed(replies: list[Reply]) -> Reply:
    """One POST answer from the hashes' replies: the first one that is neither a 200 nor
    a 404 as it is, else the array of the 200s' bodies (each version once); it waits as
    long as the longest of them."""
    sleep = max((r.sleep for r in replies), default=0.0)
    hold = any(r.hold for r in replies)
    other = next((r for r in replies if r.status not in (200, 404)), None)
    if other is not None:
        return dataclasses.replace(other, sleep=sleep, hold=hold)
    bodies: list[Any] = []
    for reply in replies:
        if reply.status == 200 and all(reply.body is not b for b in bodies):
            bodies.append(reply.body)
    return Reply(body=bodies, sleep=sleep, hold=hold)


def fake_civitai_server() -> Iterator[FakeCivitai]:
    """A FakeCivitai for one test (the ``fake`` fixture)."""
    fake = FakeCivitai()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(name="fake")
def fake_fixture() -> Iterator[FakeCivitai]:
    """Our Civitai stand-in on 127.0.0.1 for one test (tests/conftest.py registers this
    module as a plugin); a browser test's library asks it with ``pytest.mark.fake_civitai``."""
    yield from fake_civitai_server()


def free_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens (a port just closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
