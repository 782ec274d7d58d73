"""``InspectService``: the models any image names, matched against the library.

An image made anywhere (A1111, Forge, ComfyUI, our own node) carries what made it: A1111's
infotext (a PNG ``parameters`` chunk, or EXIF ``UserComment`` in WebP and JPEG) and/or
ComfyUI's executed prompt. Each resource it names is matched to the library by its full
SHA-256, its AutoV2 (the first 10 hex digits), its AutoV3 (12 hex digits of the hash of a
safetensors file's tensors) or, for a ComfyUI graph that names files only, the file name.
The image is untrusted: ``credits.containers.read_metadata`` reads it with every limit, and
anything that is not a readable PNG, WebP or JPEG is a 400.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from hikaze_mm.credits.containers import read_metadata
from hikaze_mm.credits.infotext import parse_infotext
from hikaze_mm.database.interfaces import Library
from hikaze_mm.workflow.graph import LoaderUse, walk_any

HEX_RE = re.compile(r"[0-9a-fA-F]+")
# The parameters ``inspect`` answers with (besides ``extra``, A1111's other fields).
PARAMETERS = (
    "prompt",
    "negative_prompt",
    "steps",
    "sampler",
    "schedule_type",
    "cfg",
    "seed",
    "width",
    "height",
    "model",
    "model_hash",
)
ROLE_OF_KEY = {"model": "model", "lora": "lora", "embed": "embedding"}


class InspectService:
    def __init__(self, db: Library) -> None:
        self.db = db

    def inspect(self, data: bytes) -> dict[str, Any]:
        """``{"parameters": {...}, "resources": [{role, name, hash, weight, sha256,
        in_library, model}]}``; ImageMetadataError (400) for anything but an image."""
        meta = read_metadata(data)
        generation = walk_any(meta.prompt) if meta.prompt else None
        from_graph = (
            [self._match(_graph_resource(u)) for u in generation.uses] if generation else []
        )
        if meta.parameters:
            parsed = parse_infotext(meta.parameters)
            parameters = {key: parsed.get(key) for key in PARAMETERS}
            parameters["extra"] = parsed.get("extra") or {}
            resources = [self._match(r) for r in _infotext_resources(parsed)]
            _weights_from(resources, from_graph)
        else:
            parameters, resources = _graph_parameters(generation), from_graph
        parameters["width"] = parameters.get("width") or meta.width
        parameters["height"] = parameters.get("height") or meta.height
        parameters["format"] = meta.format
        return {"parameters": parameters, "resources": resources}

    # ------------------------------------------------------------ matching
    def _match(self, resource: dict[str, Any]) -> dict[str, Any]:
        sha = self._find(resource)
        resource = {k: v for k, v in resource.items() if k != "file"}
        model = self.db.models.get(sha) if sha else None
        summary = None
        if model is not None:
            summary = {k: model[k] for k in ("sha256", "name", "type", "path")}
        return {
            **resource,
            "sha256": summary["sha256"] if summary else None,
            "in_library": summary is not None,
            "model": summary,
        }

    def _find(self, resource: dict[str, Any]) -> str | None:
        """The library's model for a resource: by hash (full, AutoV2, AutoV3), else by
        the file name a ComfyUI graph gave; several candidates: the one named alike."""
        found: list[str] = []
        digest = (resource.get("hash") or "").strip()
        if HEX_RE.fullmatch(digest):
            if len(digest) == 12:
                found = self.db.models.find_by_autov3(digest)
            if not found and len(digest) >= 8:
                found = self.db.models.find_by_prefix(digest)
        if not found and resource.get("file"):
            found = self.db.models.with_file_name(resource["file"])
        if len(found) > 1:
            name = (resource.get("name") or "").lower()
            for sha in found:
                record = self.db.models.get(sha)
                if record and (record.get("name") or "").lower() == name:
                    return sha
        return found[0] if found else None


def _infotext_resources(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource A1111 text names: ``Hashes`` (Civitai's keys), ``Model hash``,
    ``Lora hashes``, ``TI hashes``; weights from ``<lora:name:w>`` in the prompt."""
    weights = _lora_weights(parsed.get("prompt") or "")
    seen: dict[tuple[str, str], dict[str, Any]] = {}

    def add(role: str, name: str, digest: str) -> None:
        key = (role, digest.lower())
        if digest and key not in seen:
            weight = weights.get(name.lower()) if role == "lora" else None
            seen[key] = {"role": role, "name": name, "hash": digest, "weight": weight}

    for key, digest in (parsed.get("hashes") or {}).items():
        kind, _, name = str(key).partition(":")
        role = ROLE_OF_KEY.get(kind)
        if role is not None and isinstance(digest, str):
            add(role, name or parsed.get("model") or "model", digest)
    if parsed.get("model_hash"):
        add("model", parsed.get("model") or "model", parsed["model_hash"])
    for name, digest in (parsed.get("lora_hashes") or {}).items():
        add("lora", name, digest)
    for name, digest in (parsed.get("ti_hashes") or {}).items():
        add("embedding", name, digest)
    return list(seen.values())


def _weights_from(resources: list[dict[str, Any]], graph: list[dict[str, Any]]) -> None:
    """The weights A1111 text leaves out (ours names LoRAs by hash only), from the
    ComfyUI graph the same image carries, model by model."""
    weights = {r["sha256"]: r["weight"] for r in graph if r["sha256"] and r["weight"] is not None}
    for resource in resources:
        if resource["weight"] is None and resource["sha256"] in weights:
            resource["weight"] = weights[resource["sha256"]]


LORA_TAG_RE = re.compile(r"<lora:([^:>]+):(-?\d+(?:\.\d+)?)")


def _lora_weights(prompt: str) -> dict[str, float]:
    return {name.lower(): float(weight) for name, weight in LORA_TAG_RE.findall(prompt)}


def _graph_parameters(generation: Any) -> dict[str, Any]:
    parameters: dict[str, Any] = dict.fromkeys(PARAMETERS)
    parameters["extra"] = {}
    if generation is not None:
        parameters.update(
            prompt=generation.prompt,
            negative_prompt=generation.negative_prompt,
            steps=generation.steps,
            sampler=generation.sampler_name,
            schedule_type=generation.scheduler,
            cfg=generation.cfg,
            seed=generation.seed,
        )
    return parameters


def _graph_resource(use: LoaderUse) -> dict[str, Any]:
    """A loader's use as a resource: our payloads name the hash; ComfyUI's, a file."""
    digest = use.ref.sha256 if use.ref is not None and use.ref.sha256 else None
    name = PurePath(use.name).stem if use.name else use.name
    resource = {"role": use.kind, "name": name, "hash": digest, "weight": use.weight}
    if digest is None:
        resource["file"] = use.name
    return resource
