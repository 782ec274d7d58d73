"""A studio on one machine: two ``hikaze-mm serve`` processes (their own data folders and
host names) on one PostgreSQL catalog, one NAS folder reached through two paths (two
folders whose files are hard links of one another) and one shared images folder."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import Server, start_server, write_model
from tests.test_studio_roots import mirror

pytestmark = pytest.mark.usefixtures("pg_cluster")
EVENT_DEADLINE_S = 1.0  # what the studio promises: an edit on A reaches B within a second


def host_env(url: str, name: str, nas: Path, images: Path) -> dict[str, str]:
    return {
        "HIKAZE_DB_URL": url,
        "HIKAZE_HOST_NAME": name,
        "HIKAZE_ROOT_NAMES": f"nas={nas}",
        "HIKAZE_IMAGES_DIR": str(images),
        "HIKAZE_WATCH": "0",
        "HIKAZE_CIVITAI_URL": "http://127.0.0.1:9",
    }


@pytest.fixture
def studio(tmp_path: Path, pg_url: str) -> Iterator[dict[str, Any]]:
    nas_a, nas_b, images = tmp_path / "nas-a", tmp_path / "nas-b", tmp_path / "images"
    sha = write_model(nas_a / "loras" / "style.safetensors", 8192)
    mirror(nas_a, nas_b)
    servers: list[Server] = []
    try:
        for name, nas in (("host-a", nas_a), ("host-b", nas_b)):
            logs = tmp_path / f"logs-{name}"
            logs.mkdir()
            env = host_env(pg_url, name, nas, images)
            servers.append(start_server(tmp_path / f"data-{name}", logs, env=env))
        yield {"a": servers[0], "b": servers[1], "sha": sha, "nas_a": nas_a, "nas_b": nas_b}
    finally:
        for server in servers:
            server.proc.terminate()
        for server in servers:
            server.proc.wait(timeout=30)


async def _json(response: aiohttp.ClientResponse) -> Any:
    assert response.status < 300, await response.text()
    return await response.json()


async def _next_event(stream: aiohttp.StreamReader, kind: str, key: str) -> dict[str, Any]:
    event = ""
    while True:
        line = (await stream.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == kind:
            data = json.loads(line[6:])
            if key in data["keys"]:
                return data


async def test_two_serving_hosts_share_tags_paths_and_images(studio: dict[str, Any]) -> None:
    a, b, sha = studio["a"], studio["b"], studio["sha"]
    origin_a = {"Origin": a.url.rstrip("/")}
    async with aiohttp.ClientSession() as http:
        # A scans the NAS through its mount and promotes the file at once (a scan may
        # be running already: serving starts one).
        started = await http.post(
            a.url + "api/scan", json={"immediate_hashing": True}, headers=origin_a
        )
        assert started.status in (202, 409), await started.text()
        for _ in range(600):
            if (await http.get(f"{a.url}api/models/{sha}")).status == 200:
                break
            await asyncio.sleep(0.05)
        model_a = await _json(await http.get(f"{a.url}api/models/{sha}"))
        model_b = await _json(await http.get(f"{b.url}api/models/{sha}"))
        # Each host's path is its own mount's.
        assert model_a["path"] == str(studio["nas_a"] / "loras" / "style.safetensors")
        assert model_b["path"] == str(studio["nas_b"] / "loras" / "style.safetensors")
        assert model_b["location"] == {"root": "nas", "path": "loras/style.safetensors"}
        assert model_b["missing"] is False

        # A tag edited on A: in B's event stream and B's API within a second.
        async with http.get(b.url + "api/events") as events:
            assert (await events.content.readline()).startswith(b"retry:")
            await asyncio.sleep(0.2)  # B's listener is up once its first subscriber is
            await _json(
                await http.patch(
                    f"{a.url}api/models/{sha}", json={"tags": {"add": ["studio"]}}, headers=origin_a
                )
            )
            seen = await asyncio.wait_for(
                _next_event(events.content, "models", sha), EVENT_DEADLINE_S
            )
            assert seen["host"] == "host-a"
        model_b = await _json(await http.get(f"{b.url}api/models/{sha}"))
        assert "studio" in [tag["name"] for tag in model_b["tags"]]

        # An image uploaded on A is served by B.
        uploaded = await _json(
            await http.post(f"{a.url}api/images/{sha}", data=_png(), headers=origin_a)
        )
        name = uploaded.get("name") or f"{sha}_{uploaded['seq']}.webp"
        served = await http.get(f"{b.url}api/images/{name}")
        assert served.status == 200
        assert served.headers["Content-Type"] == "image/webp"
        assert (await served.read())[:4] == b"RIFF"


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def test_the_hosts_fixture_keeps_two_mounts_of_one_folder(tmp_path: Path) -> None:
    """The stand-in for a NAS mounted twice: the same file (inode) at two paths."""
    write_model(tmp_path / "a" / "x" / "m.safetensors", 10)
    mirror(tmp_path / "a", tmp_path / "b")
    first, second = tmp_path / "a/x/m.safetensors", tmp_path / "b/x/m.safetensors"
    assert os.stat(first).st_ino == os.stat(second).st_ino and first != second


async def test_two_serving_hosts_scanning_40_new_files_at_once_hash_each_once(
    studio: dict[str, Any],
) -> None:
    a, b = studio["a"], studio["b"]
    shas = {
        write_model(studio["nas_a"] / "new" / f"m{i:02}.safetensors", 20000 + i) for i in range(40)
    }
    mirror(studio["nas_a"], studio["nas_b"])
    async with aiohttp.ClientSession() as http:
        for server in (a, b):
            await _scan_when_idle(http, server)
        for server in (a, b):
            await _wait_idle(http, server)
        # What one host left pending (another's claim at that moment) goes with a rescan.
        for server in (a, b):
            await _scan_when_idle(http, server)
            await _wait_idle(http, server)
        hashed = 0
        for server in (a, b):
            status = await _json(await http.get(server.url + "api/migration/status"))
            hashed += status["stats"]["hashed_files"]
            report = (await _json(await http.get(server.url + "api/scan/status")))["last_report"]
            assert report["counts"]["conflicts"] == 0
        page = await _json(await http.get(a.url + "api/models?limit=100&include_missing=true"))
    assert shas <= {item["sha256"] for item in page["items"]}
    assert hashed == 41  # the 40 new files and the fixture's one: each read by one host


async def _scan_when_idle(http: aiohttp.ClientSession, server: Server) -> None:
    origin = {"Origin": server.url.rstrip("/")}
    for _ in range(600):
        started = await http.post(
            server.url + "api/scan", json={"immediate_hashing": True}, headers=origin
        )
        if started.status == 202:
            return
        assert started.status == 409, await started.text()  # one runs: after it
        await asyncio.sleep(0.05)
    raise AssertionError(f"{server.url} never took a scan")


async def _wait_idle(http: aiohttp.ClientSession, server: Server) -> None:
    for _ in range(1200):
        status = await _json(await http.get(server.url + "api/scan/status"))
        if not status["running"] and status["last_report"] is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{server.url}'s scan did not end")
