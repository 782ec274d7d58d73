"""Guess a model's base (SD1.x, SDXL, Flux.1, ...) and kind (LoRA, checkpoint, ...) cheaply.

Only the safetensors header is read: 8 bytes of little-endian header length, then that
many bytes of JSON mapping tensor names to ``{"dtype", "shape", "data_offsets"}``, plus an
optional ``"__metadata__"`` object of strings. No tensor data is ever touched, so probing a
7 GB checkpoint reads a few hundred kilobytes.

Evidence, strongest first:

1. Metadata written by trainers: kohya's ``ss_base_model_version`` (``sd_v1``,
   ``sdxl_base_v1-0``, ``flux1`` ...) and the ModelSpec ``modelspec.architecture``
   (``stable-diffusion-xl-v1-base/lora`` ...), whose suffix also names the kind.
2. Tensor names: Flux's ``double_blocks``, SD3's ``joint_blocks``, SDXL's two text
   encoders (``conditioner.embedders.1`` / kohya ``lora_te2_``), LoRA factor names
   (``lora_down``, ``lora_A``, ``hada_w1_a``, ``lokr_w1``) ...
3. Tensor shapes: the width of a cross-attention key projection (``attn2.to_k``) is the
   text-encoder context: 768 for SD1.x, 1024 for SD2.x, 2048 for SDXL and 1280 for the
   SDXL refiner. The same rule works for full UNets and for LoRA down/A factors.

4. SDXL fine-tune families: Pony and Illustrious when the metadata
   (``ss_base_model_version``, ``modelspec.architecture``, ``ss_sd_model_name``,
   ``modelspec.title``) names them. Video families (Hunyuan Video, Wan, LTX Video) come
   from the same metadata fields.

Anything unrecognised gives ``None``; malformed, truncated or absurd headers give an empty
result. ``probe_file`` never raises.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")
# Real headers are at most a few MB (a Flux checkpoint's is ~100 KB). Anything larger is
# not a safetensors file, or a hostile one.
MAX_HEADER_BYTES = 32 * 1024 * 1024

# Base labels (the values stored in ``models.base``).
SD1 = "SD1.x"
SD2 = "SD2.x"
SDXL = "SDXL"
SDXL_REFINER = "SDXL Refiner"
SD3 = "SD3"
SD35 = "SD3.5"
FLUX1 = "Flux.1"
STABLE_CASCADE = "Stable Cascade"
PIXART = "PixArt"
HUNYUAN_DIT = "HunyuanDiT"
AURAFLOW = "AuraFlow"
SVD = "SVD"
PONY = "Pony"
ILLUSTRIOUS = "Illustrious"
HUNYUAN_VIDEO = "Hunyuan Video"
WAN = "Wan"
LTX_VIDEO = "LTX Video"

# Kinds.
LORA = "lora"
CHECKPOINT = "checkpoint"
DIFFUSION_MODEL = "diffusion_model"
VAE = "vae"
EMBEDDING = "embedding"
CONTROLNET = "controlnet"
TEXT_ENCODER = "text_encoder"

# Kind -> the library type (ComfyUI folder key) it suggests.
KIND_TYPES: dict[str, str] = {
    LORA: "loras",
    CHECKPOINT: "checkpoints",
    DIFFUSION_MODEL: "diffusion_models",
    VAE: "vae",
    EMBEDDING: "embeddings",
    CONTROLNET: "controlnet",
    TEXT_ENCODER: "text_encoders",
}

# Cross-attention context width -> base.
_CONTEXT_DIMS: dict[int, str] = {768: SD1, 1024: SD2, 2048: SDXL, 1280: SDXL_REFINER}

# kohya ``ss_base_model_version`` values (prefix match, lower case).
_KOHYA_BASES: tuple[tuple[str, str], ...] = (
    ("sdxl_refiner", SDXL_REFINER),
    ("sdxl", SDXL),
    ("sd_v1", SD1),
    ("sd_v2", SD2),
    ("sd3.5", SD35),
    ("sd3_5", SD35),
    ("sd_3.5", SD35),
    ("sd3", SD3),
    ("sd_3", SD3),
    ("flux", FLUX1),
    ("hunyuan_video", HUNYUAN_VIDEO),
    ("hunyuan-video", HUNYUAN_VIDEO),
    ("hunyuanvideo", HUNYUAN_VIDEO),
    ("wan", WAN),
    ("ltx", LTX_VIDEO),
)

# ModelSpec ``modelspec.architecture`` prefixes (before the ``/kind`` suffix, lower case).
_MODELSPEC_BASES: tuple[tuple[str, str], ...] = (
    ("stable-diffusion-xl-v1-refiner", SDXL_REFINER),
    ("stable-diffusion-xl", SDXL),
    ("stable-diffusion-v1", SD1),
    ("stable-diffusion-v2", SD2),
    ("stable-diffusion-3.5", SD35),
    ("stable-diffusion-v3.5", SD35),
    ("stable-diffusion-3", SD3),
    ("stable-diffusion-v3", SD3),
    ("stable-cascade", STABLE_CASCADE),
    ("stable-video-diffusion", SVD),
    ("flux-1", FLUX1),
    ("flux.1", FLUX1),
    ("flux1", FLUX1),
    ("pixart", PIXART),
    ("hunyuan-dit", HUNYUAN_DIT),
    ("auraflow", AURAFLOW),
    ("hunyuan-video", HUNYUAN_VIDEO),
    ("hunyuanvideo", HUNYUAN_VIDEO),
    ("wan", WAN),
    ("ltx", LTX_VIDEO),
)
# SDXL fine-tune families named in a trainer's metadata (any case, anywhere in the value).
_SDXL_FAMILIES: tuple[tuple[str, str], ...] = (("pony", PONY), ("illustrious", ILLUSTRIOUS))
_FAMILY_KEYS = (
    "ss_base_model_version",
    "modelspec.architecture",
    "ss_sd_model_name",
    "modelspec.title",
)
_MODELSPEC_KINDS: dict[str, str] = {
    "lora": LORA,
    "lycoris": LORA,
    "textual-inversion": EMBEDDING,
    "controlnet": CONTROLNET,
    "vae": VAE,
}

_LORA_MARKERS = (
    "lora_down",
    "lora_up",
    "lora_a.",
    "lora_b.",
    "lora.down",
    "lora.up",
    "hada_w1_",
    "hada_w2_",
    "lokr_w1",
    "lokr_w2",
    ".oft_",
    "oft_blocks",
)


@dataclass(frozen=True)
class ProbeResult:
    """What the header told: ``base`` and ``kind`` are None when unknown."""

    base: str | None = None
    kind: str | None = None

    @property
    def suggested_type(self) -> str | None:
        """The library type this kind suggests (``loras``, ``checkpoints``...), or None."""
        return KIND_TYPES.get(self.kind) if self.kind else None


UNKNOWN = ProbeResult()


# --------------------------------------------------------------------- reading
def read_safetensors_header(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_HEADER_BYTES
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The tensor table and ``__metadata__`` of a safetensors file, or None if not one.

    Reads 8 + header-length bytes and nothing else. A length of zero, one past the
    file's end or over ``max_bytes``, JSON that does not parse or is not an object all
    give None. Non-string metadata values are dropped. OSError propagates.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            return None
        (length,) = struct.unpack("<Q", head)
        if length < 2 or length > max_bytes:
            return None
        size = os.fstat(f.fileno()).st_size
        if 8 + length > size:
            return None
        raw = f.read(length)
    if len(raw) != length or raw[:1] != b"{":
        return None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    meta_raw = header.pop("__metadata__", None)
    metadata: dict[str, str] = {}
    if isinstance(meta_raw, dict):
        metadata = {str(k): v for k, v in meta_raw.items() if isinstance(v, str)}
    tensors = {k: v for k, v in header.items() if isinstance(v, dict)}
    return tensors, metadata


def probe_file(path: str | os.PathLike[str]) -> ProbeResult:
    """Probe any model file; only safetensors headers are understood. Never raises."""
    name = os.fspath(path).lower()
    if not name.endswith(SAFETENSORS_EXTENSIONS):
        return UNKNOWN
    try:
        parsed = read_safetensors_header(path)
    except (OSError, ValueError, OverflowError, MemoryError) as exc:
        log.debug("probe: cannot read %s: %s", path, exc)
        return UNKNOWN
    if parsed is None:
        return UNKNOWN
    return classify(*parsed)


# --------------------------------------------------------------------- classifying
def classify(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> ProbeResult:
    """Base and kind from a parsed header (tensor table + metadata). Never raises."""
    try:
        return _classify(tensors, metadata or {})
    except Exception:  # a hostile header must never break a scan
        log.exception("probe: unexpected header structure")
        return UNKNOWN


def _classify(tensors: Mapping[str, Any], metadata: Mapping[str, str]) -> ProbeResult:
    meta_base, meta_kind = _from_metadata(metadata)
    keys = list(tensors)
    lowered = [k.lower() for k in keys]
    kind = meta_kind or _kind_from_keys(lowered, metadata)
    base = meta_base or _base_from_keys(keys, lowered, tensors, kind)
    if base in (None, SDXL):  # Pony and Illustrious are SDXL fine-tunes
        base = _sdxl_family(metadata) or base
    return ProbeResult(base=base, kind=kind)


def _from_metadata(metadata: Mapping[str, str]) -> tuple[str | None, str | None]:
    base: str | None = None
    kind: str | None = None
    arch = metadata.get("modelspec.architecture", "").strip().lower()
    if arch:
        family, _, suffix = arch.partition("/")
        kind = _MODELSPEC_KINDS.get(suffix)
        base = next((b for prefix, b in _MODELSPEC_BASES if family.startswith(prefix)), None)
    kohya = metadata.get("ss_base_model_version", "").strip().lower()
    if kohya and base is None:
        base = next((b for prefix, b in _KOHYA_BASES if kohya.startswith(prefix)), None)
    if base is None and metadata.get("ss_v2", "").strip().lower() == "true":
        base = SD2
    if kind is None and "lora" in metadata.get("ss_network_module", "").lower():
        kind = LORA
    return base, kind


def _sdxl_family(metadata: Mapping[str, str]) -> str | None:
    """Pony or Illustrious, when a trainer's metadata names one of them."""
    for key in _FAMILY_KEYS:
        value = metadata.get(key, "").lower()
        for word, family in _SDXL_FAMILIES:
            if word in value:
                return family
    return None


