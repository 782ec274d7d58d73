"""``GenerationsService``: what each model made, as HikazeSaveImage recorded it.

The node records each image it saves (its file relative to ComfyUI's output folder, the
sampler's parameters, the models it used). The API lists a model's generations newest
first, serves their files (only from the output folder; a file the user deleted is
``missing``, never an error) and turns one into a model image (a cover, say).

The output folder is the configuration's (``HIKAZE_OUTPUT_DIR``, or ComfyUI's, which the
plugin sets), else the one ComfyUI last told the library (state ``comfy_output_dir``), so
that a standalone ``hikaze-mm serve`` on the same library serves them too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from hikaze_mm.database import normalize_sha256
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import NotFoundError, ValidationError
from hikaze_mm.images import public_name
from hikaze_mm.library.images_service import (
    PENDING_CONTENT_TYPES,
    ImageFile,
    ImagesService,
    read_image_file,
)

log = logging.getLogger("hikaze_mm.generations")

OUTPUT_DIR_KEY = "comfy_output_dir"
ROLES = ("model", "lora", "embedding")
# The columns of a generation; the node's other parameters go in ``params``.
COLUMNS = ("prompt", "negative_prompt", "seed", "steps", "sampler", "cfg", "width", "height")
MAX_PAGE = 200


def relative_file(file: str) -> str:
    """A saved image's path relative to the output folder, '/'-separated; ValidationError
    for an absolute path or one that climbs out."""
    parts = PurePosixPath(file.replace(os.sep, "/")).parts
    if not parts or file.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise ValidationError(f"not a path inside the output folder: {file!r}")
    return "/".join(parts)


class GenerationsService:
    def __init__(self, db: Library, model_images: ImagesService, output_dir: Path | None) -> None:
        """``model_images`` is the ``ImagesService`` that stores a model's images."""
        self.db = db
        self.model_images = model_images
        self._output_dir = output_dir

    # ------------------------------------------------------------ the output folder
    def output_dir(self) -> Path | None:
        if self._output_dir is not None:
            return self._output_dir
        remembered = (self.db.state.get(OUTPUT_DIR_KEY) or {}).get("path")
        return Path(remembered) if isinstance(remembered, str) and remembered else None

    def remember_output_dir(self, folder: Path) -> None:
        """ComfyUI's output folder, for this process and for a later ``serve``."""
        self._output_dir = folder.resolve()
        if not self.db.read_only:
            self.db.state.set(OUTPUT_DIR_KEY, {"path": str(self._output_dir)})

    # ------------------------------------------------------------ recording
    def record(
        self, file: str, params: Mapping[str, Any], resources: Sequence[Mapping[str, Any]]
    ) -> int:
        """Record one saved image: ``file`` relative to the output folder, the sampler's
        ``params`` (``prompt``, ``negative_prompt``, ``seed``, ``steps``, ``sampler``,
        ``cfg``, ``width``, ``height``; any other key is kept in ``params``) and the
        models it used (``{sha256, role, name, weight}``); returns its id."""
        record: dict[str, Any] = {name: params.get(name) for name in COLUMNS}
        record["file"] = relative_file(file)
        record["params"] = {k: v for k, v in params.items() if k not in COLUMNS}
        used = []
        for resource in resources:
            if resource.get("role") not in ROLES:
                raise ValidationError(f"unknown resource role {resource.get('role')!r}")
            used.append({**resource, "sha256": normalize_sha256(resource.get("sha256"))})
        return self.db.generations.add(record, used)

    # ------------------------------------------------------------ reading
    def for_model(self, sha256: str, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """``{total, items}``: the model's generations, newest first; each with its
        ``image_url`` and whether its file is ``missing``."""
        sha = normalize_sha256(sha256)
        if not self.db.models.exists(sha):
            raise NotFoundError(f"no model {sha}")
        total, page = self.db.generations.for_model(sha, offset, min(limit, MAX_PAGE))
        folder = self.output_dir()
        return {"total": total, "items": [self._item(g, folder) for g in page]}

    def _item(self, generation: dict[str, Any], folder: Path | None) -> dict[str, Any]:
        item = {k: v for k, v in generation.items() if k not in ("file", "params")}
        item["file"] = generation["file"]
        item["image_url"] = f"api/generations/{generation['id']}/image"
        item["missing"] = self._path_in(folder, generation["file"]) is None
        return item

    @staticmethod
    def _path_in(folder: Path | None, file: str) -> Path | None:
        """The file inside ``folder`` (symlinks resolved), or None: no folder, gone, or
        outside it."""
        if folder is None:
            return None
        base = folder.resolve()
        try:
            path = (base / file).resolve()
        except (OSError, RuntimeError):
            return None
        return path if path.is_relative_to(base) and path.is_file() else None

    def _file_of(self, generation_id: int) -> Path:
        generation = self.db.generations.get(generation_id)
        if generation is None:
            raise NotFoundError(f"no generation {generation_id}")
        path = self._path_in(self.output_dir(), generation["file"])
        if path is None:
            raise NotFoundError(f"the image of generation {generation_id} is missing")
        return path

    def image(self, generation_id: int, if_none_match: str | None = None) -> ImageFile:
        """The saved image, only from the output folder (404 when it is gone)."""
        path = self._file_of(generation_id)
        content_type = PENDING_CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise NotFoundError(f"generation {generation_id} is not an image")
        return read_image_file(path, content_type, if_none_match)

    # ------------------------------------------------------------ a model's image
    def add_to_model(self, generation_id: int, sha256: str) -> dict[str, Any]:
        """Store the image as one of the model's images (three tiers); the model must
        exist. Answers ``{sha256, seq, name, images}``."""
        sha = self.model_images.require_model(sha256)
        path = self._file_of(generation_id)
        added = self.model_images.upload(sha, path.read_bytes())
        names = self.model_images.sample_names(sha)
        log.info(
            "generation %s added to %s as %s", generation_id, sha, public_name(sha, added["seq"])
        )
        return {**added, "images": names}
