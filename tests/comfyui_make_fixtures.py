"""Build tiny SD1.5-shaped model files with ComfyUI's own classes (run by ``COMFYUI_PYTHON``).

    cd $COMFYUI_DIR && $COMFYUI_PYTHON /path/to/tests/comfyui_make_fixtures.py OUT_DIR

Nothing is downloaded; every tensor is random (seeded). Written into OUT_DIR:

- ``tiny_sd15.safetensors``: a checkpoint ComfyUI detects as SD1.5. Its UNet is ComfyUI's
  ``openaimodel.UNetModel`` with one level, one res block and one transformer
  (``model_channels`` 320, ``context_dim`` 768, 8 heads), stored under
  ``model.diffusion_model.``; its text encoder is CLIP-L (``comfy.sd1_clip.SDClipModel``,
  ``cond_stage_model.transformer.text_model.``); its VAE is ComfyUI's TAESD
  (``first_stage_model.taesd_encoder.`` / ``taesd_decoder.``). ``--clip tiny`` (the default)
  stores only the first CLIP-L layer, the position embedding and the final norm: detection
  does not look at the text encoder, ComfyUI still builds the full CLIP-L and logs
  "clip missing: ..." for the rest. ``--clip full`` stores all of CLIP-L (fp16, ~246 MB).
- ``tiny_sd15_lora.safetensors``: a rank-4 LoRA (``lora_unet_*`` / ``lora_te_*`` keys with
  ``lora_up.weight``, ``lora_down.weight`` and ``alpha``) on some UNet layers (linear, 1x1 and
  3x3 convolutions) and on two CLIP layers.
- ``tiny_sd15_unet.safetensors``: the same UNet alone (ComfyUI's ``diffusion_models`` format).
- ``tiny_taesd_vae.safetensors``: the same TAESD alone (``taesd_encoder.*``, ``taesd_decoder.*``).

Before it prints anything the script loads every file back with ComfyUI
(``load_checkpoint_guess_config``, ``load_diffusion_model``, ``VAE``, ``load_lora_for_models``)
and checks that the checkpoint is detected as SD1.5 with a CLIP and a TAESD VAE, that every
LoRA key is used, and that patching gives base + strength * alpha / rank * up @ down.
On stdout: one JSON object (see ``main``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.getcwd())  # run with cwd = the ComfyUI checkout

from comfy.cli_args import args as comfy_args

comfy_args.cpu = True  # before comfy.model_management is imported

import comfy.lora  # noqa: E402
import comfy.model_management  # noqa: E402
import comfy.ops  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.sd1_clip  # noqa: E402
import comfy.utils  # noqa: E402
import torch  # noqa: E402
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel  # noqa: E402
from comfy.taesd.taesd import TAESD  # noqa: E402

RANK = 4
ALPHA = 2.0
SEED = 20240611

# Exactly what comfy.model_detection.detect_unet_config reads back from the weights, plus
# the SD15 class's unet_extra_config (num_heads 8, num_head_channels -1).
UNET_CONFIG = {
    "image_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "channel_mult": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [1, 1],
    "transformer_depth_middle": 1,
    "context_dim": 768,
    "use_linear_in_transformer": False,
    "use_spatial_transformer": True,
    "legacy": False,
    "use_checkpoint": False,
    "adm_in_channels": None,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
    "num_heads": 8,
    "num_head_channels": -1,
}

# UNet weights (without "diffusion_model.") the LoRA patches: linear, 1x1 conv, 3x3 conv.
LORA_UNET_LAYERS = [
    "input_blocks.1.1.transformer_blocks.0.attn1.to_q",
    "input_blocks.1.1.transformer_blocks.0.attn2.to_k",
    "middle_block.1.transformer_blocks.0.attn1.to_out.0",
    "output_blocks.0.1.transformer_blocks.0.ff.net.2",
    "input_blocks.1.1.proj_in",
    "input_blocks.1.0.in_layers.2",
]
# CLIP-L layers (ComfyUI's "clip_l.transformer.text_model." naming, without ".weight").
LORA_CLIP_LAYERS = {
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj": "encoder.layers.0.self_attn.q_proj",
    "lora_te_text_model_encoder_layers_0_mlp_fc1": "encoder.layers.0.mlp.fc1",
}
TINY_CLIP_KEEP = ("embeddings.position_embedding.", "encoder.layers.0.", "final_layer_norm.")


def randomize(module: torch.nn.Module, generator: torch.Generator, std: float = 0.02) -> None:
    """ComfyUI's ops skip weight init, so give every parameter seeded random values."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("norm.weight") or (".norm" in name and name.endswith(".weight")):
                param.copy_(1.0 + std * torch.randn(param.shape, generator=generator))
            else:
                param.copy_(std * torch.randn(param.shape, generator=generator))


