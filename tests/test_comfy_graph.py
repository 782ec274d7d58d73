"""The walk of ComfyUI's executed prompt back from a save node (hikaze_mm.workflow.graph):
the sampler's values, the models on its model chain, the prompts and their embeddings,
LoRAs applied to CLIP only, and graphs that are broken or hostile. No ComfyUI needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hikaze_mm.workflow.graph import LoaderUse, walk_generation
from hikaze_mm.workflow.payload import ModelRef

SHA_CKPT = "a1" * 32
SHA_LORA = "b2" * 32


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def hikaze_lora_payload(*entries: tuple[str, float, float, bool]) -> str:
    loras = [
        {"name": name, "sha256": SHA_LORA, "strength_model": sm, "strength_clip": sc, "enabled": on}
        for name, sm, sc, on in entries
    ]
    return json.dumps({"version": 2, "loras": loras})


def ksampler_prompt() -> dict[str, Any]:
    """Checkpoint -> LoraLoader -> Hikaze LoRA loader -> KSampler, CLIP through
    CLIPSetLastLayer, a hi-res-free decode, an upscale and the save node "9"."""
    return {
        "1": node("CheckpointLoaderSimple", ckpt_name="sd15/dream.safetensors"),
        "2": node(
            "LoraLoader",
            model=["1", 0],
            clip=["1", 1],
            lora_name="styles/ink.safetensors",
            strength_model=0.7,
            strength_clip=1.0,
        ),
        "3": node(
            "HikazeLoraPowerLoader",
            model=["2", 0],
            clip=["2", 1],
            hikaze_payload=hikaze_lora_payload(
                ("detail", 0.8, 0.5, True), ("off", 1.0, 1.0, False), ("zero", 0.0, 0.0, True)
            ),
        ),
        "4": node("CLIPSetLastLayer", clip=["3", 1], stop_at_clip_layer=-2),
        "5": node("CLIPTextEncode", clip=["4", 0], text="a cat, embedding:sub/good_style.pt"),
        "6": node("CLIPTextEncode", clip=["4", 0], text="blurry, (embedding:easyneg:1.2), ugly"),
        "7": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "8": node(
            "KSampler",
            model=["3", 0],
            positive=["5", 0],
            negative=["6", 0],
            latent_image=["7", 0],
            seed=2**64 - 1,
            steps=20,
            cfg=6.5,
            sampler_name="dpmpp_2m",
            scheduler="karras",
            denoise=1.0,
        ),
        "10": node("VAEDecode", samples=["8", 0], vae=["1", 2]),
        "11": node("ImageScaleBy", image=["10", 0], upscale_method="lanczos", scale_by=2.0),
        "9": node("HikazeSaveImage", images=["11", 0], filename_prefix="x"),
    }


def test_a_ksampler_workflow_gives_values_models_prompts_and_embeddings() -> None:
    found = walk_generation(ksampler_prompt(), "9")
    assert found.sampler_node == "8"
    assert (found.seed, found.steps, found.cfg) == (2**64 - 1, 20, 6.5)
    assert (found.sampler_name, found.scheduler) == ("dpmpp_2m", "karras")
    assert found.prompt == "a cat, embedding:sub/good_style.pt"
    assert found.negative_prompt == "blurry, (embedding:easyneg:1.2), ugly"
    detail = ModelRef(SHA_LORA, "detail", None)
    assert found.uses == [
        LoaderUse("lora", "loras", "detail", detail, 0.8, "3"),
        LoaderUse("lora", "loras", "styles/ink.safetensors", None, 0.7, "2"),
        LoaderUse("model", "checkpoints", "sd15/dream.safetensors", None, None, "1"),
        LoaderUse("embedding", "embeddings", "sub/good_style.pt", None, None),
        LoaderUse("embedding", "embeddings", "easyneg", None, 1.2),
    ]


def test_a_payload_from_a_primitive_node() -> None:
    prompt = ksampler_prompt()
    want = walk_generation(prompt, "9").uses
    prompt["20"] = node("PrimitiveString", value=prompt["3"]["inputs"]["hikaze_payload"])
    prompt["3"]["inputs"]["hikaze_payload"] = ["20", 0]
    got = walk_generation(prompt, "9").uses
    assert got == want and got[0].ref == ModelRef(SHA_LORA, "detail", None)


def test_the_nearest_sampler_wins_in_a_hires_fix() -> None:
    prompt = ksampler_prompt()
    prompt["12"] = node("LatentUpscaleBy", samples=["8", 0], upscale_method="nearest-exact")
    prompt["13"] = node(
        "KSampler",
        model=["3", 0],
        positive=["5", 0],
        negative=["6", 0],
        latent_image=["12", 0],
        seed=7,
        steps=4,
        cfg=3,
        sampler_name="euler",
        scheduler="normal",
    )
    prompt["10"]["inputs"]["samples"] = ["13", 0]
    found = walk_generation(prompt, "9")
    assert (found.sampler_node, found.seed, found.steps, found.cfg) == ("13", 7, 4, 3.0)
    assert found.sampler_name == "euler"


def custom_advanced_prompt() -> dict[str, Any]:
    """UNETLoader -> ModelSamplingDiscrete -> LoraLoaderModelOnly -> CFGGuider, with
    RandomNoise (seed from a primitive node), KSamplerSelect, BasicScheduler through
    SplitSigmas, a Hikaze checkpoint loader feeding only CLIP, and a LoRA on CLIP only."""
    ckpt = json.dumps({"sha256": SHA_CKPT, "name": "Base CLIP"})
    return {
        "1": node("UNETLoader", unet_name="flux/dev.safetensors", weight_dtype="default"),
        "2": node("ModelSamplingDiscrete", model=["1", 0], sampling="eps", zsnr=False),
        "3": node(
            "LoraLoaderModelOnly", model=["2", 0], lora_name="m.safetensors", strength_model=0.9
        ),
        "4": node("HikazeCheckpointLoader", hikaze_payload=ckpt),
        "5": node(
            "LoraLoader",
            model=["4", 0],
            clip=["4", 1],
            lora_name="clip_only.safetensors",
            strength_model=0.0,
            strength_clip=0.6,
        ),
        "6": node("CLIPTextEncode", clip=["5", 1], text=["20", 0]),
        "7": node("CLIPTextEncode", clip=["4", 1], text="bad"),
        "8": node("CFGGuider", model=["3", 0], positive=["6", 0], negative=["7", 0], cfg=4.5),
        "9": node("RandomNoise", noise_seed=["21", 0]),
        "10": node("KSamplerSelect", sampler_name="euler_ancestral"),
        "11": node("BasicScheduler", model=["3", 0], scheduler="simple", steps=12, denoise=1.0),
        "12": node("SplitSigmas", sigmas=["11", 0], step=6),
        "13": node("EmptySD3LatentImage", width=64, height=64, batch_size=1),
        "14": node(
            "SamplerCustomAdvanced",
            noise=["9", 0],
            guider=["8", 0],
            sampler=["10", 0],
            sigmas=["12", 1],
            latent_image=["13", 0],
        ),
        "15": node("VAEDecodeTiled", samples=["14", 0], vae=["4", 2], tile_size=512),
        "16": node("HikazeSaveImage", images=["15", 0]),
        "20": node("PrimitiveStringMultiline", value="a lighthouse"),
        "21": node("PrimitiveInt", value=123456789),
    }


def test_sampler_custom_advanced_through_its_helper_nodes() -> None:
    found = walk_generation(custom_advanced_prompt(), "16")
    assert found.sampler_node == "14"
    assert (found.seed, found.steps, found.cfg) == (123456789, 12, 4.5)
    assert (found.sampler_name, found.scheduler) == ("euler_ancestral", "simple")
    assert (found.prompt, found.negative_prompt) == ("a lighthouse", "bad")
    assert found.uses == [
        LoaderUse("lora", "loras", "m.safetensors", None, 0.9, "3"),
        LoaderUse("model", "diffusion_models", "flux/dev.safetensors", None, None, "1"),
        LoaderUse("lora", "loras", "clip_only.safetensors", None, 0.6, "5"),
    ]


def test_sampler_custom_with_a_karras_scheduler_and_a_basic_guider_graph() -> None:
    prompt = custom_advanced_prompt()
    prompt["11"] = node("KarrasScheduler", steps=9, sigma_max=14.6, sigma_min=0.03, rho=7)
    prompt["14"] = node(
        "SamplerCustom",
        model=["3", 0],
        add_noise=True,
        noise_seed=5,
        cfg=2,
        positive=["6", 0],
        negative=["7", 0],
        sampler=["10", 0],
        sigmas=["11", 0],
        latent_image=["13", 0],
    )
    found = walk_generation(prompt, "16")
    assert (found.seed, found.steps, found.cfg) == (5, 9, 2.0)
    assert (found.sampler_name, found.scheduler) == ("euler_ancestral", "karras")
    prompt = custom_advanced_prompt()
    prompt["8"] = node("BasicGuider", model=["3", 0], conditioning=["6", 0])
    found = walk_generation(prompt, "16")
    assert (found.prompt, found.negative_prompt, found.cfg) == ("a lighthouse", "", None)


def test_conditioning_through_combine_area_and_controlnet_outputs() -> None:
    prompt = ksampler_prompt()
    prompt["20"] = node("CLIPTextEncode", clip=["4", 0], text="a hat")
    prompt["21"] = node("ConditioningSetArea", conditioning=["20", 0], width=64, height=64)
    prompt["22"] = node("ConditioningCombine", conditioning_1=["5", 0], conditioning_2=["21", 0])
    prompt["23"] = node("LoadImage", image="hint.png")
    prompt["24"] = node("ControlNetLoader", control_net_name="cn.safetensors")
    prompt["25"] = node(
        "ControlNetApplyAdvanced",
        positive=["22", 0],
        negative=["6", 0],
        control_net=["24", 0],
        image=["23", 0],
        vae=["1", 2],
        strength=1.0,
    )
    prompt["8"]["inputs"]["positive"] = ["25", 0]
    prompt["8"]["inputs"]["negative"] = ["25", 1]
    found = walk_generation(prompt, "9")
    assert found.prompt == "a cat, embedding:sub/good_style.pt, a hat"
    assert found.negative_prompt == "blurry, (embedding:easyneg:1.2), ugly"
    zero = ksampler_prompt()
    zero["20"] = node("ConditioningZeroOut", conditioning=["5", 0])
    zero["8"]["inputs"]["negative"] = ["20", 0]
    assert walk_generation(zero, "9").negative_prompt == ""


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("embedding:a", [("a", None)]),
        ("x,embedding:b.safetensors, y", [("b.safetensors", None)]),
        ("(embedding:sub/dir/c.pt:0.8) embedding:sub/dir/c.pt", [("sub/dir/c.pt", 0.8)]),
        ("myembedding:no and notembedding:no", []),
        ("Embedding:Cap\nembedding:d", [("Cap", None), ("d", None)]),
    ],
)
def test_embedding_names_in_prompt_text(text: str, names: list[tuple[str, Any]]) -> None:
    prompt = ksampler_prompt()
    prompt["5"]["inputs"]["text"] = text
    prompt["6"]["inputs"]["text"] = ""
    found = walk_generation(prompt, "9")
    assert [(u.name, u.weight) for u in found.uses if u.kind == "embedding"] == names


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p["10"]["inputs"].update(samples=["10", 0]),  # a cycle before any sampler
        lambda p: p["3"]["inputs"].update(model=["8", 0]),  # a cycle on the model chain
        lambda p: p["5"]["inputs"].update(clip=["5", 0], text=["5", 0]),  # self links
        lambda p: p["8"]["inputs"].update(positive=["missing", 0], seed="not a number"),
        lambda p: p["3"]["inputs"].update(hikaze_payload="{not json"),
        lambda p: p["8"]["inputs"].update(steps=True, cfg=float("nan"), sampler_name=3),
        lambda p: p.update({"1": "not a node", "4": {"inputs": None}}),
        lambda p: p["2"]["inputs"].update(strength_model=[1, 2, 3], lora_name={"x": 1}),
    ],
)
def test_a_broken_graph_never_raises(damage: Any) -> None:
    prompt = ksampler_prompt()
    damage(prompt)
    found = walk_generation(prompt, "9")
    assert found.sampler_node in ("8", None)


def test_nothing_to_find() -> None:
    assert walk_generation(None, "9").uses == []
    assert walk_generation({"9": node("HikazeSaveImage", images=["1", 0])}, "9").seed is None
    assert walk_generation(ksampler_prompt(), "404").sampler_node is None
    long_chain = {str(n): node("ImageInvert", image=[str(n + 1), 0]) for n in range(20000)}
    assert walk_generation(long_chain, "0").sampler_node is None
