"""The save node's credits without ComfyUI: an executed prompt's models resolved through a
real library bound as the plugin binds it (``plugin._bind``; ``folder_paths`` stands in
for ComfyUI's over plain folders), a model the library does not know left out with one
log line and never hashed, and the generation recorded for each credited model."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hikaze_mm.comfy import plugin
from hikaze_mm.comfy.context import CONTEXT, Context
from hikaze_mm.comfy.save_image import credits_for
from hikaze_mm.services import Services
from tests.helpers import write_model

CIVITAI = {"model_id": 7, "version_id": 70, "model_name": "Dream", "version_name": "v7"}


def folder_paths_over(root: Path) -> SimpleNamespace:
    """ComfyUI's ``get_full_path`` / ``get_filename_list`` over ``root/<folder>/``."""

    def full_path(folder: str, name: str) -> str | None:
        path = root / folder / name
        return str(path) if path.is_file() else None

    def names(folder: str) -> list[str]:
        base = root / folder
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    return SimpleNamespace(get_full_path=full_path, get_filename_list=names)


@pytest.fixture
def bound(services: Services, models_root: Path) -> Iterator[SimpleNamespace]:
    files = {
        "ckpt": models_root / "checkpoints" / "dream_v7.safetensors",
        "lora": models_root / "loras" / "detail.safetensors",
        "embedding": models_root / "embeddings" / "sub" / "easyneg.safetensors",
    }
    shas = {}
    for n, (key, path) in enumerate(files.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        shas[key] = write_model(path, 2048 + n, seed=n + 1)
    services.scanner.scan(immediate_hashing=True)
    services.db.models.update(shas["ckpt"], meta={"civitai": CIVITAI})
    stranger = models_root / "loras" / "stranger.safetensors"  # after the scan: unknown
    write_model(stranger, 1000, seed=9)
    plugin._bind(services, folder_paths_over(models_root), writes=True)
    try:
        yield SimpleNamespace(services=services, shas=shas, stranger=stranger)
    finally:
        for item in dataclasses.fields(Context):
            setattr(CONTEXT, item.name, item.default)


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def executed_prompt(lora_sha: str) -> dict[str, Any]:
    loras = {
        "version": 2,
        "loras": [{"name": "Detail!", "sha256": lora_sha, "strength_model": 0.8}],
    }
    return {
        "1": node("CheckpointLoaderSimple", ckpt_name="dream_v7.safetensors"),
        "2": node(
            "HikazeLoraPowerLoader", model=["1", 0], clip=["1", 1], hikaze_payload=json.dumps(loras)
        ),
        "3": node(
            "LoraLoader",
            model=["2", 0],
            clip=["2", 1],
            lora_name="stranger.safetensors",
            strength_model=0.5,
            strength_clip=0.5,
        ),
        "4": node("CLIPTextEncode", clip=["3", 1], text="a cat"),
        "5": node("CLIPTextEncode", clip=["3", 1], text="(embedding:sub/easyneg:1.1), ugly"),
        "6": node(
            "KSampler",
            model=["3", 0],
            positive=["4", 0],
            negative=["5", 0],
            latent_image=["7", 0],
            seed=99,
            steps=3,
            cfg=5.5,
            sampler_name="dpmpp_2m",
            scheduler="karras",
        ),
        "7": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "8": node("VAEDecode", samples=["6", 0], vae=["1", 2]),
        "9": node("HikazeSaveImage", images=["8", 0], filename_prefix="x"),
    }


def test_credits_from_the_library_and_one_line_for_a_stranger(
    bound: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    shas = bound.shas
    with caplog.at_level(logging.INFO, logger="hikaze_mm.comfy"):
        params, resources = credits_for(executed_prompt(shas["lora"]), "9")
    assert (params.prompt, params.negative_prompt) == ("a cat", "(embedding:sub/easyneg:1.1), ugly")
    assert (params.seed, params.steps, params.cfg) == (99, 3, 5.5)
    assert (params.sampler, params.schedule_type) == ("DPM++ 2M", "Karras")
    got = [(r.role, r.name, r.sha256, r.weight, r.civitai) for r in resources]
    assert got == [
        ("lora", "detail", shas["lora"], 0.8, None),
        ("model", "dream_v7", shas["ckpt"], None, CIVITAI),
        ("embedding", "easyneg", shas["embedding"], 1.1, None),
    ]
    lines = [r.getMessage() for r in caplog.records if "stranger" in r.getMessage()]
    assert len(lines) == 1 and "not in the library" in lines[0]
    # The stranger was not hashed to find out: the hash cache has nothing for it.
    assert bound.services.db.hash_cache.rows([str(bound.stranger)]) == {}


def test_each_credited_model_gets_the_generation(bound: SimpleNamespace) -> None:
    params, resources = credits_for(executed_prompt(bound.shas["lora"]), "9")
    params = dataclasses.replace(params, width=64, height=48)
    assert CONTEXT.record_generation is not None
    CONTEXT.record_generation("day/x_00001_.png", params, resources, {"format": "png"})
    generations = bound.services.generations
    for sha in bound.shas.values():
        page = generations.for_model(sha)
        assert page["total"] == 1
        (item,) = page["items"]
        assert (item["seed"], item["steps"], item["width"], item["height"]) == (99, 3, 64, 48)
        assert item["sampler"] == "DPM++ 2M" and item["prompt"] == "a cat"
        roles = sorted((r["role"], r["sha256"], r["weight"]) for r in item["resources"])
        assert roles == sorted(
            [
                ("model", bound.shas["ckpt"], None),
                ("lora", bound.shas["lora"], 0.8),
                ("embedding", bound.shas["embedding"], 1.1),
            ]
        )


def test_no_recording_when_off_or_read_only(services: Services) -> None:
    assert plugin.generation_recorder(services, writes=False) is None
    off = SimpleNamespace(config=dataclasses.replace(services.config, record_generations=False))
    assert plugin.generation_recorder(off, writes=True) is None
    assert plugin.generation_recorder(services, writes=True) is not None
