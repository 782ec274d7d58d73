"""The Hikaze loader nodes for ComfyUI: they name every model by its SHA-256.

Each node has one socketless string input, ``hikaze_payload`` (see ``payload``). At queue
time ``VALIDATE_INPUTS`` refuses a malformed payload or a model nothing can resolve (ComfyUI
answers 400 ``custom_validation_failed`` with our message); ``IS_CHANGED`` is the hashes and
strengths, so an unchanged prompt loads nothing again. At run time each model is resolved
(library, targeted relink, path, name: ``library.resolver``), loaded the way ComfyUI's own
loader does, and its use is recorded (``last_used_at``, ``use_count``).

ComfyUI creates nodes without arguments, so the plugin binds the library to ``CONTEXT``
(``context``) once at start-up; a library that could not open leaves its reason there, and
every node fails with it. ComfyUI's modules (``comfy``, ``folder_paths``, ``torch``) are
imported only inside the methods that load, so this module imports anywhere.
"""

from __future__ import annotations

import logging
from typing import Any

from hikaze_mm.comfy.context import CATEGORY, CONTEXT, Context
from hikaze_mm.comfy.save_image import HikazeSaveImage
from hikaze_mm.library.resolver import Resolved, ResolveError
from hikaze_mm.workflow.payload import LoraEntry, ModelRef, PayloadError, fingerprint
from hikaze_mm.workflow.payload import parse_loras as _parse_loras
from hikaze_mm.workflow.payload import parse_model as _parse_model

__all__ = ["CONTEXT", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "Context"]

log = logging.getLogger("hikaze_mm.comfy")

PAYLOAD_INPUT = (
    "STRING",
    {
        "default": "",
        "socketless": True,
        "tooltip": "The model, chosen in the Hikaze library (JSON: sha256 and name).",
    },
)


def _validate(check: Any) -> bool | str:
    """Run a queue-time check; True, or the message ComfyUI shows."""
    try:
        check()
    except (PayloadError, ResolveError) as exc:
        return str(exc)
    except RuntimeError as exc:  # the library is broken
        return str(exc)
    return True


def _resolve(ref: ModelRef, folder: str) -> Resolved:
    try:
        resolved = CONTEXT.require().resolve(ref, folder)
    except ResolveError as exc:
        raise RuntimeError(f"Hikaze: {exc}") from None
    if resolved.how == "relinked":
        log.info("hikaze: %s moved; relinked to %s", ref.label(), resolved.path)
    CONTEXT.used(resolved)
    return resolved


class _SingleLoader:
    """A node that loads one model named by ``{"sha256", "name", "ckpt_path"}``."""

    FOLDER = ""
    CATEGORY = CATEGORY
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"hikaze_payload": PAYLOAD_INPUT}}

    @classmethod
    def VALIDATE_INPUTS(cls, hikaze_payload: str) -> bool | str:
        return _validate(lambda: CONTEXT.require().check(_parse_model(hikaze_payload), cls.FOLDER))

    @classmethod
    def IS_CHANGED(cls, hikaze_payload: str, **_: Any) -> str:
        try:
            return fingerprint([(_parse_model(hikaze_payload), 1.0, 1.0)])
        except PayloadError as exc:
            return str(exc)

    def resolved_path(self, hikaze_payload: str) -> str:
        try:
            ref = _parse_model(hikaze_payload)
        except PayloadError as exc:
            raise RuntimeError(f"Hikaze: {exc}") from None
        return _resolve(ref, self.FOLDER).path


class HikazeCheckpointLoader(_SingleLoader):
    """A checkpoint by hash: MODEL, CLIP and VAE, as ``CheckpointLoaderSimple``."""

    FOLDER = "checkpoints"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    DESCRIPTION = "Loads a checkpoint chosen in the Hikaze library, found by its SHA-256."

    def load(self, hikaze_payload: str) -> tuple[Any, ...]:
        import comfy.sd
        import folder_paths

        path = self.resolved_path(hikaze_payload)
        out = comfy.sd.load_checkpoint_guess_config(
            path,
            output_vae=True,
            output_clip=True,
            embedding_directory=folder_paths.get_folder_paths("embeddings"),
        )
        return out[:3]


WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]


