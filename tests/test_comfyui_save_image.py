"""``HikazeSaveImage`` in a real ComfyUI (``tests/comfyui_harness.py``: ``COMFYUI_DIR`` and
``COMFYUI_PYTHON`` must be set, else skipped with one line).

One workflow: our checkpoint loader, our LoRA loader (one LoRA), ComfyUI's ``LoraLoader``
(a second LoRA), an ``embedding:`` in the prompt, ``KSampler``, ``VAEDecode`` and
``HikazeSaveImage``, saved as PNG, WebP and JPEG. Each file is read with Pillow the way
Civitai reads it (PNG ``parameters`` chunk, EXIF ``UserComment``) and parsed with Civitai's
rules (``tests/civitai_infotext.py``): the AutoV2 hash of all four models under Civitai's
keys, seed, steps, size, and ``Civitai resources`` for the checkpoint, which has Civitai
ids in the library. A PNG keeps ComfyUI's ``prompt`` and ``workflow``; the UI result lists
the images as ``SaveImage``'s does; each model gets one generation per file, whose image
the library serves from ComfyUI's output folder. ``POST /hikaze/api/images/inspect`` finds
the four models again in what the node saved, and in what ComfyUI's own SaveImage saved.
"""

from __future__ import annotations

import io
import json
import struct
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.civitai_infotext import civitai_parse
from tests.comfyui_fixtures import ModelFixtures
from tests.comfyui_harness import ComfyUI, unique
from tests.test_comfyui_real import ckpt_payload, lora_payload, sha256_of

EMBEDDING_WIDTH = 768  # CLIP-L's token width (the tiny fixture CLIP keeps it)
CIVITAI = {"model_id": 4201, "version_id": 130072, "model_name": "Tiny", "version_name": "v1"}
SEEDS = {"png": 2**64 - 2, "webp": 1234567, "jpeg": 42}
WORKFLOW_CHUNK = {"last_node_id": 9, "nodes": [], "links": [], "version": 0.4}
USER_COMMENT = 0x9286
EXIF_IFD = 0x8769


def write_embedding(path: Path, seed: int) -> Path:
    """A two-vector textual inversion (``emb_params``, F32) as a .safetensors file."""
    values = [((seed * 7919 + n) % 1000) / 1e5 for n in range(2 * EMBEDDING_WIDTH)]
    header = {
        "emb_params": {
            "dtype": "F32",
            "shape": [2, EMBEDDING_WIDTH],
            "data_offsets": [0, 4 * len(values)],
        },
        "__metadata__": {"hikaze_test": str(seed)},
    }
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + struct.pack(f"<{len(values)}f", *values))
    return path


def autov2(sha: str) -> str:
    return sha[:10].upper()


@pytest.fixture(scope="module")
def credited(comfyui: ComfyUI, comfyui_models: ModelFixtures) -> dict[str, Any]:
    """Four models of this module's own, in the library; the checkpoint with Civitai ids."""
    tag = unique("credit")
    base = comfyui.base
    files = {
        "ckpt": base.place(comfyui_models.checkpoint, "checkpoints", f"{tag}.safetensors", tag=tag),
        "hikaze_lora": base.place(
            comfyui_models.lora, "loras", f"{tag}_hk.safetensors", extra=True, tag=tag + "1"
        ),
        "core_lora": base.place(
            comfyui_models.lora, "loras", f"{tag}_core.safetensors", tag=tag + "2"
        ),
        "embedding": write_embedding(
            base.models / "embeddings" / "sub" / f"{tag}_emb.safetensors", len(tag)
        ),
    }
    comfyui.scan()
    items = {key: comfyui.wait_for_model(path, rescan=True) for key, path in files.items()}
    for key, path in files.items():
        assert items[key]["sha256"] == sha256_of(path), key
    patch = comfyui.api(
        "PATCH", f"/models/{items['ckpt']['sha256']}", {"meta_json": {"civitai": CIVITAI}}
    )
    assert patch.status == 200, patch
    return {"tag": tag, "files": files, "items": items}