def build_unet(generator: torch.Generator) -> dict[str, torch.Tensor]:
    unet = UNetModel(**UNET_CONFIG, operations=comfy.ops.disable_weight_init, device="cpu")
    randomize(unet, generator)
    return {k: v.detach().to(torch.float16).contiguous() for k, v in unet.state_dict().items()}


def build_clip(generator: torch.Generator, variant: str) -> dict[str, torch.Tensor]:
    clip = comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float16)
    out: dict[str, torch.Tensor] = {}
    prefix = "transformer.text_model."
    for key, value in clip.state_dict().items():
        if not key.startswith(prefix):
            continue  # text_projection, logit_scale: SD1.5 checkpoints do not carry them
        short = key[len(prefix) :]
        if variant == "tiny" and not short.startswith(TINY_CLIP_KEEP):
            continue
        if "position_ids" in short:
            out[short] = value.clone()
        elif short.endswith(("layer_norm1.weight", "layer_norm2.weight", "layer_norm.weight")):
            out[short] = torch.ones(value.shape, dtype=torch.float16)
        else:
            noise = 0.02 * torch.randn(value.shape, generator=generator)
            out[short] = noise.to(torch.float16)
    del clip
    return out


def build_taesd(generator: torch.Generator) -> dict[str, torch.Tensor]:
    taesd = TAESD(latent_channels=4)
    with torch.no_grad():
        for param in taesd.parameters():
            param.copy_(0.05 * torch.randn(param.shape, generator=generator))
        taesd.vae_scale.fill_(1.0)
        taesd.vae_shift.fill_(0.0)
    return {k: v.detach().to(torch.float16).contiguous() for k, v in taesd.state_dict().items()}


def build_lora(
    unet_sd: dict[str, torch.Tensor], clip_sd: dict[str, torch.Tensor], generator: torch.Generator
) -> tuple[dict[str, torch.Tensor], list[dict[str, object]]]:
    lora: dict[str, torch.Tensor] = {}
    layers: list[dict[str, object]] = []

    def add(lora_name: str, target: str, weight: torch.Tensor) -> None:
        out_dim, in_shape = weight.shape[0], tuple(weight.shape[1:])
        up_shape = (out_dim, RANK) + (1,) * (weight.dim() - 2)
        down_shape = (RANK, *in_shape)
        lora[f"{lora_name}.lora_up.weight"] = (0.1 * torch.randn(up_shape, generator=generator)).to(
            torch.float16
        )
        lora[f"{lora_name}.lora_down.weight"] = (
            0.1 * torch.randn(down_shape, generator=generator)
        ).to(torch.float16)
        lora[f"{lora_name}.alpha"] = torch.tensor(ALPHA, dtype=torch.float16)
        layers.append({"lora_key": lora_name, "target": target, "shape": list(weight.shape)})

    for layer in LORA_UNET_LAYERS:
        weight = unet_sd[f"{layer}.weight"]
        add("lora_unet_" + layer.replace(".", "_"), f"diffusion_model.{layer}.weight", weight)
    for lora_name, layer in LORA_CLIP_LAYERS.items():
        weight = clip_sd[f"{layer}.weight"]
        add(lora_name, f"clip_l.transformer.text_model.{layer}.weight", weight)
    return lora, layers


def expected_delta(lora: dict[str, torch.Tensor], lora_name: str, shape) -> torch.Tensor:
    up = lora[f"{lora_name}.lora_up.weight"].float().flatten(start_dim=1)
    down = lora[f"{lora_name}.lora_down.weight"].float().flatten(start_dim=1)
    alpha = float(lora[f"{lora_name}.alpha"])
    return (alpha / RANK) * torch.mm(up, down).reshape(shape)