class HikazeDiffusionModelLoader(_SingleLoader):
    """A UNet / diffusion model by hash, as ``UNETLoader``."""

    FOLDER = "diffusion_models"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "Loads a diffusion model chosen in the Hikaze library, found by its SHA-256."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"hikaze_payload": PAYLOAD_INPUT, "weight_dtype": (WEIGHT_DTYPES,)}}

    def load(self, hikaze_payload: str, weight_dtype: str = "default") -> tuple[Any, ...]:
        import comfy.sd
        import torch

        options: dict[str, Any] = {}
        if weight_dtype in ("fp8_e4m3fn", "fp8_e4m3fn_fast"):
            options["dtype"] = torch.float8_e4m3fn
            if weight_dtype == "fp8_e4m3fn_fast":
                options["fp8_optimizations"] = True
        elif weight_dtype == "fp8_e5m2":
            options["dtype"] = torch.float8_e5m2
        path = self.resolved_path(hikaze_payload)
        return (comfy.sd.load_diffusion_model(path, model_options=options),)


class HikazeVAELoader(_SingleLoader):
    """A VAE by hash, as ``VAELoader`` does for a VAE file."""

    FOLDER = "vae"
    RETURN_TYPES = ("VAE",)
    DESCRIPTION = "Loads a VAE chosen in the Hikaze library, found by its SHA-256."

    def load(self, hikaze_payload: str) -> tuple[Any, ...]:
        import comfy.sd
        import comfy.utils

        path = self.resolved_path(hikaze_payload)
        vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(path))
        vae.throw_exception_if_invalid()
        return (vae,)


class HikazeLoraPowerLoader:
    """Any number of LoRAs by hash on MODEL and CLIP, plus their trigger words."""

    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL", "CLIP", "STRING")
    RETURN_NAMES = ("MODEL", "CLIP", "trigger_words")
    DESCRIPTION = (
        "Applies LoRAs chosen in the Hikaze library, found by their SHA-256; outputs the "
        "enabled LoRAs' trigger words."
    )

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}  # path -> state dict, as LoraLoader caches

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": ("MODEL",),
                "clip": ("CLIP",),
                "hikaze_payload": PAYLOAD_INPUT,
            }
        }

    @staticmethod
    def _enabled(hikaze_payload: str) -> list[LoraEntry]:
        return [e for e in _parse_loras(hikaze_payload) if e.enabled]

    @classmethod
    def VALIDATE_INPUTS(cls, hikaze_payload: str) -> bool | str:
        def check() -> None:
            resolver = CONTEXT.require()
            for entry in cls._enabled(hikaze_payload):
                resolver.check(entry.model, "loras")

        return _validate(check)

    @classmethod
    def IS_CHANGED(cls, hikaze_payload: str, **_: Any) -> str:
        try:
            entries = cls._enabled(hikaze_payload)
        except PayloadError as exc:
            return str(exc)
        return fingerprint([(e.model, e.strength_model, e.strength_clip) for e in entries])

    def load(self, model: Any, clip: Any, hikaze_payload: str) -> tuple[Any, Any, str]:
        import comfy.sd
        import comfy.utils

        try:
            entries = self._enabled(hikaze_payload)
        except PayloadError as exc:
            raise RuntimeError(f"Hikaze: {exc}") from None
        words: list[str] = []
        kept: dict[str, Any] = {}
        for entry in entries:
            resolved = _resolve(entry.model, "loras")
            if resolved.sha256 and CONTEXT.trigger_words is not None:
                words += CONTEXT.trigger_words(resolved.sha256)
            if entry.strength_model == 0 and entry.strength_clip == 0:
                continue
            lora = self.loaded.get(resolved.path)
            if lora is None:
                lora = comfy.utils.load_torch_file(resolved.path, safe_load=True)
            kept[resolved.path] = lora
            model, clip = comfy.sd.load_lora_for_models(
                model, clip, lora, entry.strength_model, entry.strength_clip
            )
        self.loaded = kept  # only what this run used stays cached
        return model, clip, ", ".join(dict.fromkeys(w for w in words if w))


NODE_CLASS_MAPPINGS = {
    "HikazeCheckpointLoader": HikazeCheckpointLoader,
    "HikazeLoraPowerLoader": HikazeLoraPowerLoader,
    "HikazeDiffusionModelLoader": HikazeDiffusionModelLoader,
    "HikazeVAELoader": HikazeVAELoader,
    "HikazeSaveImage": HikazeSaveImage,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "HikazeCheckpointLoader": "Hikaze Checkpoint Loader",
    "HikazeLoraPowerLoader": "Hikaze LoRA Power Loader",
    "HikazeDiffusionModelLoader": "Hikaze Diffusion Model Loader",
    "HikazeVAELoader": "Hikaze VAE Loader",
    "HikazeSaveImage": "Hikaze Save Image",
}
