"""The base-model probe, on tiny hand-built safetensors files (a header and a few bytes)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from hikaze_mm import probe
from hikaze_mm.probe import ProbeResult, probe_file, read_safetensors_header


def write_safetensors(
    path: Path, shapes: dict[str, list[int]], metadata: dict[str, str] | None = None
) -> Path:
    """A safetensors file whose header lists ``shapes``; the data section is a few bytes.

    Offsets are nominal (the probe never reads tensor data), so a multi-GB layout costs
    nothing on disk.
    """
    header: dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, shape in shapes.items():
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [0, 0]}
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    return path


def raw_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


UNET = "model.diffusion_model."


def sd_checkpoint(context: int, *, sdxl_adm: int | None = None, te: str) -> dict[str, list[int]]:
    shapes = {
        f"{UNET}input_blocks.0.0.weight": [320, 4, 3, 3],
        f"{UNET}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, context],
        "first_stage_model.decoder.conv_out.weight": [3, 128, 3, 3],
        te: [768, 768],
    }
    if sdxl_adm is not None:
        shapes[f"{UNET}label_emb.0.0.weight"] = [1280, sdxl_adm]
    return shapes


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        (
            sd_checkpoint(
                768, te="cond_stage_model.transformer.text_model.final_layer_norm.weight"
            ),
            ProbeResult("SD1.x", "checkpoint"),
        ),
        (
            sd_checkpoint(1024, te="cond_stage_model.model.transformer.resblocks.0.attn.in_proj"),
            ProbeResult("SD2.x", "checkpoint"),
        ),
        (
            sd_checkpoint(
                2048, sdxl_adm=2816, te="conditioner.embedders.1.model.transformer.resblocks.0.x"
            ),
            ProbeResult("SDXL", "checkpoint"),
        ),
        (
            sd_checkpoint(
                1280, sdxl_adm=2560, te="conditioner.embedders.0.model.transformer.resblocks.0.x"
            ),
            ProbeResult("SDXL Refiner", "checkpoint"),
        ),
        (
            {
                f"{UNET}joint_blocks.0.x_block.attn.qkv.weight": [4608, 1536],
                f"{UNET}joint_blocks.23.context_block.attn.qkv.weight": [4608, 1536],
                "first_stage_model.decoder.conv_out.weight": [3, 128, 3, 3],
                "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight": [768],
            },
            ProbeResult("SD3", "checkpoint"),
        ),
        (
            {
                f"{UNET}joint_blocks.0.x_block.attn.qkv.weight": [6912, 2304],
                f"{UNET}joint_blocks.37.x_block.attn.qkv.weight": [6912, 2304],
            },
            ProbeResult("SD3.5", "diffusion_model"),
        ),
        (
            {
                "double_blocks.0.img_attn.qkv.weight": [9216, 3072],
                "single_blocks.37.linear1.weight": [21504, 3072],
                "guidance_in.in_layer.weight": [3072, 256],
            },
            ProbeResult("Flux.1", "diffusion_model"),
        ),
        (
            {
                f"{UNET}double_blocks.0.img_attn.qkv.weight": [9216, 3072],
                "vae.decoder.conv_out.weight": [3, 128, 3, 3],
                "first_stage_model.decoder.conv_in.weight": [512, 16, 3, 3],
            },
            ProbeResult("Flux.1", "checkpoint"),
        ),
        (
            {
                "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": [640, 2048],
                "add_embedding.linear_1.weight": [1280, 2816],
            },
            ProbeResult("SDXL", "diffusion_model"),
        ),
        (
            {
                "encoder.conv_in.weight": [128, 3, 3, 3],
                "decoder.conv_in.weight": [512, 4, 3, 3],
                "quant_conv.weight": [8, 8, 1, 1],
            },
            ProbeResult(None, "vae"),
        ),
        ({"emb_params": [4, 768]}, ProbeResult("SD1.x", "embedding")),
        ({"emb_params": [2, 1024]}, ProbeResult("SD2.x", "embedding")),
        ({"clip_l": [3, 768], "clip_g": [3, 1280]}, ProbeResult("SDXL", "embedding")),
        (
            {
                "control_model.input_hint_block.0.weight": [16, 3, 3, 3],
                "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [
                    320,
                    768,
                ],
            },
            ProbeResult("SD1.x", "controlnet"),
        ),
        (
            {"encoder.block.0.layer.0.SelfAttention.k.weight": [4096, 4096], "shared.weight": [1]},
            ProbeResult(None, "text_encoder"),
        ),
        ({"some.unrelated.tensor": [3, 3]}, ProbeResult(None, None)),
        ({}, ProbeResult(None, None)),
    ],
    ids=lambda v: v.base or v.kind or "unknown" if isinstance(v, ProbeResult) else "",
)
def test_full_models_from_keys_and_shapes(
    tmp_path: Path, shapes: dict[str, list[int]], expected: ProbeResult
) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", shapes)
    assert probe_file(path) == expected


KOHYA_DOWN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"
KOHYA_UP = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight"


@pytest.mark.parametrize(
    ("shapes", "expected_base"),
    [
        # kohya names: the down factor's width is the text-encoder context.
        ({KOHYA_UP: [320, 16], KOHYA_DOWN: [16, 768], "lora_te_x.alpha": []}, "SD1.x"),
        ({KOHYA_UP: [320, 16], KOHYA_DOWN: [16, 1024]}, "SD2.x"),
        (
            {
                "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": [
                    1280,
                    8,
                ],
                "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": [
                    8,
                    2048,
                ],
                "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [8, 768],
            },
            "SDXL",
        ),
        # Text-encoder-only SDXL LoRA: the second text encoder gives it away.
        ({"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [8, 1280]}, "SDXL"),
        # diffusers/PEFT names.
        (
            {
                "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": [
                    4,
                    2048,
                ],
                "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": [
                    640,
                    4,
                ],
            },
            "SDXL",
        ),
        ({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": [16, 3072]}, "Flux.1"),
        (
            {"transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight": [16, 3072]},
            "Flux.1",
        ),
        ({"lora_unet_joint_blocks_0_x_block_attn_qkv.lora_down.weight": [16, 1536]}, "SD3"),
        # LoHa: recognised as a LoRA; the base from its factor widths when they tell.
        (
            {
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w1_a": [
                    320,
                    8,
                ],
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w1_b": [
                    8,
                    768,
                ],
            },
            "SD1.x",
        ),
        ({"lora_unet_mid_block_resnets_0_conv1.lora_down.weight": [4, 1280, 3, 3]}, None),
    ],
)
def test_loras_from_keys_and_shapes(
    tmp_path: Path, shapes: dict[str, list[int]], expected_base: str | None
) -> None:
    result = probe_file(write_safetensors(tmp_path / "l.safetensors", shapes))
    assert result == ProbeResult(expected_base, "lora")
    assert result.kind == "lora"
    assert result.suggested_type == "loras"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"ss_base_model_version": "sd_v1", "ss_network_module": "networks.lora"}, "SD1.x"),
        ({"ss_base_model_version": "sdxl_base_v1-0"}, "SDXL"),
        ({"ss_base_model_version": "sd_v2_768_v"}, "SD2.x"),
        ({"ss_base_model_version": "flux1"}, "Flux.1"),
        ({"ss_base_model_version": "sd3"}, "SD3"),
        ({"ss_v2": "True"}, "SD2.x"),
        ({"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}, "SDXL"),
        ({"modelspec.architecture": "stable-diffusion-xl-v1-refiner"}, "SDXL Refiner"),
        ({"modelspec.architecture": "stable-diffusion-v1/lora"}, "SD1.x"),
        ({"modelspec.architecture": "stable-diffusion-v2-768-v/lora"}, "SD2.x"),
        ({"modelspec.architecture": "stable-diffusion-3.5-large/lora"}, "SD3.5"),
        ({"modelspec.architecture": "stable-diffusion-3-medium/lora"}, "SD3"),
        ({"modelspec.architecture": "flux-1-dev/lora"}, "Flux.1"),
        ({"modelspec.architecture": "something-new/lora"}, None),
        ({"ss_base_model_version": "unheard_of"}, None),
    ],
)
def test_trainer_metadata_wins(
    tmp_path: Path, metadata: dict[str, str], expected: str | None
) -> None:
    # The tensors alone would say SD1.x (768): metadata, when it names a base, wins.
    shapes = {KOHYA_DOWN: [8, 768]}
    result = probe_file(write_safetensors(tmp_path / "l.safetensors", shapes, metadata))
    assert result.kind == "lora"
    assert result.base == (expected or "SD1.x")


def test_modelspec_kind_suffix(tmp_path: Path) -> None:
    path = write_safetensors(
        tmp_path / "ti.safetensors",
        {"weird_name": [2, 768]},
        {"modelspec.architecture": "stable-diffusion-xl-v1-base/textual-inversion"},
    )
    assert probe_file(path) == ProbeResult("SDXL", "embedding")


def test_reads_only_the_header(tmp_path: Path) -> None:
    # The declared header is followed by garbage standing in for tensor data: a reader that
    # went past the header would choke or classify it; the probe must not look at it.
    path = write_safetensors(tmp_path / "m.safetensors", {KOHYA_DOWN: [8, 768]})
    with open(path, "ab") as f:
        f.write(b"\xff" * 4096)
    tensors, metadata = read_safetensors_header(path)  # type: ignore[misc]
    assert list(tensors) == [KOHYA_DOWN]
    assert metadata == {}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x02",
        struct.pack("<Q", 0),
        struct.pack("<Q", 2**63) + b"{}",  # absurd length
        struct.pack("<Q", probe.MAX_HEADER_BYTES + 1) + b"{}",
        struct.pack("<Q", 100) + b'{"a": 1}',  # claims more than the file holds
        struct.pack("<Q", 9) + b'{"a": 1,,',  # bad JSON
        struct.pack("<Q", 4) + b"[1,]",
        struct.pack("<Q", 2) + b"[]",  # JSON, not an object
        struct.pack("<Q", 4) + b"\xff\xfe{}",  # not UTF-8
        struct.pack("<Q", 8) + b'"string"',
        struct.pack("<Q", 20000) + b"{" * 20000,  # deep nesting
    ],
)
def test_malformed_headers_give_unknown(tmp_path: Path, data: bytes) -> None:
    path = raw_file(tmp_path / "bad.safetensors", data)
    assert probe_file(path) == ProbeResult(None, None)


@pytest.mark.parametrize(
    "header",
    [
        {"__metadata__": "not a dict", "x": {"shape": [1]}},
        {"__metadata__": {"ss_base_model_version": 5, "modelspec.architecture": None}},
        {"a.attn2.to_k.weight": {"shape": "not a list"}},
        {"a.attn2.to_k.weight": {"shape": []}},
        {"a.attn2.to_k.weight": {"shape": [True, True]}},
        {"a.attn2.to_k.weight": {"shape": [1, 1e300]}},
        {"model.diffusion_model.label_emb.0.0.weight": {"shape": None}},
        {"emb_params": 7},
        {"lora_unet_x.lora_down.weight": ["list", "entry"]},
    ],
)
def test_odd_but_valid_json_never_crashes(tmp_path: Path, header: dict) -> None:
    raw = json.dumps(header).encode()
    path = raw_file(tmp_path / "odd.safetensors", struct.pack("<Q", len(raw)) + raw)
    result = probe_file(path)
    assert isinstance(result, ProbeResult)
    assert result.base is None


def test_other_formats_and_unreadable_files(tmp_path: Path) -> None:
    ckpt = raw_file(tmp_path / "m.ckpt", b"PK\x03\x04 zip pickle")
    assert probe_file(ckpt) == ProbeResult()
    assert probe_file(tmp_path / "absent.safetensors") == ProbeResult()
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    assert probe_file(folder) == ProbeResult()
    sft = write_safetensors(tmp_path / "m.sft", {KOHYA_DOWN: [8, 1024]})
    assert probe_file(sft) == ProbeResult("SD2.x", "lora")
