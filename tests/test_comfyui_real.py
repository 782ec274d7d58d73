"""This repository as a custom node in a real ComfyUI, with real (tiny) models.

Needs ``COMFYUI_DIR`` (a ComfyUI checkout) and ``COMFYUI_PYTHON`` (a Python with its
requirements); without them every test here is skipped with one line. One ComfyUI serves
the whole module (``comfyui`` fixture, see ``tests/comfyui_harness.py``); each test that
loads models through our nodes works on copies of its own (new SHA-256s) and its own output
prefix, so the tests do not depend on one another.

The models are a tiny SD1.5-shaped checkpoint and a rank-4 LoRA built with ComfyUI's own
classes (``tests/comfyui_fixtures.py``). ``ModelSave`` writes the patched UNet; the checks
read it back with NumPy: LoRA layers = base + strength * alpha/rank * up @ down, the rest
bit-for-bit the base.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.comfyui_fixtures import (
    ModelFixtures,
    check_clip_lora_applied,
    check_lora_applied,
    check_same_unet,
)
from tests.comfyui_harness import (
    NODE_DIR_NAME,
    REPO,
    ComfyUI,
    cached_nodes,
    unique,
)
from tests.waiting import wait_until

HAS_PLUGIN = (REPO / "__init__.py").is_file()
HAS_NODES = (REPO / "hikaze_mm" / "comfy" / "nodes.py").is_file()
needs_plugin = pytest.mark.skipif(
    not HAS_PLUGIN, reason="waits for the repository's root __init__.py (the ComfyUI plugin)"
)
needs_nodes = pytest.mark.skipif(
    not (HAS_PLUGIN and HAS_NODES),
    reason="waits for hikaze_mm/comfy/nodes.py and the root __init__.py (the Hikaze nodes)",
)

HIKAZE_NODES = {
    "HikazeCheckpointLoader": ["MODEL", "CLIP", "VAE"],
    "HikazeLoraPowerLoader": ["MODEL", "CLIP", "STRING"],
    "HikazeDiffusionModelLoader": ["MODEL"],
    "HikazeVAELoader": ["VAE"],
}
# ComfyUI logs this each time it builds a diffusion model (comfy/model_base.py).
MODEL_BUILT = "model weight dtype"


# ---------------------------------------------------------------- helpers
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_save(model: list[Any], prefix: str) -> dict[str, Any]:
    return {"class_type": "ModelSave", "inputs": {"model": model, "filename_prefix": prefix}}


def ckpt_payload(item: dict[str, Any], path: Path | None = None) -> str:
    data: dict[str, Any] = {"sha256": item["sha256"], "name": item["name"]}
    if path is not None:
        data["ckpt_path"] = str(path)
    return json.dumps(data)


def lora_payload(item: dict[str, Any], path: Path, strength_model: float, strength_clip: float):
    entry = {
        "name": item["name"],
        "full_path": str(path),
        "strength_model": strength_model,
        "strength_clip": strength_clip,
        "sha256": item["sha256"],
        "enabled": True,
    }
    return json.dumps({"version": 2, "loras": [entry]})


def clip_save(clip: list[Any], prefix: str) -> dict[str, Any]:
    return {"class_type": "CLIPSave", "inputs": {"clip": clip, "filename_prefix": prefix}}


def hikaze_workflow(ckpt: str, loras: str, prefix: str) -> dict[str, Any]:
    """HikazeCheckpointLoader -> HikazeLoraPowerLoader -> ModelSave (node ids 1, 2, 3)."""
    return {
        "1": {"class_type": "HikazeCheckpointLoader", "inputs": {"hikaze_payload": ckpt}},
        "2": {
            "class_type": "HikazeLoraPowerLoader",
            "inputs": {"model": ["1", 0], "clip": ["1", 1], "hikaze_payload": loras},
        },
        "3": model_save(["2", 0], prefix),
    }


def saved_file(comfyui: ComfyUI, prefix: str) -> Path:
    files = comfyui.base.outputs(prefix)
    assert len(files) == 1, f"expected one file for {prefix}, found {files}\n{comfyui.log_tail()}"
    return files[0]


def own_models(comfyui: ComfyUI, models: ModelFixtures, label: str) -> dict[str, Any]:
    """Copies of the checkpoint (models/) and LoRA (extra/) with SHA-256s of their own,
    scanned into the library; their paths and library items."""
    tag = unique(label)
    ckpt = comfyui.base.place(models.checkpoint, "checkpoints", f"{tag}.safetensors", tag=tag)
    lora = comfyui.base.place(models.lora, "loras", f"{tag}_lora.safetensors", extra=True, tag=tag)
    comfyui.scan()
    ckpt_item = comfyui.wait_for_model(ckpt, rescan=True)
    lora_item = comfyui.wait_for_model(lora, rescan=True)
    assert ckpt_item["sha256"] == sha256_of(ckpt)
    assert lora_item["sha256"] == sha256_of(lora)
    return {"ckpt": ckpt, "lora": lora, "ckpt_item": ckpt_item, "lora_item": lora_item}


# ---------------------------------------------------------------- ComfyUI and the package
def _import_line(log: str) -> str | None:
    """The line of ComfyUI's "Import times for custom nodes" that names our folder."""
    pattern = re.compile(r"^.*seconds.*custom_nodes[/\\]" + re.escape(NODE_DIR_NAME) + r"\s*$")
    for line in log.splitlines():
        if pattern.match(line):
            return line
    return None