def verify(paths: dict[str, str], lora: dict[str, torch.Tensor], layers) -> dict[str, object]:
    """Load everything back with ComfyUI and check detection and the LoRA arithmetic."""
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        paths["checkpoint"], output_vae=True, output_clip=True
    )[:4]
    config_name = type(model.model.model_config).__name__
    if config_name != "SD15":
        raise SystemExit(f"checkpoint detected as {config_name}, not SD15")
    if clip is None:
        raise SystemExit("checkpoint loaded without a CLIP")
    if not isinstance(vae.first_stage_model, TAESD):
        raise SystemExit(f"VAE is {type(vae.first_stage_model).__name__}, not TAESD")

    unet_only = comfy.sd.load_diffusion_model(paths["unet"])
    if type(unet_only.model.model_config).__name__ != "SD15":
        raise SystemExit("diffusion model file not detected as SD15")
    vae_only = comfy.sd.VAE(sd=comfy.utils.load_torch_file(paths["vae"]))
    if not isinstance(vae_only.first_stage_model, TAESD):
        raise SystemExit("VAE file not loaded as TAESD")

    # Every LoRA key must be used (ComfyUI logs "lora key not loaded" otherwise).
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    key_map = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, key_map)
    loaded = comfy.lora.load_lora(lora, key_map, log_missing=False)
    if len(loaded) != len(layers):
        raise SystemExit(f"ComfyUI maps {len(loaded)} of {len(layers)} LoRA layers")

    strength = 0.75
    base = {k: v.float().clone() for k, v in model.model.state_dict().items()}
    new_model, _new_clip = comfy.sd.load_lora_for_models(model, clip, lora, strength, strength)
    new_model.patch_model()
    patched = new_model.model.state_dict()
    worst = 0.0
    for layer in layers:
        target = layer["target"]
        if not target.startswith("diffusion_model."):
            continue
        want = base[target] + strength * expected_delta(lora, layer["lora_key"], layer["shape"])
        got = patched[target].float()
        worst = max(worst, float((got - want).abs().max()))
        if not torch.allclose(got, want, atol=1e-3, rtol=1e-3):
            raise SystemExit(f"LoRA on {target}: patched weight != base + delta")
    targets = {layer["target"] for layer in layers}
    for key, value in patched.items():
        untouched = key.startswith("diffusion_model.") and key not in targets
        if untouched and not torch.equal(value.float(), base[key]):
            raise SystemExit(f"LoRA changed {key}, which it does not target")
    new_model.unpatch_model()
    return {"model_config": config_name, "unet_dtype": str(model.model_dtype()), "worst": worst}


def main() -> int:
    parser = argparse.ArgumentParser(description="tiny ComfyUI model fixtures")
    parser.add_argument("out_dir")
    parser.add_argument("--clip", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--no-verify", action="store_true")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    started = time.perf_counter()
    os.makedirs(opts.out_dir, exist_ok=True)
    generator = torch.Generator().manual_seed(SEED)

    unet_sd = build_unet(generator)
    clip_sd = build_clip(generator, opts.clip)
    taesd_sd = build_taesd(generator)
    checkpoint: dict[str, torch.Tensor] = {}
    checkpoint.update({f"model.diffusion_model.{k}": v for k, v in unet_sd.items()})
    checkpoint.update(
        {f"cond_stage_model.transformer.text_model.{k}": v for k, v in clip_sd.items()}
    )
    checkpoint.update({f"first_stage_model.{k}": v for k, v in taesd_sd.items()})
    lora, layers = build_lora(unet_sd, clip_sd, generator)

    paths = {
        "checkpoint": os.path.join(opts.out_dir, "tiny_sd15.safetensors"),
        "lora": os.path.join(opts.out_dir, "tiny_sd15_lora.safetensors"),
        "unet": os.path.join(opts.out_dir, "tiny_sd15_unet.safetensors"),
        "vae": os.path.join(opts.out_dir, "tiny_taesd_vae.safetensors"),
    }
    meta = {"hikaze_fixture": "tiny-sd15", "clip": opts.clip}
    comfy.utils.save_torch_file(checkpoint, paths["checkpoint"], metadata=meta)
    comfy.utils.save_torch_file(lora, paths["lora"], metadata={"hikaze_fixture": "tiny-lora"})
    comfy.utils.save_torch_file(unet_sd, paths["unet"], metadata={"hikaze_fixture": "tiny-unet"})
    comfy.utils.save_torch_file(taesd_sd, paths["vae"], metadata={"hikaze_fixture": "tiny-taesd"})

    checks = {} if opts.no_verify else verify(paths, lora, layers)
    result = {
        "paths": {k: os.path.abspath(v) for k, v in paths.items()},
        "sizes": {k: os.path.getsize(v) for k, v in paths.items()},
        "clip_variant": opts.clip,
        "unet_config": UNET_CONFIG,
        "lora": {
            "rank": RANK,
            "alpha": ALPHA,
            # lora_key: the LoRA file's prefix; target: the weight it patches, in ComfyUI's
            # naming (diffusion_model.* for the UNet, clip_l.transformer.text_model.* for CLIP)
            "layers": layers,
        },
        "checks": checks,
        "seconds": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
