"""The models a workflow needs (``workflow.needs``) and POST /api/workflows/missing: which
the library lacks and where to get them, on a real server, with our Civitai stand-in."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hikaze_mm.config import Config
from hikaze_mm.server.app import create_app
from hikaze_mm.services import Services
from hikaze_mm.workflow.needs import Need, needs_of
from tests.civitai_fake import FakeCivitai
from tests.helpers import same_origin_headers
from tests.library_helpers import assert_error, seed_model, services_of, sha_for
from tests.storage_fake import FakeStorage
from tests.waiting import wait_until_async

HELD, LISTED, ON_CIVITAI, NOWHERE = (sha_for(x) for x in ("held", "listed", "civ", "nowhere"))


def ui_workflow() -> dict:
    """The UI shape: our checkpoint loader (a model the library holds, by hash), our LoRA
    loader (a hash Civitai knows), ComfyUI's LoraLoader (a file the library holds by name),
    ComfyUI's VAELoader (a file the workflow's list says where to get), and an embedding."""
    ckpt = json.dumps({"sha256": HELD, "name": "held"})
    loras = json.dumps(
        {"version": 2, "loras": [{"sha256": ON_CIVITAI, "name": "civ_lora", "strength_model": 0.7}]}
    )
    return {
        "last_node_id": 6,
        "nodes": [
            {"id": 1, "type": "HikazeCheckpointLoader", "widgets_values": [ckpt]},
            {"id": 2, "type": "HikazeLoraPowerLoader", "widgets_values": [loras]},
            {"id": 3, "type": "LoraLoader", "widgets_values": ["style/by_name.safetensors", 1, 1]},
            {"id": 4, "type": "VAELoader", "widgets_values": ["listed_vae.safetensors"]},
            {"id": 5, "type": "CLIPTextEncode", "widgets_values": ["a cat, embedding:gone_emb"]},
            {"id": 6, "type": "Note", "widgets_values": ["embedding:not_a_prompt"]},
        ],
        "models": [
            {
                "name": "listed_vae.safetensors",
                "url": "https://mirror.example/vae/listed_vae.safetensors",
                "hash": LISTED,
                "hash_type": "SHA256",
                "directory": "vae",
            }
        ],
    }


def api_prompt() -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "base.safetensors"}},
        "2": {
            "class_type": "LoraLoader",
            "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": "x.safetensors"},
        },
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": ["9", 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "(embedding:neg:1.2), bad"}},
    }


def test_needs_of_the_ui_shape() -> None:
    needs = needs_of(ui_workflow())
    assert needs == [
        Need("1", "HikazeCheckpointLoader", "checkpoints", "held", HELD),
        Need("2", "HikazeLoraPowerLoader", "loras", "civ_lora", ON_CIVITAI),
        Need("3", "LoraLoader", "loras", "style/by_name.safetensors"),
        Need(
            "4",
            "VAELoader",
            "vae",
            "listed_vae.safetensors",
            LISTED,
            "https://mirror.example/vae/listed_vae.safetensors",
        ),
        Need("5", "CLIPTextEncode", "embeddings", "gone_emb"),
    ]


def test_needs_of_the_api_shape_and_odd_input() -> None:
    assert needs_of(api_prompt()) == [
        Need("1", "CheckpointLoaderSimple", "checkpoints", "base.safetensors"),
        Need("2", "LoraLoader", "loras", "x.safetensors"),
        Need("4", "CLIPTextEncode", "embeddings", "neg"),
    ]
    broken_payload = {"type": "HikazeCheckpointLoader", "widgets_values": ["{not json"]}
    odd = [
        None,
        [],
        "text",
        {"nodes": "x"},
        {"nodes": [None, 3, {"type": 5}, broken_payload]},
        {"1": {"class_type": "LoraLoader", "inputs": {"lora_name": ["5", 0]}}},
    ]
    for workflow in odd:
        assert needs_of(workflow) == []


@pytest.fixture
async def client(aiohttp_client, config: Config, fake: FakeCivitai):
    """A real server whose Civitai is the stand-in."""
    civitai = dataclasses.replace(config.civitai, url=fake.url)
    svc = Services.open(dataclasses.replace(config, civitai=civitai))
    return await aiohttp_client(create_app(svc))


async def post(client, path: str, body, query: str = ""):
    return await client.post(f"{path}{query}", json=body, headers=same_origin_headers(client))


def by_name(answer: dict) -> dict[str, dict]:
    return {r["name"]: r for r in answer["resources"]}


async def test_missing_models_and_their_sources(client, fake: FakeCivitai) -> None:
    svc = services_of(client)
    seed_model(svc, "held", type="checkpoints", sha256=HELD)
    by_file = seed_model(svc, "by_name", path="/m/loras/style/by_name.safetensors")
    fake.found(ON_CIVITAI, model_id=7, version_id=70)

    resp = await post(client, "/api/workflows/missing", ui_workflow())
    answer = await resp.json()
    assert resp.status == 200, answer
    found = by_name(answer)
    assert (found["held"]["in_library"], found["held"]["found"]) == (True, None)
    assert found["held"]["path"].endswith("held.safetensors")
    named = found["style/by_name.safetensors"]
    assert (named["in_library"], named["sha256"], named["autov2"]) == (
        True,
        by_file,
        by_file[:10].upper(),
    )
    civ = found["civ_lora"]
    assert civ["in_library"] is False and civ["node_id"] == "2"
    assert civ["found"] == {
        "source": f"sha256:{ON_CIVITAI}",
        "size": 1049088,
        "name": "alpha.safetensors",
    }
    vae = found["listed_vae.safetensors"]
    assert vae["found"]["source"] == "https://mirror.example/vae/listed_vae.safetensors"
    assert vae["sha256"] == LISTED
    assert found["gone_emb"]["found"] is None  # no hash, no URL: nowhere to get it

    before = len(fake.lookup_paths())
    quiet = by_name(
        await (await post(client, "/api/workflows/missing", ui_workflow(), "?lookup=false")).json()
    )
    assert len(fake.lookup_paths()) == before  # no lookup left the machine
    assert quiet["civ_lora"]["found"] is None and quiet["gone_emb"]["found"] is None
    assert quiet["listed_vae.safetensors"]["found"] == {
        "source": "https://mirror.example/vae/listed_vae.safetensors",
        "size": None,
        "name": "listed_vae.safetensors",
    }


async def test_a_workflow_inside_an_image(client) -> None:
    svc = services_of(client)
    seed_model(svc, "base", type="checkpoints", path="/m/checkpoints/base.safetensors")
    info = PngInfo()
    info.add_text("prompt", json.dumps(api_prompt()))
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    body = {"image": base64.b64encode(out.getvalue()).decode()}
    resp = await post(client, "/api/workflows/missing", body, "?lookup=false")
    found = by_name(await resp.json())
    assert found["base.safetensors"]["in_library"] is True
    assert found["x.safetensors"]["in_library"] is False


async def test_bad_workflow_requests(client) -> None:
    await assert_error(await post(client, "/api/workflows/missing", [1, 2]), 400)
    await assert_error(await post(client, "/api/workflows/missing", {"image": "%%%"}), 400)
    plain = base64.b64encode(b"not an image").decode()
    await assert_error(await post(client, "/api/workflows/missing", {"image": plain}), 400)
    bare = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bare, "PNG")
    empty = {"image": base64.b64encode(bare.getvalue()).decode()}
    await assert_error(await post(client, "/api/workflows/missing", empty), 400)
    cross = await client.post(
        "/api/workflows/missing", json=ui_workflow(), headers={"Origin": "http://evil.test"}
    )
    assert cross.status == 403
    nothing = await post(client, "/api/workflows/missing", {"nodes": []})
    assert (await nothing.json()) == {"resources": []}


async def test_fetch_missing_downloads_under_the_loaders_names(
    client, storage: FakeStorage, models_root
) -> None:
    """Each missing model with a source is downloaded, verified and promoted; a file a core
    loader names lands under that name, so the workflow finds it; one with no source is
    said so."""
    data = bytes(range(256)) * 64
    sha = hashlib.sha256(data).hexdigest()
    storage.put("wanted.safetensors", data)
    workflow = {
        "nodes": [
            {"id": 3, "type": "LoraLoader", "widgets_values": ["style/by_name.safetensors", 1, 1]},
            {"id": 5, "type": "CLIPTextEncode", "widgets_values": ["embedding:gone_emb"]},
        ],
        "models": [
            {
                "name": "style/by_name.safetensors",
                "url": storage.file_url("wanted.safetensors"),
                "hash": sha,
                "hash_type": "SHA256",
                "directory": "loras",
            }
        ],
    }
    resp = await post(client, "/api/workflows/fetch-missing", workflow)
    answer = await resp.json()
    assert resp.status == 202, answer
    assert answer["without_source"] == ["gone_emb"]
    (queued,) = answer["downloads"]
    assert queued["name"] == "style/by_name.safetensors" and queued["folder"] == "loras"
    svc = services_of(client)

    def done() -> dict | None:
        record = svc.downloads.get(queued["id"])
        return record if record["status"] in ("done", "failed") else None

    record = await wait_until_async(done, timeout=30)
    assert record["status"] == "done", record
    target = models_root / "loras" / "style" / "by_name.safetensors"
    assert target.read_bytes() == data and record["path"] == str(target)
    assert svc.db.models.get(sha)["path"] == str(target)
    again = await (await post(client, "/api/workflows/missing", workflow, "?lookup=false")).json()
    assert by_name(again)["style/by_name.safetensors"]["in_library"] is True
