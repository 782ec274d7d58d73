"""The downloads API, the CLI, a kill mid-download, and where a token may go."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import aiohttp

from hikaze_mm.library.download_fetch import FetchTarget, PartWriter, Progress, fetch, host_port
from tests.helpers import run_cli, server_json, start_server, stop
from tests.storage_fake import FakeStorage, fake_storage_server
from tests.test_downloads import MIB, payload
from tests.waiting import wait_until, wait_until_async


async def _until_over(client, download_id: int, statuses=("done", "failed")) -> dict:
    async def probe() -> dict:
        resp = await client.get(f"/api/downloads/{download_id}")
        return await resp.json()

    return await wait_until_async(probe, lambda v: v["status"] in statuses, timeout=60)


async def test_the_api_queues_follows_and_controls_downloads(
    client, storage: FakeStorage, models_root: Path
) -> None:
    data = payload(2 * MIB, seed=20)
    sha = hashlib.sha256(data).hexdigest()
    storage.put("api.safetensors", data)
    storage.slow = 256 * 1024
    resp = await client.post(
        "/api/downloads",
        json={"source": storage.file_url("api.safetensors"), "type": "loras", "sha256": sha},
    )
    assert resp.status == 202
    queued = await resp.json()
    assert queued["status"] == "queued" and isinstance(queued["id"], int)
    did = queued["id"]
    listed = await (await client.get("/api/downloads")).json()
    keys = {"id", "source", "status", "bytes_done", "bytes_total", "speed", "eta_s", "path"}
    assert [v["id"] for v in listed] == [did] and keys | {"sha256", "error"} <= set(listed[0])
    assert (await client.delete(f"/api/downloads/{did}")).status == 409
    assert (await client.post(f"/api/downloads/{did}/pause")).status == 200
    paused = await _until_over(client, did, ("paused",))
    assert paused["status"] == "paused"
    assert (await client.post(f"/api/downloads/{did}/pause")).status == 409
    storage.slow = 0
    assert (await client.post(f"/api/downloads/{did}/resume")).status == 200
    view = await _until_over(client, did)
    assert view["status"] == "done" and view["sha256"] == sha
    assert view["path"] == str(models_root / "loras" / "api.safetensors")
    assert (await client.post(f"/api/downloads/{did}/cancel")).status == 409
    assert (await client.delete(f"/api/downloads/{did}")).status == 200
    assert (await client.get(f"/api/downloads/{did}")).status == 404


async def test_bad_download_requests_are_4xx_and_queue_nothing(client, tmp_path: Path) -> None:
    bodies = [
        {},
        {"source": ""},
        {"source": ["x"]},
        {"source": "http://127.0.0.1:9/a.safetensors", "type": "loras", "extra": 1},
        {"source": "http://127.0.0.1:9/a.safetensors", "type": 3},
        {"source": "http://127.0.0.1:9/a.safetensors", "type": "loras", "file_id": "1"},
        {"source": "http://127.0.0.1:9/a.safetensors", "type": "loras", "sha256": "12"},
        {"source": "http://127.0.0.1:9/a.safetensors", "folder": str(tmp_path)},
        {"source": "gopher://127.0.0.1:9/a", "type": "loras"},
    ]
    for body in bodies:
        resp = await client.post("/api/downloads", json=body)
        answer = await resp.json()
        assert resp.status == 400, (body, answer)
        assert set(answer) >= {"error", "detail"}
    assert await (await client.get("/api/downloads")).json() == []
    assert (await client.get("/api/downloads/abc")).status == 400
    assert (await client.post("/api/downloads/77/resume")).status == 404


async def test_a_token_goes_only_to_its_api_host_never_after_a_redirect(tmp_path: Path) -> None:
    data = payload(MIB, seed=21)
    api_gen = fake_storage_server(tmp_path / "api")
    cdn_gen = fake_storage_server(tmp_path / "cdn")
    api, cdn = next(api_gen), next(cdn_gen)
    try:
        cdn.put("m.safetensors", data)
        api.redirect_to = cdn
        target = FetchTarget(
            url=f"{api.url}/redirect/m.safetensors",
            kind="civitai",
            auth_host=host_port(api.url),
            headers={"Authorization": "Bearer sekrit-token"},
        )
        writer = PartWriter(str(tmp_path / "m.part"))
        async with aiohttp.ClientSession() as session:
            await fetch(session, target, writer, Progress())
        assert writer.sha.hexdigest() == hashlib.sha256(data).hexdigest()
        assert [h.get("Authorization") for h in api.headers_seen()] == ["Bearer sekrit-token"]
        assert cdn.headers_seen() and all("Authorization" not in h for h in cdn.headers_seen())
        assert all("sekrit" not in json.dumps(h) for h in cdn.headers_seen())
    finally:
        for gen in (api_gen, cdn_gen):
            for _ in gen:
                pass


def test_a_killed_server_resumes_its_download_with_range(
    tmp_path: Path, storage: FakeStorage
) -> None:
    data = payload(8 * MIB, seed=22)
    sha = hashlib.sha256(data).hexdigest()
    storage.put("kill.safetensors", data)
    storage.slow = 512 * 1024
    root, data_dir = tmp_path / "models", tmp_path / "data"
    root.mkdir()
    server = start_server(data_dir, tmp_path, root=root)
    try:
        queued = server_json(
            server,
            "api/downloads",
            {"source": storage.file_url("kill.safetensors"), "type": "loras", "sha256": sha},
        )
        part = root / "loras" / "kill.safetensors.part"
        wait_until(
            lambda: part.exists() and part.stat().st_size > 0,
            timeout=60,
            message="bytes in the part file",
        )
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
    finally:
        stop(server)
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    storage.slow = 0
    again = start_server(data_dir, tmp_path, root=root)
    try:
        view = wait_until(
            lambda: server_json(again, f"api/downloads/{queued['id']}"),
            lambda v: v["status"] in ("done", "failed"),
            timeout=60,
        )
        assert view["status"] == "done", view
        assert (root / "loras" / "kill.safetensors").read_bytes() == data
        ranges = [h.get("Range") for h in storage.headers_seen()]
        assert ranges[0] is None and ranges[-1] is not None
        assert int(ranges[-1][len("bytes=") : -1]) >= kept
        models = server_json(again, "api/models?type=loras")
        assert [m["sha256"] for m in models["items"]] == [sha]
    finally:
        stop(again)


def test_the_cli_queues_in_the_server_that_holds_the_library(
    tmp_path: Path, storage: FakeStorage
) -> None:
    data = payload(MIB, seed=24)
    storage.put("served.safetensors", data)
    root, data_dir = tmp_path / "models", tmp_path / "data"
    root.mkdir()
    server = start_server(data_dir, tmp_path, root=root)
    try:
        common = ["--data-dir", str(data_dir), "--models-root", str(root)]
        done = run_cli("download", storage.file_url("served.safetensors"), "--type", "vae", *common)
        assert done.returncode == 0, done.stderr
        assert "downloading there" in done.stderr
        final = root / "vae" / "served.safetensors"
        assert done.stdout.split() == [hashlib.sha256(data).hexdigest(), str(final)]
        listed = server_json(server, "api/downloads")
        assert [(v["status"], v["path"]) for v in listed] == [("done", str(final))]
        again = run_cli("download", "--list", *common)
        assert again.returncode == 0 and str(final) in again.stdout
    finally:
        stop(server)


def test_the_cli_downloads_with_a_bar_and_lists(tmp_path: Path, storage: FakeStorage) -> None:
    data = payload(MIB, seed=23)
    storage.put("cli.safetensors", data)
    root, data_dir = tmp_path / "models", tmp_path / "data"
    root.mkdir()
    common = ["--data-dir", str(data_dir), "--models-root", str(root)]
    first = run_cli("scan", *common)
    assert first.returncode == 0, first.stderr
    done = run_cli("download", storage.file_url("cli.safetensors"), "--type", "loras", *common)
    assert done.returncode == 0, done.stderr
    sha = hashlib.sha256(data).hexdigest()
    assert done.stdout.split() == [sha, str(root / "loras" / "cli.safetensors")]
    listed = run_cli("download", "--list", "--json", *common)
    assert listed.returncode == 0, listed.stderr
    assert [(v["status"], v["sha256"]) for v in json.loads(listed.stdout)] == [("done", sha)]
    bad = run_cli("download", "ftp://x/y", "--type", "loras", *common)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "hikaze-mm: error:" in bad.stderr