def _kind_from_keys(lowered: list[str], metadata: Mapping[str, str]) -> str | None:
    if not lowered:
        return None
    if any(marker in k for k in lowered for marker in _LORA_MARKERS):
        return LORA
    if any(k.endswith(".alpha") for k in lowered) and any(
        k.startswith(("lora_unet_", "lora_te")) for k in lowered
    ):
        return LORA
    if {"emb_params", "clip_l", "clip_g"} & set(lowered) or any(
        k.startswith("string_to_param") for k in lowered
    ):
        return EMBEDDING
    if any(k.startswith(("control_model.", "controlnet_")) for k in lowered) or any(
        "input_hint_block" in k for k in lowered
    ):
        return CONTROLNET
    has_unet = any(k.startswith("model.diffusion_model.") for k in lowered)
    has_vae = any(k.startswith("first_stage_model.") for k in lowered)
    has_te = any(
        k.startswith(("cond_stage_model.", "conditioner.", "text_encoders.")) for k in lowered
    )
    if has_unet and (has_vae or has_te):
        return CHECKPOINT
    if has_unet or any(
        k.startswith(
            (
                "double_blocks.",
                "single_blocks.",
                "joint_blocks.",
                "input_blocks.",
                "down_blocks.",
                "transformer_blocks.",
            )
        )
        for k in lowered
    ):
        return DIFFUSION_MODEL
    vae_parts = ("encoder.", "decoder.", "quant_conv", "post_quant_conv")
    if any(k.startswith("decoder.") for k in lowered) and all(
        k.startswith(vae_parts) for k in lowered
    ):
        return VAE
    if any(
        k.startswith(("text_model.", "encoder.block.", "shared.", "transformer.resblocks."))
        for k in lowered
    ):
        return TEXT_ENCODER
    return None


