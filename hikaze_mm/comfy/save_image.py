"""``HikazeSaveImage``: ComfyUI's Save Image, whose files carry the credits of their models.

Inputs as ``SaveImage`` (``images``, ``filename_prefix``, the hidden ``prompt`` and
``extra_pnginfo``) plus ``format`` (png, webp, jpeg) and ``quality``; the hidden
``unique_id`` is the node's own id in the prompt. Files land in ComfyUI's output folder
with its counter naming, and the UI shows them as it shows ``SaveImage``'s.

Each file carries A1111 infotext (``credits.infotext``): the sampler's values read from the
executed prompt (``graph.walk_generation``) and every model behind the image, credited by
the AutoV2 of its SHA-256 (our loaders' payloads by hash; ComfyUI's loaders' files and
``embedding:`` names through the library by path, never reading a file the library knows).
A model the library does not know is left out with one log line. A PNG keeps ComfyUI's
``prompt`` and ``workflow`` chunks (unless ComfyUI runs with ``--disable-metadata``).
Each saved file is recorded as a generation of its models (``CONTEXT.record_generation``).
No network call is ever made. A credit or record that fails is logged; the image is saved.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

from hikaze_mm.comfy.context import CATEGORY, CONTEXT
from hikaze_mm.comfy.credit_lookup import KnownModel
from hikaze_mm.credits.containers import save_image
from hikaze_mm.credits.infotext import Parameters, Resource, build_infotext
from hikaze_mm.credits.samplers import a1111_sampler
from hikaze_mm.workflow.graph import Generation, LoaderUse, walk_generation

log = logging.getLogger("hikaze_mm.comfy")

FORMATS = ["png", "webp", "jpeg"]
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
DEFAULT_QUALITY = 95


# ---------------------------------------------------------------- credits
def known_model(use: LoaderUse) -> KnownModel | None:
    """The library's model for a loader use: by the payload's hash, else by its file."""
    ctx = CONTEXT
    if use.ref is not None and use.ref.sha256 and ctx.credit_model is not None:
        found = ctx.credit_model(use.ref.sha256)
        if found is not None:
            return found
    path = None
    if use.ref is not None and use.ref.path and os.path.isfile(use.ref.path):
        path = use.ref.path
    elif use.name and ctx.find_file is not None:
        path = ctx.find_file(use.folder, use.name)
    if path is None or ctx.credit_file is None:
        return None
    return ctx.credit_file(path)


def resources_of(uses: list[LoaderUse]) -> list[Resource]:
    """Each use the library knows, as a credited resource (each model and role once)."""
    resources: dict[tuple[str, str], Resource] = {}
    for use in uses:
        found = known_model(use)
        if found is None:
            log.info(
                "hikaze: %s %r is not in the library: the image does not credit it",
                use.kind,
                use.name,
            )
            continue
        weight = None if use.kind == "model" else use.weight
        resource = Resource(use.kind, found.name, found.sha256, weight, found.civitai)
        resources.setdefault((found.sha256, use.kind), resource)
    return list(resources.values())


def parameters_of(found: Generation) -> Parameters:
    sampler, schedule = None, None
    if found.sampler_name:
        sampler, schedule = a1111_sampler(found.sampler_name, found.scheduler)
    return Parameters(
        prompt=found.prompt,
        negative_prompt=found.negative_prompt,
        steps=found.steps,
        sampler=sampler,
        schedule_type=schedule,
        cfg=found.cfg,
        seed=found.seed,
    )


def credits_for(prompt: Any, node_id: Any) -> tuple[Parameters, list[Resource]]:
    """What the images of node ``node_id`` credit; nothing (and a log line) on a failure."""
    found = walk_generation(prompt, node_id)
    try:
        return parameters_of(found), resources_of(found.uses)
    except Exception as exc:  # a library error must not lose the user's image
        log.warning("hikaze: the image's credits could not be read: %s", exc)
        return parameters_of(found), []


def record(file_rel: str, params: Parameters, resources: list[Resource], fmt: str) -> None:
    if CONTEXT.record_generation is None:
        return
    try:
        CONTEXT.record_generation(file_rel, params, resources, {"format": fmt})
    except Exception as exc:  # the image is saved; only its record is lost
        log.warning("hikaze: could not record the generation of %s: %s", file_rel, exc)


# ---------------------------------------------------------------- the node
def to_pil(image: Any, fmt: str) -> Any:
    """One ComfyUI image tensor (H, W, C floats in 0..1) as a Pillow image."""
    import numpy as np
    from PIL import Image

    pixels = np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels)
    if fmt == "jpeg" and picture.mode not in ("RGB", "L"):
        picture = picture.convert("RGB")
    return picture


class HikazeSaveImage:
    """Save Image, with A1111 infotext crediting every model by hash (Civitai reads it)."""

    CATEGORY = CATEGORY
    FUNCTION = "save_images"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    DESCRIPTION = (
        "Saves the images to your ComfyUI output folder, with A1111 parameters that credit "
        "every model by its hash (Civitai recognises them), and records them in the library."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": (
                    "STRING",
                    {"default": "ComfyUI", "tooltip": "The prefix for the files, as Save Image."},
                ),
                "format": (FORMATS, {"default": "png"}),
                "quality": (
                    "INT",
                    {
                        "default": DEFAULT_QUALITY,
                        "min": 1,
                        "max": 100,
                        "step": 1,
                        "tooltip": "WebP and JPEG quality (PNG is lossless).",
                    },
                ),
            },
            "hidden": {
                "prompt": "PROMPT",
                "extra_pnginfo": "EXTRA_PNGINFO",
                "unique_id": "UNIQUE_ID",
            },
        }

    def save_images(
        self,
        images: Any,
        filename_prefix: str = "ComfyUI",
        format: str = "png",  # ComfyUI passes inputs by name
        quality: int = DEFAULT_QUALITY,
        prompt: Any = None,
        extra_pnginfo: Any = None,
        unique_id: Any = None,
    ) -> dict[str, Any]:
        import folder_paths
        from comfy.cli_args import args

        fmt = format if format in EXTENSIONS else "png"
        output_dir = folder_paths.get_output_directory()
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, output_dir, images[0].shape[1], images[0].shape[0]
        )
        params, resources = credits_for(prompt, unique_id)
        keep = not args.disable_metadata
        results = []
        for batch_number, image in enumerate(images):
            picture = to_pil(image, fmt)
            own = replace(params, width=picture.width, height=picture.height)
            name = filename.replace("%batch_num%", str(batch_number))
            file = f"{name}_{counter:05}_.{EXTENSIONS[fmt]}"
            path = os.path.join(folder, file)
            text = build_infotext(own, resources)
            save_image(
                picture,
                path,
                fmt,
                int(quality),
                text,
                prompt if keep else None,
                extra_pnginfo if keep else None,
            )
            rel = os.path.relpath(path, output_dir).replace(os.sep, "/")
            record(rel, own, resources, fmt)
            results.append({"filename": file, "subfolder": subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results}}
