"""The ComfyUI plugin with a library on PostgreSQL (``HIKAZE_DB_URL``), without ComfyUI:
the library opens in a thread of its own, so set-up returns before the server answers;
a server that cannot be reached leaves our routes answering 503 with the reason (no
password), the nodes failing with it, and one line in the log."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest

from hikaze_mm.comfy import nodes, plugin
from hikaze_mm.services import Services
from tests.helpers import write_model
from tests.test_comfy_nodes import StandInServer, scan_events, stand_in_folder_paths

SECRET = "s3cret-Pa55"
SHA = "ab" * 32
COMFY_ARGS = SimpleNamespace(listen="127.0.0.1", port=8188)


def with_password(url: str, password: str = SECRET) -> str:
    """``url`` with ``password`` for its user (the test cluster trusts its socket, so
    the password is carried, never checked)."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user or 'postgres'}:{password}@{host}"))


@pytest.fixture(autouse=True)
def unbound_nodes() -> Iterator[None]:
    yield
    nodes.CONTEXT.resolver, nodes.CONTEXT.broken = None, "closed"


@pytest.fixture
def blackhole() -> Iterator[socket.socket]:
    """A port that takes connections and never answers (a host that swallows packets
    would hold a connect just as long); closing it resets what it holds."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def health(client) -> tuple[int, dict]:
    resp = await client.get("/hikaze/api/health")
    return resp.status, await resp.json()


def setup_on(url: str, tmp_path: Path, server: StandInServer, models: Path | None = None):
    env = {"HIKAZE_DATA_DIR": str(tmp_path / "data"), "HIKAZE_DB_URL": url}
    return plugin.setup(
        server, stand_in_folder_paths(tmp_path, models or tmp_path), COMFY_ARGS, env
    )


async def test_a_server_that_never_answers_does_not_hold_start_up(
    aiohttp_client, tmp_path, blackhole, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="hikaze_mm")
    port = blackhole.getsockname()[1]
    server = StandInServer()
    opening = setup_on(f"postgresql://bob:{SECRET}@127.0.0.1:{port}/lib", tmp_path, server)
    # Set-up has returned while the connection still waits for the server.
    assert isinstance(opening, plugin.BackgroundOpen)
    client = await aiohttp_client(server.app)
    status, body = await health(client)
    assert opening.services is None
    assert status == 503 and "still opening" in body["detail"], body
    assert set(body) == {"error", "detail"}
    with pytest.raises(RuntimeError, match="still opening"):
        nodes.HikazeCheckpointLoader().resolved_path(json.dumps({"sha256": SHA}))
    started = [r.getMessage() for r in caplog.records if "model folders" in r.getMessage()]
    assert started == [
        f"Hikaze Model Manager: postgresql://bob:***@127.0.0.1:{port}/lib, "
        "1 model folders, at /hikaze/ (opening in the background)"
    ]
    blackhole.close()  # the server goes away: the attempt ends with its reason
    assert opening.wait(30) is None
    status, body = await health(client)
    assert status == 503 and "cannot reach the library" in body["detail"], body
    assert SECRET not in json.dumps(body) and SECRET not in caplog.text


async def test_an_unreachable_server_answers_503_and_the_nodes_say_why(
    aiohttp_client, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="hikaze_mm")
    url = f"postgresql://bob:{SECRET}@127.0.0.1:{free_port()}/lib"
    server = StandInServer()
    opening = setup_on(url, tmp_path, server)
    assert opening.wait(30) is None
    client = await aiohttp_client(server.app)
    for path in ("/hikaze/api/health", "/hikaze/api/models", "/hikaze/"):
        resp = await client.get(path)
        assert resp.status == 503
        body = await resp.json()
        assert body["error"] == "Hikaze Model Manager unavailable"
        assert "cannot reach the library at postgresql://bob:***@127.0.0.1" in body["detail"]
        assert "Connection refused" in body["detail"] and SECRET not in body["detail"]
    message = nodes.HikazeCheckpointLoader.VALIDATE_INPUTS(json.dumps({"sha256": SHA}))
    assert isinstance(message, str) and "cannot reach the library" in message
    assert SECRET not in message
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "cannot reach the library" in errors[0].getMessage()
    assert SECRET not in caplog.text


async def test_a_library_on_postgresql_opens_in_the_background_and_serves(
    aiohttp_client, tmp_path, pg_url, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="hikaze_mm")
    models = tmp_path / "loras"
    sha = write_model(models / "a.safetensors", 1000, seed=3)
    server = StandInServer()
    opening = setup_on(with_password(pg_url), tmp_path, server, models)
    services = opening.wait(60)
    try:
        assert isinstance(services, Services)
        assert services.scanner.wait(30)
        client = await aiohttp_client(server.app)
        status, body = await health(client)
        assert status == 200
        assert body["host"] == "comfyui" and SECRET not in json.dumps(body)
        resp = await client.get("/hikaze/api/models")
        assert [m["sha256"] for m in (await resp.json())["items"]] == [sha]
        lora = {"sha256": sha, "name": "a", "strength_model": 1.0, "enabled": True}
        payload = json.dumps({"version": 2, "loras": [lora]})
        assert nodes.HikazeLoraPowerLoader.VALIDATE_INPUTS(payload) is True
        assert scan_events(server)[-1]["phase"] == "done"
        # The catalog's changes reach ComfyUI's websocket (NOTIFY, heard by its listener).
        changed = [data for event, data in server.events if event == "hikaze.changed"]
        assert any(c["kind"] == "models" and sha in c["keys"] for c in changed), changed
        assert SECRET not in caplog.text
    finally:
        if services is not None:
            services.close()
