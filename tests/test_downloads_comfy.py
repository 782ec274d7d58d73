"""Downloads inside ComfyUI: the plugin reports each download's progress on ComfyUI's
websocket (``hikaze.download``), which the extension turns into toasts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

from hikaze_mm.comfy import nodes, plugin
from tests.storage_fake import FakeStorage
from tests.test_comfy_nodes import StandInServer, stand_in_folder_paths
from tests.test_downloads import MIB, payload
from tests.waiting import wait_until_async


async def test_the_plugin_sends_download_progress_on_the_websocket(
    aiohttp_client, tmp_path: Path, storage: FakeStorage
) -> None:
    models = tmp_path / "loras"
    models.mkdir()
    data = payload(2 * MIB, seed=60)
    storage.put("ws.safetensors", data)
    storage.slow = 1024 * 1024
    server = StandInServer()
    env = {"HIKAZE_DATA_DIR": str(tmp_path / "data"), "HIKAZE_WATCH": "0"}
    services = plugin.setup(
        server,
        stand_in_folder_paths(tmp_path, models),
        SimpleNamespace(listen="127.0.0.1", port=8188),
        env,
    )
    try:
        assert services is not None
        client = await aiohttp_client(server.app)
        body = {"source": storage.file_url("ws.safetensors"), "type": "loras"}
        resp = await client.post("/hikaze/api/downloads", json=body)
        assert resp.status == 202
        did = (await resp.json())["id"]

        def events() -> list[dict]:
            return [d for e, d in server.events if e == plugin.EVENT_DOWNLOAD and d["id"] == did]

        await wait_until_async(
            events, lambda seen: seen and seen[-1]["status"] == "done", timeout=60
        )
        seen = events()
        assert {"running", "verifying", "done"} <= {d["status"] for d in seen}
        assert any(d["status"] == "running" and d["bytes_done"] for d in seen)
        assert seen[-1]["path"] == str(models / "ws.safetensors")
        assert seen[-1]["sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        services.close()
        nodes.CONTEXT.resolver, nodes.CONTEXT.broken = None, "closed"