def _base_from_keys(
    keys: list[str], lowered: list[str], tensors: Mapping[str, Any], kind: str | None
) -> str | None:
    # Flux: ``double_blocks``/``single_blocks`` (BFL and kohya naming) or diffusers'
    # ``single_transformer_blocks``.
    flux_markers = ("double_blocks", "single_blocks", "single_transformer_blocks")
    if any(m in k for k in lowered for m in flux_markers):
        return FLUX1
    # SD3/SD3.5 MMDiT: ``joint_blocks`` (SAI and kohya naming).
    if any("joint_blocks" in k for k in lowered):
        return _sd3_variant(lowered)
    if any("context_embedder" in k for k in lowered) and any(
        "transformer_blocks" in k and "add_k_proj" in k for k in lowered
    ):
        return SD3  # diffusers SD3 (Flux would have had single_transformer_blocks)
    # SDXL label embedding: 2816 inputs on the base model, 2560 on the refiner.
    for key in keys:
        low = key.lower()
        if low.endswith(("label_emb.0.0.weight", "add_embedding.linear_1.weight")):
            width = _shape_dim(tensors.get(key), -1)
            if width == 2816:
                return SDXL
            if width == 2560:
                return SDXL_REFINER
    context = _context_dim(keys, lowered, tensors)
    if context is not None:
        return _CONTEXT_DIMS.get(context)
    # Text encoders alone (text-encoder-only LoRAs, checkpoints without a UNet match).
    if any(k.startswith("lora_te2_") or "conditioner.embedders.1" in k for k in lowered):
        return SDXL
    # Textual inversion embeddings: the vector width names the text encoder.
    if kind == EMBEDDING:
        if "clip_g" in lowered:
            return SDXL
        for key in keys:
            if key.lower() in ("emb_params", "clip_l") or key.lower().startswith("string_to_param"):
                width = _shape_dim(tensors.get(key), -1)
                return {768: SD1, 1024: SD2}.get(width or 0)
    if any(k.startswith("cond_stage_model.model.transformer.resblocks") for k in lowered):
        return SD2
    if any(k.startswith("cond_stage_model.transformer.") for k in lowered):
        return SD1
    return None


def _sd3_variant(lowered: list[str]) -> str:
    """SD3.5 has dual attention (``attn2``, Medium) or 38 joint blocks (Large)."""
    for k in lowered:
        if "joint_blocks" in k and ("attn2" in k or "joint_blocks.37." in k or "blocks_37_" in k):
            return SD35
    return SD3


def _context_dim(keys: list[str], lowered: list[str], tensors: Mapping[str, Any]) -> int | None:
    """Width of the first cross-attention key projection (UNet weight or LoRA down/A)."""
    for key, low in zip(keys, lowered, strict=True):
        if "attn2" not in low or "to_k" not in low:
            continue
        if low.endswith(("lora_up.weight", "lora_b.weight", "lora.up.weight", ".alpha", ".bias")):
            continue
        dim = _shape_dim(tensors.get(key), -1)
        if dim in _CONTEXT_DIMS:
            return dim
    return None


def _shape_dim(entry: Any, index: int) -> int | None:
    if not isinstance(entry, dict):
        return None
    shape = entry.get("shape")
    if not isinstance(shape, list) or not shape:
        return None
    value = shape[index] if -len(shape) <= index < len(shape) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
