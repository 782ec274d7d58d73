"""The server skeleton over real HTTP on 127.0.0.1."""

from __future__ import annotations

from aiohttp import web

from hikaze_mm.config import Config
from hikaze_mm.errors import ValidationError
from hikaze_mm.server import create_app, mount
from hikaze_mm.server.http import read_json
from hikaze_mm.services import Services
from tests.helpers import same_origin_headers


def echo_app(config: Config) -> web.Application:
    app = create_app(Services.open(config))

    async def echo(request: web.Request) -> web.Response:
        data = await read_json(request)
        if "fail" in data:
            raise ValidationError("told to fail")
        if "crash" in data:
            raise RuntimeError("secret internals")
        return web.json_response(data)

    app.router.add_post("/api/echo", echo)
    return app


async def test_health(client) -> None:
    resp = await client.get("/api/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["schema_revision"] >= 3
    assert body["host"] == "standalone"


async def test_cross_origin_post_rejected(aiohttp_client, config: Config) -> None:
    client = await aiohttp_client(echo_app(config))
    resp = await client.post("/api/echo", json={"a": 1}, headers={"Origin": "http://evil.example"})
    assert resp.status == 403
    assert (await resp.json())["error"] == "Forbidden"
    resp = await client.post("/api/echo", json={"a": 1}, headers={"Origin": "null"})
    assert resp.status == 403
    resp = await client.post("/api/echo", json={"a": 1}, headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403
    resp = await client.post("/api/echo", json={"a": 1}, headers=same_origin_headers(client))
    assert resp.status == 200 and await resp.json() == {"a": 1}
    resp = await client.post("/api/echo", json={"a": 1})  # no Origin: curl, the CLI
    assert resp.status == 200


async def test_foreign_host_header_rejected(client) -> None:
    resp = await client.get("/api/health", headers={"Host": "attacker.example:8789"})
    assert resp.status == 403


async def test_bad_json_and_errors_are_json(aiohttp_client, config: Config) -> None:
    client = await aiohttp_client(echo_app(config))
    for body in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
        resp = await client.post(
            "/api/echo", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400, body
        data = await resp.json()
        assert data["error"] == "Bad JSON" and data["detail"]
    resp = await client.post("/api/echo", json={"fail": 1})
    assert resp.status == 400 and (await resp.json())["detail"] == "told to fail"
    resp = await client.post("/api/echo", json={"crash": 1})
    assert resp.status == 500
    text = await resp.text()
    assert "secret internals" not in text and "Traceback" not in text
    resp = await client.get("/api/nothing-here")
    assert resp.status == 404 and (await resp.json())["error"] == "Not Found"
    resp = await client.post("/api/health")
    assert resp.status == 405 and "error" in await resp.json()


async def test_request_size_limit(aiohttp_client, data_dir, models_root) -> None:
    config = Config.load(
        data_dir=data_dir, model_roots=[str(models_root)], env={}, max_request_bytes=1024
    )
    client = await aiohttp_client(echo_app(config))
    resp = await client.post("/api/echo", json={"x": "y" * 5000})
    assert resp.status == 413
    assert (await resp.json())["error"] == "Payload too large"


async def test_mount_under_prefix(aiohttp_client, config: Config) -> None:
    parent = web.Application()

    async def host_route(request: web.Request) -> web.Response:
        return web.Response(text="comfy")

    parent.router.add_get("/", host_route)
    mount(parent, "/hikaze", Services.open(config))
    client = await aiohttp_client(parent)
    assert await (await client.get("/")).text() == "comfy"
    resp = await client.get("/hikaze/api/health")
    body = await resp.json()
    assert resp.status == 200 and (body["status"], body["host"]) == ("ok", "comfyui")
    resp = await client.post("/hikaze/api/health", headers={"Origin": "http://evil.example"})
    assert resp.status == 403