def test_comfyui_imports_our_custom_node_folder(comfyui: ComfyUI) -> None:
    """ComfyUI starts with the repository linked as custom_nodes/hikaze-model-manager and
    tries to import it (only it: every other custom node is disabled)."""
    log = comfyui.log_text()
    assert _import_line(log), f"ComfyUI never imported {NODE_DIR_NAME}\n{comfyui.log_tail()}"
    stats = comfyui.get("/system_stats").json()
    assert stats["system"]["comfyui_version"]


@needs_plugin
def test_our_package_loads_without_error(comfyui: ComfyUI) -> None:
    log = comfyui.log_text()
    line = _import_line(log)
    assert line and "IMPORT FAILED" not in line, f"{line}\n{comfyui.log_tail()}"
    assert f"Cannot import {comfyui.base.node_link}" not in log, comfyui.log_tail()
    assert "Hikaze Model Manager is unavailable" not in log, comfyui.log_tail()
    health = comfyui.api("GET", "/health")
    assert health.status == 200, f"{health}\n{comfyui.log_tail()}"
    assert health.json()["status"] == "ok"


@needs_plugin
def test_startup_scan_lists_models_of_the_base_and_the_extra_paths(comfyui: ComfyUI) -> None:
    """The start-up scan (immediate hashing) finds the checkpoint in models/ and the LoRA in
    the folder extra_model_paths.yaml names; their SHA-256 is the files' content hash."""
    placed = comfyui.placed
    assert placed is not None
    for path, kind in ((placed.checkpoint, "checkpoints"), (placed.lora, "loras")):
        item = comfyui.wait_for_model(path)
        assert item["sha256"] == sha256_of(path)
        assert item["type"] == kind


def test_stock_checkpoint_loader_runs_on_the_fixture(
    comfyui: ComfyUI, comfyui_models: ModelFixtures
) -> None:
    """CheckpointLoaderSimple -> ModelSave: the fixture loads as a checkpoint and the saved
    UNet is the fixture's, bit for bit."""
    prefix = "checkpoints/" + unique("stock")
    workflow = {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": comfyui.placed.checkpoint.name},
        },
        "2": model_save(["1", 0], prefix),
    }
    comfyui.run_prompt(workflow)
    check_same_unet(saved_file(comfyui, prefix), comfyui_models)


def test_stock_lora_loader_applies_the_fixture_lora(
    comfyui: ComfyUI, comfyui_models: ModelFixtures
) -> None:
    """ComfyUI's own LoraLoader, with the LoRA from the extra models folder: the checks the
    Hikaze tests rely on hold for ComfyUI's reference implementation."""
    prefix = "checkpoints/" + unique("stock_lora")
    clip_prefix = "clip/" + unique("stock_lora")
    workflow = {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": comfyui.placed.checkpoint.name},
        },
        "2": {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["1", 0],
                "clip": ["1", 1],
                "lora_name": comfyui.placed.lora.name,
                "strength_model": 0.8,
                "strength_clip": 0.5,
            },
        },
        "3": model_save(["2", 0], prefix),
        "4": clip_save(["2", 1], clip_prefix),
    }
    comfyui.run_prompt(workflow)
    check_lora_applied(saved_file(comfyui, prefix), comfyui_models, 0.8)
    check_clip_lora_applied(saved_file(comfyui, clip_prefix), comfyui_models, 0.5)
    assert "lora key not loaded" not in comfyui.log_text()


