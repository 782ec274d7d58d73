"""The ComfyUI side without ComfyUI: payloads (ours and upstream's), the resolution order,
queue-time validation, the fingerprint, the mapping of ComfyUI's model folders, and the
plugin's set-up on an aiohttp app (a working library and a broken one)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web

from hikaze_mm.comfy import nodes, plugin
from hikaze_mm.config import ModelRoot
from hikaze_mm.library.resolver import ModelResolver, ResolveError
from hikaze_mm.services import Services
from hikaze_mm.workflow.payload import ModelRef, PayloadError, parse_loras, parse_model
from tests.helpers import same_origin_headers, sha256_of, write_model

SHA = "ab" * 32


# ---------------------------------------------------------------- payloads
def test_single_model_payloads_ours_and_upstreams() -> None:
    ours = parse_model(json.dumps({"sha256": SHA.upper(), "name": "Dream", "ckpt_path": "/m/x"}))
    assert ours == ModelRef(SHA, "Dream", "/m/x")
    upstream = parse_model(json.dumps({"ckpt_path": "/abs/models/checkpoints/old.safetensors"}))
    assert upstream == ModelRef(None, None, "/abs/models/checkpoints/old.safetensors")
    assert upstream.label() == "old.safetensors"
    assert ours.label() == f"Dream ({SHA[:10]})"


def test_lora_payload_v2_as_upstream_wrote_it() -> None:
    text = json.dumps(
        {
            "version": 2,
            "loras": [
                {
                    "name": "style",
                    "full_path": "/l/style.safetensors",
                    "strength_model": 0.8,
                    "strength_clip": 0.5,
                    "sha256": SHA,
                    "enabled": True,
                },
                {"name": "off", "full_path": "/l/off.safetensors", "enabled": False},
            ],
        }
    )
    first, second = parse_loras(text)
    assert first.model == ModelRef(SHA, "style", "/l/style.safetensors")
    assert (first.strength_model, first.strength_clip, first.enabled) == (0.8, 0.5, True)
    assert second.enabled is False and second.strength_model == 1.0
    assert parse_loras('{"version": 2, "loras": []}') == []


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "no model chosen"),
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ("{}", "no model chosen"),
        ('{"sha256": "xyz"}', "64 hex characters"),
        ('{"sha256": 5}', "64 hex characters"),
        ('{"name": 3}', "name must be a string"),
        ("[" * 500 + "]" * 500, "not valid JSON"),
    ],
)
def test_bad_model_payloads(text: str, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        parse_model(text)


@pytest.mark.parametrize(
    "payload, words",
    [
        ({"version": 3, "loras": []}, "unsupported LoRA payload version"),
        ({"version": 2, "loras": {}}, "loras must be a list"),
        ({"version": 2, "loras": [5]}, "LoRA 1 must be a JSON object"),
        ({"version": 2, "loras": [{"sha256": SHA, "strength_model": "x"}]}, "must be a number"),
        ({"version": 2, "loras": [{"sha256": SHA, "strength_clip": 1e9}]}, "between -100"),
        ({"version": 2, "loras": [{"sha256": SHA, "enabled": "yes"}]}, "enabled must be"),
        ({"version": 2, "loras": [{"enabled": True}]}, "LoRA 1: no model chosen"),
        ({"version": 2, "loras": [{"sha256": SHA}] * 101}, "at most 100"),
    ],
)
def test_bad_lora_payloads(payload: dict, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        parse_loras(json.dumps(payload))


def test_the_fingerprint_is_hashes_and_strengths_not_names() -> None:
    def lora(name: str, strength: float = 1.0, sha: str = SHA) -> str:
        entry = {"name": name, "sha256": sha, "strength_model": strength, "strength_clip": 1}
        return json.dumps({"version": 2, "loras": [entry]})

    same = nodes.HikazeLoraPowerLoader.IS_CHANGED(lora("a"))
    assert nodes.HikazeLoraPowerLoader.IS_CHANGED(lora("renamed")) == same
    assert nodes.HikazeLoraPowerLoader.IS_CHANGED(lora("a", 0.5)) != same
    assert nodes.HikazeLoraPowerLoader.IS_CHANGED(lora("a", sha="cd" * 32)) != same
    single = nodes.HikazeCheckpointLoader.IS_CHANGED
    assert single(json.dumps({"sha256": SHA, "name": "a"})) == single(
        json.dumps({"sha256": SHA, "name": "b", "ckpt_path": "/x"})
    )


# ---------------------------------------------------------------- resolution
@pytest.fixture
def library(services: Services, models_root: Path) -> Iterator[SimpleNamespace]:
    """A library with one checkpoint known by hash, and a name lookup over a plain folder
    standing in for ComfyUI's (``folder_paths`` is ComfyUI's: the real one is tested in
    the real-ComfyUI tests)."""
    folder = models_root / "checkpoints"
    folder.mkdir()
    known = folder / "known.safetensors"
    sha = write_model(known, 4096, seed=1)
    services.scanner.scan(immediate_hashing=True)
    by_name = folder / "by_name.safetensors"
    write_model(by_name, 2048, seed=2)

    def find(kind: str, name: str) -> str | None:
        path = models_root / kind / name
        return str(path) if path.is_file() else None

    resolver = ModelResolver(
        services.db, services.hashes, lambda: services.config.model_roots, find
    )
    yield SimpleNamespace(services=services, resolver=resolver, sha=sha, known=known, folder=folder)


def test_resolution_by_hash_then_relink_then_path_then_name(library, models_root: Path) -> None:
    r, sha = library.resolver, library.sha
    got = r.resolve(ModelRef(sha, "known", "/nowhere"), "checkpoints")
    assert (got.path, got.sha256, got.how) == (str(library.known), sha, "library")
    # Moved and renamed: a targeted relink hashes only same-size files and updates the path.
    moved = models_root / "checkpoints" / "sub" / "renamed.safetensors"
    moved.parent.mkdir()
    library.known.rename(moved)
    write_model(models_root / "checkpoints" / "decoy.safetensors", 4096, seed=9)  # same size
    got = r.resolve(ModelRef(sha, "known"), "checkpoints")
    assert (got.path, got.how) == (str(moved), "relinked")
    assert library.services.db.models.get(sha)["path"] == str(moved)
    # Unknown to the library: the path the node carries, then the name in the folder.
    other = models_root / "checkpoints" / "by_name.safetensors"
    assert r.resolve(ModelRef("cd" * 32, None, str(other)), "checkpoints").how == "path"
    got = r.resolve(ModelRef("cd" * 32, "by_name.safetensors", "/gone"), "checkpoints")
    assert (got.path, got.how, got.sha256) == (str(other), "name", None)


def test_resolution_errors_name_the_model(library) -> None:
    with pytest.raises(ResolveError, match=r"cannot find ghost \(cdcdcdcdcd\)"):
        library.resolver.resolve(ModelRef("cd" * 32, "ghost", "/no/file"), "checkpoints")
    os.unlink(library.known)  # known by hash, but no file has its content any more
    with pytest.raises(ResolveError, match="its file is gone"):
        library.resolver.resolve(ModelRef(library.sha, "known"), "checkpoints")


def test_validation_at_queue_time(library) -> None:
    nodes.CONTEXT.resolver, nodes.CONTEXT.broken = library.resolver, None
    try:
        check = nodes.HikazeCheckpointLoader.VALIDATE_INPUTS
        assert check(json.dumps({"sha256": library.sha, "name": "known"})) is True
        assert check(json.dumps({"name": "by_name.safetensors"})) is True
        message = check(json.dumps({"sha256": "ef" * 32, "name": "lost"}))
        assert isinstance(message, str) and "cannot find lost (efefefefef)" in message
        assert "not valid JSON" in check("{oops")
        loras = nodes.HikazeLoraPowerLoader.VALIDATE_INPUTS
        off = {"sha256": "ef" * 32, "enabled": False}  # a disabled unknown LoRA is fine
        assert loras(json.dumps({"version": 2, "loras": [off]})) is True
        assert "LoRA 1" in loras(json.dumps({"version": 2, "loras": [{"enabled": 1}]}))
    finally:
        nodes.CONTEXT.resolver, nodes.CONTEXT.broken = None, "reset by the test"
    assert "reset by the test" in nodes.HikazeCheckpointLoader.VALIDATE_INPUTS('{"name": "x"}')


def test_use_is_counted(library) -> None:
    models = library.services.models
    assert models.mark_used(library.sha)["use_count"] == 1
    record = models.mark_used(library.sha)
    assert record["use_count"] == 2 and record["last_used_at"] > 0
    library.services.db.models.update(library.sha, meta={"trigger_words": ["a", " b ", 3, ""]})
    assert models.trigger_words(library.sha) == ["a", "b"]


# ---------------------------------------------------------------- ComfyUI's folders
def test_roots_from_comfyuis_folders(tmp_path: Path) -> None:
    models = tmp_path / "models"
    for name in ("checkpoints", "loras", "unet", "diffusion_models", "text_encoders"):
        (models / name).mkdir(parents=True)
    extra = tmp_path / "extra_loras"
    extra.mkdir()
    folders = {
        "checkpoints": ([str(models / "checkpoints")], {".safetensors"}),
        "loras": ([str(models / "loras"), str(extra)], {".safetensors"}),
        # ComfyUI maps both keys to both folders: each folder is scanned once.
        "unet": ([str(models / "unet"), str(models / "diffusion_models")], set()),
        "diffusion_models": ([str(models / "unet"), str(models / "diffusion_models")], set()),
        "clip": ([str(models / "text_encoders"), str(models / "clip")], set()),
        "text_encoders": ([str(models / "text_encoders")], set()),
        "custom_nodes": ([str(tmp_path / "custom_nodes")], set()),
        "configs": ([str(models / "configs")], set()),
    }
    added = ModelRoot(tmp_path / "more", None)
    roots = plugin.roots_from_comfy(folders, [added, ModelRoot(extra.resolve(), "loras")])
    by_path = {r.path: r.type_key for r in roots}
    assert by_path == {
        (models / "checkpoints").resolve(): "checkpoints",
        (models / "loras").resolve(): "loras",
        extra.resolve(): "loras",
        (models / "unet").resolve(): "unet",
        (models / "diffusion_models").resolve(): "diffusion_models",
        (models / "text_encoders").resolve(): "text_encoders",
        added.path: None,
    }


def test_the_guard_follows_comfyuis_listen_address() -> None:
    assert plugin.listen_host("127.0.0.1") == "127.0.0.1"
    assert plugin.listen_host("0.0.0.0,::") == "0.0.0.0"
    assert plugin.listen_host("127.0.0.1,192.168.1.5") == "192.168.1.5"
    assert plugin.auto_hash({"HIKAZE_AUTO_HASH": "0"}) is False
    assert plugin.auto_hash({}) is True


# ---------------------------------------------------------------- set-up on an app
class StandInServer:
    """What the plugin uses of ComfyUI's PromptServer: its aiohttp app and send_sync."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.events: list[tuple[str, dict]] = []

    def send_sync(self, event: str, data: dict) -> None:
        self.events.append((event, data))