def workflow(credited: dict[str, Any], fmt: str, prefix: str) -> dict[str, Any]:
    files, items, tag = credited["files"], credited["items"], credited["tag"]
    node = lambda class_type, **inputs: {"class_type": class_type, "inputs": inputs}  # noqa: E731
    return {
        "1": node("HikazeCheckpointLoader", hikaze_payload=ckpt_payload(items["ckpt"])),
        "2": node(
            "HikazeLoraPowerLoader",
            model=["1", 0],
            clip=["1", 1],
            hikaze_payload=lora_payload(items["hikaze_lora"], files["hikaze_lora"], 0.8, 1.0),
        ),
        "3": node(
            "LoraLoader",
            model=["2", 0],
            clip=["2", 1],
            lora_name=files["core_lora"].name,
            strength_model=0.6,
            strength_clip=1.0,
        ),
        "4": node("CLIPTextEncode", clip=["3", 1], text=f"a lighthouse, embedding:sub/{tag}_emb"),
        "5": node("CLIPTextEncode", clip=["3", 1], text="blurry"),
        "6": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "7": node(
            "KSampler",
            model=["3", 0],
            positive=["4", 0],
            negative=["5", 0],
            latent_image=["6", 0],
            seed=SEEDS[fmt],
            steps=2,
            cfg=6.5,
            sampler_name="dpmpp_2m",
            scheduler="karras",
            denoise=1.0,
        ),
        "8": node("VAEDecode", samples=["7", 0], vae=["1", 2]),
        "9": node(
            "HikazeSaveImage", images=["8", 0], filename_prefix=prefix, format=fmt, quality=90
        ),
    }


def run_with_workflow_chunk(comfyui: ComfyUI, prompt: dict[str, Any]) -> dict[str, Any]:
    """Queue as the frontend does (the workflow in ``extra_pnginfo``); the history entry."""
    body = {
        "prompt": prompt,
        "client_id": comfyui.client_id,
        "extra_data": {"extra_pnginfo": {"workflow": WORKFLOW_CHUNK}},
    }
    result = comfyui.post("/prompt", body)
    assert result.status == 200, f"{result}\n{comfyui.log_tail()}"
    entry = comfyui.wait_for(result.json()["prompt_id"])
    assert entry["status"]["status_str"] == "success", f"{entry['status']}\n{comfyui.log_tail()}"
    return entry


def infotext_of(data: bytes, fmt: str) -> tuple[str, Image.Image]:
    """The A1111 text where Civitai looks: PNG ``parameters``, else EXIF UserComment."""
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}[fmt]
    if fmt == "png":
        return image.text["parameters"], image
    comment = image.getexif().get_ifd(EXIF_IFD)[USER_COMMENT]
    assert comment[:8] == b"UNICODE\0", comment[:16]
    return comment[8:].decode("utf-16-be"), image


def newest_generation(comfyui: ComfyUI, sha: str) -> tuple[int, dict[str, Any]]:
    result = comfyui.api("GET", f"/models/{sha}/generations?limit=5")
    assert result.status == 200, result
    body = result.json()
    return body["total"], body["items"][0] if body["items"] else {}


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
def test_saved_images_credit_their_four_models(
    comfyui: ComfyUI, credited: dict[str, Any], fmt: str
) -> None:
    items, tag = credited["items"], credited["tag"]
    shas = {key: item["sha256"] for key, item in items.items()}
    before = {key: newest_generation(comfyui, sha)[0] for key, sha in shas.items()}
    prefix = "credits/" + unique(f"save_{fmt}")
    prompt = workflow(credited, fmt, prefix)
    entry = run_with_workflow_chunk(comfyui, prompt)

    (shown,) = entry["outputs"]["9"]["images"]
    extension = {"png": "png", "webp": "webp", "jpeg": "jpg"}[fmt]
    assert shown["filename"] == f"{Path(prefix).name}_00001_.{extension}"
    assert (shown["subfolder"], shown["type"]) == ("credits", "output")
    saved = comfyui.base.output / shown["subfolder"] / shown["filename"]
    text, image = infotext_of(saved.read_bytes(), fmt)
    assert image.size == (64, 64)

    parsed = civitai_parse(text)
    assert parsed["hashes"] == {
        "model": autov2(shas["ckpt"]),
        f"lora:{tag}_hk": autov2(shas["hikaze_lora"]),
        f"lora:{tag}_core": autov2(shas["core_lora"]),
        f"embed:{tag}_emb": autov2(shas["embedding"]),
    }
    assert parsed["seed"] == SEEDS[fmt]
    assert (parsed["steps"], parsed["size"]) == (2, "64x64")
    assert parsed["prompt"] == f"a lighthouse, embedding:sub/{tag}_emb"
    assert parsed["negative_prompt"] == "blurry"
    details = parsed["details"]
    assert (details["Sampler"], details["Schedule type"], details["CFG scale"]) == (
        "DPM++ 2M",
        "Karras",
        "6.5",
    )
    (resource,) = parsed["civitai_resources"]
    assert resource["type"] == "checkpoint"
    assert resource["modelVersionId"] == CIVITAI["version_id"]
    if fmt == "png":
        kept = json.loads(image.text["prompt"])  # ComfyUI adds its own keys (is_changed)
        assert {k: (n["class_type"], n["inputs"]) for k, n in kept.items()} == {
            k: (n["class_type"], n["inputs"]) for k, n in prompt.items()
        }
        assert json.loads(image.text["workflow"]) == WORKFLOW_CHUNK

    for key, sha in shas.items():
        total, newest = newest_generation(comfyui, sha)
        assert total == before[key] + 1, key
        assert int(newest["seed"]) == SEEDS[fmt] and newest["steps"] == 2, key
        assert (newest["width"], newest["height"], newest["missing"]) == (64, 64, False), key
        served = comfyui.get("/hikaze/" + newest["image_url"])
        assert served.status == 200 and served.body == saved.read_bytes(), key
        roles = {(r["sha256"], r["role"]) for r in newest["resources"]}
        assert roles == {
            (shas["ckpt"], "model"),
            (shas["hikaze_lora"], "lora"),
            (shas["core_lora"], "lora"),
            (shas["embedding"], "embedding"),
        }


