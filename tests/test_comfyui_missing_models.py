"""A workflow that needs two models the library lacks, in a real ComfyUI
(``tests/comfyui_harness.py``: ``COMFYUI_DIR`` and ``COMFYUI_PYTHON`` must be set, else
skipped with one line): ``/hikaze/api/workflows/missing`` lists them, ``fetch-missing``
downloads them from a storage stand-in on 127.0.0.1 (verified by the hashes the workflow's
``models`` list gives) under the names its core loaders use, and the workflow then runs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tests.comfyui_fixtures import ModelFixtures, copy_with_metadata
from tests.comfyui_harness import ComfyUI, unique
from tests.storage_fake import FakeStorage
from tests.waiting import wait_until


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ui_workflow(names: dict[str, str], files: dict[str, Path], urls: dict[str, str]) -> dict:
    """The UI shape, as ComfyUI saves it: the two loaders and the workflow's models list."""
    return {
        "nodes": [
            {"id": 1, "type": "CheckpointLoaderSimple", "widgets_values": [names["ckpt"]]},
            {"id": 2, "type": "LoraLoader", "widgets_values": [names["lora"], 0.8, 1.0]},
        ],
        "models": [
            {
                "name": names[key],
                "url": urls[key],
                "hash": sha256_file(files[key]),
                "hash_type": "SHA256",
                "directory": folder,
            }
            for key, folder in (("ckpt", "checkpoints"), ("lora", "loras"))
        ],
    }


def api_prompt(names: dict[str, str], prefix: str) -> dict[str, Any]:
    node = lambda class_type, **inputs: {"class_type": class_type, "inputs": inputs}  # noqa: E731
    return {
        "1": node("CheckpointLoaderSimple", ckpt_name=names["ckpt"]),
        "2": node(
            "LoraLoader",
            model=["1", 0],
            clip=["1", 1],
            lora_name=names["lora"],
            strength_model=0.8,
            strength_clip=1.0,
        ),
        "3": node("CLIPTextEncode", clip=["2", 1], text="a lighthouse"),
        "4": node("CLIPTextEncode", clip=["2", 1], text="blurry"),
        "5": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "6": node(
            "KSampler",
            model=["2", 0],
            positive=["3", 0],
            negative=["4", 0],
            latent_image=["5", 0],
            seed=7,
            steps=1,
            cfg=5.0,
            sampler_name="euler",
            scheduler="normal",
            denoise=1.0,
        ),
        "7": node("VAEDecode", samples=["6", 0], vae=["1", 2]),
        "8": node("SaveImage", images=["7", 0], filename_prefix=prefix),
    }


def test_two_missing_models_are_fetched_then_the_workflow_runs(
    comfyui: ComfyUI, comfyui_models: ModelFixtures, storage: FakeStorage
) -> None:
    tag = unique("fetch")
    store = storage.folder
    files = {
        "ckpt": copy_with_metadata(comfyui_models.checkpoint, store / "c.safetensors", {"t": tag}),
        "lora": copy_with_metadata(comfyui_models.lora, store / "l.safetensors", {"t": tag}),
    }
    names = {"ckpt": f"{tag}.safetensors", "lora": f"fetched/{tag}_lora.safetensors"}
    urls = {key: storage.file_url(path.name) for key, path in files.items()}
    workflow = ui_workflow(names, files, urls)
    listed = comfyui.api("POST", "/workflows/missing?lookup=false", workflow)
    assert listed.status == 200, listed
    missing = [r["name"] for r in listed.json()["resources"] if not r["in_library"]]
    assert sorted(missing) == sorted(names.values())

    fetched = comfyui.api("POST", "/workflows/fetch-missing", workflow)
    assert fetched.status == 202, fetched
    downloads = fetched.json()["downloads"]
    assert len(downloads) == 2 and fetched.json()["without_source"] == []
    for queued in downloads:
        ended = wait_until(
            lambda q=queued: comfyui.api("GET", f"/downloads/{q['id']}").json(),
            lambda view: view["status"] in ("done", "failed"),
            timeout=120,
        )
        assert ended["status"] == "done", ended

    for key, path in files.items():
        model = comfyui.api("GET", f"/models/{sha256_file(path)}")
        assert model.status == 200, (key, model)
    entry = comfyui.run_prompt(api_prompt(names, unique("fetched_run")))
    (image,) = entry["outputs"]["8"]["images"]
    assert image["type"] == "output"