def scan_events(server: StandInServer) -> list[dict]:
    return [data for event, data in server.events if event == "hikaze.scan"]


def stand_in_folder_paths(tmp_path: Path, models: Path) -> SimpleNamespace:
    return SimpleNamespace(
        folder_names_and_paths={"loras": ([str(models)], {".safetensors"})},
        get_user_directory=lambda: str(tmp_path / "user"),
        get_full_path=lambda folder, name: None,
        get_filename_list=lambda folder: [],
    )


async def test_setup_mounts_the_library_and_scans_after_start(aiohttp_client, tmp_path) -> None:
    models = tmp_path / "loras"
    models.mkdir()
    sha = write_model(models / "a.safetensors", 1000, seed=3)
    server = StandInServer()
    env = {"HIKAZE_DATA_DIR": str(tmp_path / "data")}
    services = plugin.setup(
        server,
        stand_in_folder_paths(tmp_path, models),
        SimpleNamespace(listen="127.0.0.1", port=8188),
        env,
    )
    try:
        assert services is not None and nodes.CONTEXT.resolver is not None
        client = await aiohttp_client(server.app)
        assert services.scanner.wait(30)
        resp = await client.get("/hikaze/api/models")
        assert resp.status == 200
        assert [m["sha256"] for m in (await resp.json())["items"]] == [sha]
        assert scan_events(server)[-1]["running"] is False
        assert scan_events(server)[-1]["phase"] == "done"
        # A scan started over the API is reported on the websocket too.
        seen = len(scan_events(server))
        assert (await client.post("/hikaze/api/scan", json={})).status == 202
        assert services.scanner.wait(30)
        assert len(scan_events(server)) > seen and scan_events(server)[-1]["running"] is False
        assert sha256_of(models / "a.safetensors") == sha
        # Each committed change goes out as hikaze.changed (the first scan's model too).
        changed = [data for event, data in server.events if event == "hikaze.changed"]
        assert {
            "kind": "models",
            "keys": [sha],
            "bulk": False,
            "host": services.config.host_name,
        } in changed
        headers = same_origin_headers(client)
        resp = await client.post("/hikaze/api/tags", json={"name": "live"}, headers=headers)
        tag_id = str((await resp.json())["id"])
        assert (
            "hikaze.changed",
            {"kind": "tags", "keys": [tag_id], "bulk": False, "host": services.config.host_name},
        ) in server.events
    finally:
        services.close()
        nodes.CONTEXT.resolver, nodes.CONTEXT.broken = None, "closed"


async def test_a_broken_library_answers_503_and_the_nodes_say_why(aiohttp_client, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hikaze_mm.db").write_bytes(b"this is not a database" * 100)
    server = StandInServer()
    result = plugin.setup(
        server,
        stand_in_folder_paths(tmp_path, tmp_path),
        SimpleNamespace(listen="127.0.0.1", port=8188),
        {"HIKAZE_DATA_DIR": str(data)},
    )
    assert result is None
    client = await aiohttp_client(server.app)
    resp = await client.get("/hikaze/api/models")
    assert resp.status == 503
    body = await resp.json()
    assert body["error"] == "Hikaze Model Manager unavailable" and "cannot open" in body["detail"]
    message = nodes.HikazeCheckpointLoader.VALIDATE_INPUTS(json.dumps({"sha256": SHA}))
    assert isinstance(message, str) and "cannot open" in message
    with pytest.raises(RuntimeError, match="cannot open"):
        nodes.HikazeCheckpointLoader().resolved_path(json.dumps({"sha256": SHA}))