# ---------------------------------------------------------------- the Hikaze nodes
@needs_nodes
def test_hikaze_nodes_are_registered(comfyui: ComfyUI) -> None:
    info = comfyui.object_info()
    missing = sorted(set(HIKAZE_NODES) - set(info))
    assert not missing, f"not registered: {missing}\n{comfyui.log_tail()}"
    for name, outputs in HIKAZE_NODES.items():
        assert info[name]["output"] == outputs, name
        assert "hikaze_payload" in info[name]["input"]["required"], name


@needs_nodes
def test_checkpoint_and_lora_nodes_apply_the_lora(
    comfyui: ComfyUI, comfyui_models: ModelFixtures
) -> None:
    """Checkpoint -> LoRA (model 0.8, CLIP 0.5) -> ModelSave and CLIPSave: the LoRA's layers
    are base + strength * alpha/rank * up @ down, every other weight is unchanged."""
    m = own_models(comfyui, comfyui_models, "apply")
    prefix = "checkpoints/" + unique("hikaze")
    clip_prefix = "clip/" + unique("hikaze")
    workflow = hikaze_workflow(
        ckpt_payload(m["ckpt_item"], m["ckpt"]),
        lora_payload(m["lora_item"], m["lora"], 0.8, 0.5),
        prefix,
    )
    workflow["4"] = clip_save(["2", 1], clip_prefix)
    comfyui.run_prompt(workflow)
    check_lora_applied(saved_file(comfyui, prefix), comfyui_models, 0.8)
    check_clip_lora_applied(saved_file(comfyui, clip_prefix), comfyui_models, 0.5)


@needs_nodes
def test_moved_and_renamed_models_still_run(
    comfyui: ComfyUI, comfyui_models: ModelFixtures
) -> None:
    """Move and rename both files, rescan: the same workflow (old paths in its payloads)
    runs again, after ComfyUI's cache is dropped, from the new files."""
    m = own_models(comfyui, comfyui_models, "move")
    prefix = "checkpoints/" + unique("moved")
    workflow = hikaze_workflow(
        ckpt_payload(m["ckpt_item"], m["ckpt"]),
        lora_payload(m["lora_item"], m["lora"], 1.0, 1.0),
        prefix,
    )
    comfyui.run_prompt(workflow)
    check_lora_applied(saved_file(comfyui, prefix), comfyui_models, 1.0)

    new_ckpt = comfyui.base.models / "checkpoints" / "moved" / f"renamed_{m['ckpt'].name}"
    new_lora = comfyui.base.models / "loras" / "moved" / f"renamed_{m['lora'].name}"
    for old, new in ((m["ckpt"], new_ckpt), (m["lora"], new_lora)):
        new.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(old, new)
    comfyui.scan()
    for path, item in ((new_ckpt, m["ckpt_item"]), (new_lora, m["lora_item"])):
        moved = comfyui.wait_for_model(path, rescan=True)
        assert moved["sha256"] == item["sha256"]

    def run_afresh() -> dict[str, Any] | None:
        """Free ComfyUI's cache and run again; the entry if the loaders ran (a run queued
        before the worker applied /free still uses the old cache: then free again)."""
        comfyui.free()
        for old in comfyui.base.outputs(prefix):
            old.unlink()
        entry = comfyui.run_prompt(workflow)
        return None if {"1", "2"} & cached_nodes(entry) else entry

    wait_until(run_afresh, timeout=120, interval=0, message="a run whose loaders ran again")
    check_lora_applied(saved_file(comfyui, prefix), comfyui_models, 1.0)


@needs_nodes
def test_upstream_format_payloads_run(comfyui: ComfyUI, comfyui_models: ModelFixtures) -> None:
    """Workflows saved by the previous release: the checkpoint by ``ckpt_path`` alone, the
    LoRAs as a ``version: 2`` list with ``full_path`` and ``sha256``."""
    m = own_models(comfyui, comfyui_models, "upstream")
    prefix = "checkpoints/" + unique("upstream")
    workflow = hikaze_workflow(
        json.dumps({"ckpt_path": str(m["ckpt"])}),
        lora_payload(m["lora_item"], m["lora"], 0.6, 1.0),
        prefix,
    )
    comfyui.run_prompt(workflow)
    check_lora_applied(saved_file(comfyui, prefix), comfyui_models, 0.6)