def inspect(comfyui: ComfyUI, data: bytes, content_type: str) -> dict[str, Any]:
    """POST /hikaze/api/images/inspect with the image's bytes."""
    request = urllib.request.Request(
        f"{comfyui.url}/hikaze/api/images/inspect", data=data, method="POST"
    )
    request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def found_models(answer: dict[str, Any]) -> set[tuple[str, str]]:
    assert all(r["in_library"] for r in answer["resources"]), answer["resources"]
    return {(r["role"], r["sha256"]) for r in answer["resources"]}


def four_models(shas: dict[str, str]) -> set[tuple[str, str]]:
    return {
        ("model", shas["ckpt"]),
        ("lora", shas["hikaze_lora"]),
        ("lora", shas["core_lora"]),
        ("embedding", shas["embedding"]),
    }


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_inspect_reads_what_the_node_saved(
    comfyui: ComfyUI, credited: dict[str, Any], fmt: str
) -> None:
    shas = {key: item["sha256"] for key, item in credited["items"].items()}
    entry = run_with_workflow_chunk(comfyui, workflow(credited, fmt, unique(f"inspect_{fmt}")))
    (shown,) = entry["outputs"]["9"]["images"]
    saved = comfyui.base.output / shown["subfolder"] / shown["filename"]
    answer = inspect(comfyui, saved.read_bytes(), f"image/{fmt}")
    assert found_models(answer) == four_models(shas)
    assert (answer["parameters"]["seed"], answer["parameters"]["steps"]) == (SEEDS[fmt], 2)
    weights = {r["sha256"]: r["weight"] for r in answer["resources"]}
    assert weights[shas["core_lora"]] == 0.6


def test_inspect_reads_an_image_comfyui_saved_alone(
    comfyui: ComfyUI, credited: dict[str, Any]
) -> None:
    """ComfyUI's own SaveImage writes no A1111 text: the models come from its prompt
    chunk (ours by hash, ComfyUI's LoRA and the embedding by file name)."""
    shas = {key: item["sha256"] for key, item in credited["items"].items()}
    prompt = workflow(credited, "png", "x")
    prompt["9"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["8", 0], "filename_prefix": unique("core_save")},
    }
    entry = run_with_workflow_chunk(comfyui, prompt)
    (shown,) = entry["outputs"]["9"]["images"]
    saved = comfyui.base.output / shown["subfolder"] / shown["filename"]
    answer = inspect(comfyui, saved.read_bytes(), "image/png")
    assert found_models(answer) == four_models(shas)
    assert answer["parameters"]["seed"] == SEEDS["png"]
    assert answer["parameters"]["prompt"].startswith("a lighthouse")


def test_the_node_offers_save_images_inputs_and_more(comfyui: ComfyUI) -> None:
    info = comfyui.object_info()
    ours, stock = info["HikazeSaveImage"], info["SaveImage"]
    required = ours["input"]["required"]
    for name in stock["input"]["required"]:
        assert required[name][0] == stock["input"]["required"][name][0], name
    assert required["format"][0] == ["png", "webp", "jpeg"]
    assert required["quality"][0] == "INT"
    assert (required["quality"][1]["min"], required["quality"][1]["max"]) == (1, 100)
    assert set(ours["input"]["hidden"]) == {"prompt", "extra_pnginfo", "unique_id"}
    assert ours["output_node"] is True and ours["output"] == []
