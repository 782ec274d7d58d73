"""What each model made: recorded generations, their files (only from the output folder)
and "use as a model image", on a real server with a real library and real files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from PIL import Image

from hikaze_mm.config import Config
from hikaze_mm.errors import ValidationError
from hikaze_mm.server.app import create_app
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import same_origin_headers
from tests.library_helpers import assert_error, png_bytes, seed_model, services_of

config = on_each_backend()


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "output"
    folder.mkdir()
    return folder


@pytest.fixture
async def client(aiohttp_client, config: Config, output_dir: Path):
    """A real server whose ComfyUI output folder is ``output_dir``."""
    svc = Services.open(dataclasses.replace(config, output_dir=output_dir))
    return await aiohttp_client(create_app(svc))


def record(svc: Services, file: str, resources: list[dict], **params) -> int:
    base = {"prompt": "a cat", "negative_prompt": "blurry", "seed": 2**64 - 1, "steps": 20}
    return svc.generations.record(file, {**base, **params}, resources)


def save_png(folder: Path, name: str, color=(10, 20, 30)) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(png_bytes((32, 24), color))


async def test_a_models_generations_newest_first(client, output_dir: Path) -> None:
    svc = services_of(client)
    ckpt = seed_model(svc, "base", type="checkpoints")
    lora = seed_model(svc, "style")
    gone = "0" * 64  # not in the library: left out of the record
    save_png(output_dir, "ComfyUI_00001_.png")
    save_png(output_dir, "sub/ComfyUI_00002_.png")
    uses = [
        {"sha256": ckpt, "role": "model", "name": "base", "weight": None},
        {"sha256": lora, "role": "lora", "name": "style", "weight": 0.8},
        {"sha256": gone, "role": "lora", "name": "gone", "weight": 1.0},
    ]
    first = record(svc, "ComfyUI_00001_.png", uses, created_at=1000, sampler="Euler", cfg=7.0)
    second = record(
        svc, "sub/ComfyUI_00002_.png", uses[:1], created_at=2000, schedule_type="Karras"
    )
    third = record(svc, "deleted.png", uses[1:2], created_at=3000)

    resp = await client.get(f"/api/models/{ckpt}/generations")
    body = await resp.json()
    assert resp.status == 200 and body["total"] == 2
    assert [item["id"] for item in body["items"]] == [second, first]
    older = body["items"][1]
    assert older["image_url"] == f"api/generations/{first}/image"
    assert (older["prompt"], older["negative_prompt"], older["seed"]) == (
        "a cat",
        "blurry",
        2**64 - 1,
    )
    assert (older["steps"], older["sampler"], older["cfg"], older["missing"]) == (
        20,
        "Euler",
        7.0,
        False,
    )
    assert older["resources"] == [
        {"sha256": ckpt, "role": "model", "name": "base", "weight": None},
        {"sha256": lora, "role": "lora", "name": "style", "weight": 0.8},
    ]
    page = await (await client.get(f"/api/models/{lora}/generations?offset=1&limit=1")).json()
    assert page["total"] == 2 and [item["id"] for item in page["items"]] == [first]
    newest = await (await client.get(f"/api/models/{lora}/generations?limit=1")).json()
    assert newest["items"][0]["id"] == third and newest["items"][0]["missing"] is True


async def test_the_image_comes_only_from_the_output_folder(
    client, output_dir: Path, tmp_path: Path
) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "m", type="checkpoints")
    save_png(output_dir, "a.png")
    ok = record(svc, "a.png", [{"sha256": sha, "role": "model", "name": "m"}])
    resp = await client.get(f"/api/generations/{ok}/image")
    assert resp.status == 200 and resp.content_type == "image/png"
    assert await resp.read() == (output_dir / "a.png").read_bytes()
    again = await client.get(
        f"/api/generations/{ok}/image", headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status == 304

    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())
    os.symlink(secret, output_dir / "link.png")  # a link out of the output folder
    linked = record(svc, "link.png", [{"sha256": sha, "role": "model", "name": "m"}])
    await assert_error(await client.get(f"/api/generations/{linked}/image"), 404)
    (output_dir / "a.png").unlink()  # the user deleted it: missing, never an error
    await assert_error(await client.get(f"/api/generations/{ok}/image"), 404)
    listed = await (await client.get(f"/api/models/{sha}/generations")).json()
    assert [item["missing"] for item in listed["items"]] == [True, True]
    await assert_error(await client.get("/api/generations/999/image"), 404)
    await assert_error(await client.get("/api/generations/abc/image"), 400)


@pytest.mark.parametrize("file", ["../outside.png", "/etc/passwd", "a/../../b.png", ""])
def test_a_record_never_points_out_of_the_output_folder(services: Services, file: str) -> None:
    with pytest.raises(ValidationError):
        services.generations.record(file, {}, [])


async def test_add_to_model_makes_a_model_image(client, output_dir: Path) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "m", type="checkpoints")
    (output_dir / "big.png").write_bytes(b"")
    Image.new("RGB", (300, 200), (200, 100, 50)).save(output_dir / "big.png")
    gid = record(svc, "big.png", [{"sha256": sha, "role": "model", "name": "m"}])
    headers = same_origin_headers(client)
    url = f"/api/generations/{gid}/add-to-model"

    resp = await client.post(url, json={"sha256": sha}, headers=headers)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["seq"] == 0 and body["images"] == [f"{sha}_0.webp"]
    assert svc.images.list_seqs(sha) == [0]
    tier = await client.get(f"/api/images/{sha}_0.webp?quality=low")
    assert tier.status == 200

    await assert_error(await client.post(url, json={"sha256": "f" * 64}, headers=headers), 404)
    await assert_error(await client.post(url, json={"hash": sha}, headers=headers), 400)
    await assert_error(await client.post(url, json={"sha256": "nope"}, headers=headers), 400)
    cross = await client.post(url, json={"sha256": sha}, headers={"Origin": "http://evil.test"})
    assert cross.status == 403
    assert svc.images.list_seqs(sha) == [0]  # nothing changed by the bad requests


async def test_bad_listing_requests(client) -> None:
    svc = services_of(client)
    sha = seed_model(svc, "m")
    await assert_error(await client.get(f"/api/models/{sha}/generations?limit=0"), 400)
    await assert_error(await client.get(f"/api/models/{sha}/generations?limit=5000"), 400)
    await assert_error(await client.get(f"/api/models/{sha}/generations?offset=-1"), 400)
    await assert_error(await client.get(f"/api/models/{'e' * 64}/generations"), 404)
    await assert_error(await client.get("/api/models/xyz/generations"), 400)


def test_the_output_folder_is_remembered_for_serve(config: Config, tmp_path: Path) -> None:
    """ComfyUI tells the library its output folder; a later standalone serve uses it, and
    ``HIKAZE_OUTPUT_DIR`` wins over it."""
    folder = tmp_path / "comfy-output"
    folder.mkdir()
    svc = Services.open(config)
    try:
        assert svc.generations.output_dir() is None
        svc.generations.remember_output_dir(folder)
    finally:
        svc.close()
    later = Services.open(config)
    try:
        assert later.generations.output_dir() == folder.resolve()
    finally:
        later.close()
    chosen = Config.load(data_dir=config.data_dir, env={"HIKAZE_OUTPUT_DIR": str(tmp_path)})
    assert chosen.output_dir == tmp_path.resolve()
    assert Config.load(data_dir=config.data_dir, env={}).record_generations is True
    off = Config.load(data_dir=config.data_dir, env={"HIKAZE_RECORD_GENERATIONS": "0"})
    assert off.record_generations is False
    with pytest.raises(ValueError, match="HIKAZE_RECORD_GENERATIONS"):
        Config.load(data_dir=config.data_dir, env={"HIKAZE_RECORD_GENERATIONS": "maybe"})