@needs_nodes
def test_unknown_hash_is_refused_at_queue_time(comfyui: ComfyUI) -> None:
    sha = secrets.token_hex(32)
    name = unique("no_such_model") + ".safetensors"
    workflow = {
        "1": {
            "class_type": "HikazeCheckpointLoader",
            "inputs": {"hikaze_payload": json.dumps({"sha256": sha, "name": name})},
        },
        "2": model_save(["1", 0], "checkpoints/" + unique("never")),
    }
    result = comfyui.submit_prompt(workflow)
    assert result.status == 400, result
    body = result.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation", body
    errors = body["node_errors"]["1"]["errors"]
    assert errors[0]["type"] == "custom_validation_failed", body
    assert errors[0]["extra_info"]["input_name"] == "hikaze_payload", body
    assert sha[:10] in errors[0]["details"] and name in errors[0]["details"], body
    assert body["node_errors"]["1"]["class_type"] == "HikazeCheckpointLoader"


@needs_nodes
def test_unknown_lora_hash_is_refused_at_queue_time(
    comfyui: ComfyUI, comfyui_models: ModelFixtures
) -> None:
    m = own_models(comfyui, comfyui_models, "unknown_lora")
    sha = secrets.token_hex(32)
    fake = {"sha256": sha, "name": unique("no_such_lora") + ".safetensors"}
    workflow = hikaze_workflow(
        ckpt_payload(m["ckpt_item"], m["ckpt"]),
        lora_payload(fake, comfyui.base.extra / "loras" / fake["name"], 1.0, 1.0),
        "checkpoints/" + unique("never"),
    )
    result = comfyui.submit_prompt(workflow)
    assert result.status == 400, result
    errors = result.json()["node_errors"]["2"]["errors"]
    assert errors[0]["type"] == "custom_validation_failed"
    assert sha[:10] in errors[0]["details"], errors


@needs_nodes
def test_requeueing_loads_nothing_again(comfyui: ComfyUI, comfyui_models: ModelFixtures) -> None:
    """ComfyUI's cache: the same prompt again runs no node; with only the save prefix
    changed the loaders come from the cache (history's ``execution_cached``) and ComfyUI
    builds no model (its "model weight dtype" log line does not repeat)."""
    m = own_models(comfyui, comfyui_models, "requeue")
    prefix = "checkpoints/" + unique("requeue")
    ckpt = ckpt_payload(m["ckpt_item"], m["ckpt"])
    loras = lora_payload(m["lora_item"], m["lora"], 0.8, 0.5)
    before = comfyui.log_text().count(MODEL_BUILT)
    first = comfyui.run_prompt(hikaze_workflow(ckpt, loras, prefix))
    assert not {"1", "2"} & cached_nodes(first)
    built = comfyui.log_text().count(MODEL_BUILT)
    assert built == before + 1, "the first run should build the checkpoint's model once"

    again = comfyui.run_prompt(hikaze_workflow(ckpt, loras, prefix))
    assert cached_nodes(again) >= {"1", "2", "3"}
    assert len(comfyui.base.outputs(prefix)) == 1  # ModelSave did not run again

    other = "checkpoints/" + unique("requeue_other")
    third = comfyui.run_prompt(hikaze_workflow(ckpt, loras, other))
    assert cached_nodes(third) >= {"1", "2"} and "3" not in cached_nodes(third)
    check_lora_applied(saved_file(comfyui, other), comfyui_models, 0.8)
    assert comfyui.log_text().count(MODEL_BUILT) == built, "a model was loaded again"


@needs_nodes
def test_diffusion_model_and_vae_loaders_run(
    comfyui: ComfyUI, comfyui_models: ModelFixtures
) -> None:
    """The UNet alone (models/diffusion_models) saves as the fixture UNet; the TAESD alone
    (extra/vae) decodes an empty latent into an image."""
    placed = comfyui.placed
    unet_item = comfyui.wait_for_model(placed.unet, rescan=True)
    vae_item = comfyui.wait_for_model(placed.vae, rescan=True)
    prefix = "checkpoints/" + unique("unet")
    image_prefix = unique("taesd")
    workflow = {
        "1": {
            "class_type": "HikazeDiffusionModelLoader",
            "inputs": {"hikaze_payload": ckpt_payload(unet_item), "weight_dtype": "default"},
        },
        "2": model_save(["1", 0], prefix),
        "3": {
            "class_type": "HikazeVAELoader",
            "inputs": {"hikaze_payload": ckpt_payload(vae_item)},
        },
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["3", 0]}},
        "6": {
            "class_type": "SaveImage",
            "inputs": {"images": ["5", 0], "filename_prefix": image_prefix},
        },
    }
    entry = comfyui.run_prompt(workflow)
    check_same_unet(saved_file(comfyui, prefix), comfyui_models)
    images = entry["outputs"]["6"]["images"]
    assert len(images) == 1 and (comfyui.base.output / images[0]["filename"]).is_file()
