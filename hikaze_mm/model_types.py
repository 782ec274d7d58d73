"""The one vocabulary of model types: ComfyUI's folder keys.

Every type stored in the library is one of these keys (or, for a folder we do not know,
that folder's name in lower case). Legacy and A1111-style names map onto them.
"""

from __future__ import annotations

# Canonical keys, as ComfyUI names its model folders.
CANONICAL_TYPES: tuple[str, ...] = (
    "checkpoints",
    "loras",
    "embeddings",
    "vae",
    "vae_approx",
    "upscale_models",
    "controlnet",
    "clip",
    "clip_vision",
    "text_encoders",
    "unet",
    "diffusion_models",
    "style_models",
    "gligen",
    "hypernetworks",
    "photomaker",
    "ipadapter",
    "ultralytics",
    "sams",
    "other",
)

# The types images made elsewhere name by AutoV3 (``hashing.TailHash``): computed for them
# in the same read as the SHA-256.
AUTOV3_TYPES = frozenset({"loras", "embeddings"})

# Lower-cased aliases -> canonical key.
_ALIASES: dict[str, str] = {
    "checkpoint": "checkpoints",
    "ckpt": "checkpoints",
    "stable-diffusion": "checkpoints",
    "stable_diffusion": "checkpoints",
    "model": "checkpoints",
    "models": "checkpoints",
    "lora": "loras",
    "locon": "loras",
    "lycoris": "loras",
    "lyco": "loras",
    "embedding": "embeddings",
    "textual_inversion": "embeddings",
    "textualinversion": "embeddings",
    "vaes": "vae",
    "upscale": "upscale_models",
    "upscaler": "upscale_models",
    "upscalers": "upscale_models",
    "esrgan": "upscale_models",
    "realesrgan": "upscale_models",
    "controlnets": "controlnet",
    "t2i_adapter": "controlnet",
    "clips": "clip",
    "text_encoder": "text_encoders",
    "diffusion_model": "diffusion_models",
    "unets": "unet",
    "hypernetwork": "hypernetworks",
    "ip-adapter": "ipadapter",
    "ip_adapter": "ipadapter",
    "yolo": "ultralytics",
    "sam": "sams",
    "others": "other",
}


def canonical_type(name: str | None) -> str:
    """Map any legacy or folder name onto the canonical vocabulary.

    Unknown names are kept as their trimmed, lower-cased form (a custom first-level folder
    is still a meaningful type); empty or missing names become ``other``.
    """
    if name is None:
        return "other"
    key = name.strip().strip("/\\").lower().replace(" ", "_")
    if not key:
        return "other"
    if key in CANONICAL_TYPES:
        return key
    return _ALIASES.get(key, key)
