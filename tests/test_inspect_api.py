"""POST /api/images/inspect: the models any image names (A1111, ours, ComfyUI-only),
matched to the library by SHA-256, AutoV2, AutoV3 or file name; on a real server. The
images are written here with Pillow alone, as other tools write them."""

from __future__ import annotations

import io
import json
import struct
import zlib

from aiohttp import FormData
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.helpers import same_origin_headers
from tests.library_helpers import assert_error, seed_model, services_of

A1111_TEXT = (
    "masterpiece, <lora:detail_tweaker:0.6>, a castle\n"
    "Negative prompt: easynegative, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 4242, "
    "Size: 512x768, Model hash: {ckpt10}, Model: dreamy_v1, "
    'Lora hashes: "detail_tweaker: {lora12}", TI hashes: "easynegative: {ti10}", '
    "Version: v1.10.1"
)


def png_with(text: dict[str, str], size=(64, 96)) -> bytes:
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", size, (90, 80, 70)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def with_user_comment(fmt: str, text: str) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")
    out = io.BytesIO()
    Image.new("RGB", (48, 32), (1, 2, 3)).save(out, fmt, exif=exif.tobytes(), quality=90)
    return out.getvalue()


def library(svc) -> dict[str, str]:
    """A checkpoint, a LoRA (with an AutoV3) and an embedding in the library."""
    shas = {
        "ckpt": seed_model(
            svc, "dreamy_v1", type="checkpoints", path="/m/checkpoints/dreamy_v1.safetensors"
        ),
        "lora": seed_model(svc, "detail_tweaker", path="/m/loras/detail_tweaker.safetensors"),
        "ti": seed_model(
            svc, "easynegative", type="embeddings", path="/m/embeddings/easynegative.pt"
        ),
    }
    svc.db.models.update(shas["lora"], autov3="ABCDEF012345")
    return shas


async def inspect(client, data: bytes, content_type: str = "image/png"):
    return await client.post(
        "/api/images/inspect",
        data=data,
        headers={**same_origin_headers(client), "Content-Type": content_type},
    )


def by_role(resources: list[dict]) -> dict[str, dict]:
    return {r["role"]: r for r in resources}


async def test_an_a1111_image(client) -> None:
    svc = services_of(client)
    shas = library(svc)
    text = A1111_TEXT.format(ckpt10=shas["ckpt"][:10], lora12="abcdef012345", ti10=shas["ti"][:10])
    resp = await inspect(client, png_with({"parameters": text}))
    body = await resp.json()
    assert resp.status == 200, body
    params = body["parameters"]
    assert params["prompt"] == "masterpiece, <lora:detail_tweaker:0.6>, a castle"
    assert params["negative_prompt"] == "easynegative, lowres"
    assert (params["steps"], params["sampler"], params["cfg"], params["seed"]) == (
        28,
        "DPM++ 2M",
        6.5,
        4242,
    )
    assert (params["width"], params["height"]) == (512, 768)
    found = by_role(body["resources"])
    assert found["model"]["sha256"] == shas["ckpt"] and found["model"]["in_library"]
    assert found["model"]["model"] == {
        "sha256": shas["ckpt"],
        "name": "dreamy_v1",
        "type": "checkpoints",
        "path": "/m/checkpoints/dreamy_v1.safetensors",
    }
    assert found["lora"]["sha256"] == shas["lora"]  # by its AutoV3
    assert found["lora"]["weight"] == 0.6
    assert found["embedding"]["sha256"] == shas["ti"]  # by its AutoV2


async def test_civitai_hashes_in_webp_and_jpeg(client) -> None:
    svc = services_of(client)
    shas = library(svc)
    hashes = {
        "model": shas["ckpt"][:10].upper(),
        "lora:detail_tweaker": "ABCDEF012345",
        "lora:elsewhere": "0123456789",
    }
    text = (
        "a cat\nSteps: 20, Sampler: Euler, Seed: 7, Size: 48x32, "
        f"Hashes: {json.dumps(hashes)}, Version: ComfyUI"
    )
    for fmt, content_type in (("WEBP", "image/webp"), ("JPEG", "image/jpeg")):
        resp = await inspect(client, with_user_comment(fmt, text), content_type)
        body = await resp.json()
        assert resp.status == 200, body
        assert body["parameters"]["format"] == fmt.lower()
        names = {(r["role"], r["name"]): r for r in body["resources"]}
        assert [r["sha256"] for r in body["resources"] if r["role"] == "model"] == [shas["ckpt"]]
        assert names[("lora", "detail_tweaker")]["sha256"] == shas["lora"]
        missing = names[("lora", "elsewhere")]
        assert (missing["in_library"], missing["model"], missing["sha256"]) == (False, None, None)
        assert missing["hash"] == "0123456789"


async def test_a_comfyui_only_image(client) -> None:
    """No A1111 text: the executed prompt's loaders name files, matched by file name."""
    svc = services_of(client)
    shas = library(svc)
    prompt = {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "dreamy_v1.safetensors"},
        },
        "2": {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["1", 0],
                "clip": ["1", 1],
                "lora_name": "detail_tweaker.safetensors",
                "strength_model": 0.7,
                "strength_clip": 1.0,
            },
        },
        "3": {
            "class_type": "CLIPTextEncode",
            "inputs": {"clip": ["2", 1], "text": "a dog, embedding:easynegative"},
        },
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": "blurry"}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "6": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["2", 0],
                "positive": ["3", 0],
                "negative": ["4", 0],
                "latent_image": ["5", 0],
                "seed": 99,
                "steps": 3,
                "cfg": 5.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
            },
        },
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "x"}},
    }
    resp = await inspect(client, png_with({"prompt": json.dumps(prompt), "workflow": "{}"}))
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["parameters"]["seed"], body["parameters"]["steps"]) == (99, 3)
    assert body["parameters"]["prompt"] == "a dog, embedding:easynegative"
    found = by_role(body["resources"])
    assert found["model"]["sha256"] == shas["ckpt"]
    assert (found["lora"]["sha256"], found["lora"]["weight"]) == (shas["lora"], 0.7)
    assert found["embedding"]["sha256"] == shas["ti"]


async def test_multipart_works_too(client) -> None:
    form = FormData()
    form.add_field("image", png_with({"parameters": "x\nSteps: 1, Seed: 3"}), filename="a.png")
    resp = await client.post("/api/images/inspect", data=form, headers=same_origin_headers(client))
    body = await resp.json()
    assert resp.status == 200 and body["parameters"]["seed"] == 3 and body["resources"] == []


def bomb_png(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions (its data is tiny and wrong)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


async def test_anything_but_an_image_is_refused(client) -> None:
    good = png_with({"parameters": "x\nSteps: 1"})
    for bad in (b"", b"not an image at all", good[: len(good) // 2], bomb_png(60_000, 60_000)):
        await assert_error(await inspect(client, bad), 400)
    await assert_error(await inspect(client, b"\0" * (32 * 1024 * 1024 + 1)), 413)
    cross = await client.post(
        "/api/images/inspect",
        data=good,
        headers={"Origin": "http://evil.test", "Content-Type": "image/png"},
    )
    assert cross.status == 403
