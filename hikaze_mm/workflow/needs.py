"""The models a ComfyUI workflow needs, read from the workflow alone (no ComfyUI needed).

A workflow comes in two shapes: the UI's (``{"nodes": [{id, type, widgets_values,
properties}], "models"?: [...]}``, what ComfyUI saves and embeds in a PNG's ``workflow``
chunk) and the API prompt (``{node_id: {"class_type", "inputs"}}``, the ``prompt`` chunk).
Either names its models through

* our loader nodes' payloads, by SHA-256;
* the file names in ComfyUI's core loaders (``ckpt_name``, ``lora_name``, ...);
* the workflow's own ``models`` list, and each node's ``properties.models``
  (``{name, url, hash, hash_type, directory}``, as ComfyUI's templates carry them);
* ``embedding:NAME`` in the prompts.

``needs_of`` lists each once. It never raises on an odd workflow: what cannot be read is
skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hikaze_mm.workflow.graph import EMBEDDING_RE, WEIGHT_TAIL_RE
from hikaze_mm.workflow.payload import PayloadError, parse_loras, parse_model

MAX_NODES = 5000
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")

# Our single-model loaders: their folder (the payload is their first widget).
HIKAZE_SINGLE = {
    "HikazeCheckpointLoader": "checkpoints",
    "HikazeDiffusionModelLoader": "diffusion_models",
    "HikazeVAELoader": "vae",
}
HIKAZE_LORAS = "HikazeLoraPowerLoader"
# ComfyUI's core loaders: each file input, its folder and its place among the widgets.
CORE_LOADERS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "CheckpointLoaderSimple": (("ckpt_name", "checkpoints", 0),),
    "CheckpointLoader": (("ckpt_name", "checkpoints", 1),),
    "UNETLoader": (("unet_name", "diffusion_models", 0),),
    "LoraLoader": (("lora_name", "loras", 0),),
    "LoraLoaderModelOnly": (("lora_name", "loras", 0),),
    "VAELoader": (("vae_name", "vae", 0),),
    "ControlNetLoader": (("control_net_name", "controlnet", 0),),
    "UpscaleModelLoader": (("model_name", "upscale_models", 0),),
    "CLIPLoader": (("clip_name", "text_encoders", 0),),
    "DualCLIPLoader": (("clip_name1", "text_encoders", 0), ("clip_name2", "text_encoders", 1)),
    "CLIPVisionLoader": (("clip_name", "clip_vision", 0),),
    "StyleModelLoader": (("style_model_name", "style_models", 0),),
}
TEXT_NODES = {"CLIPTextEncode": ("text", 0)}


@dataclass(frozen=True)
class Need:
    """One model a workflow needs."""

    node_id: str | None
    node_type: str | None
    folder: str  # ComfyUI's folder key
    name: str  # the file name (sub/x.safetensors), or the name a payload or list gives
    sha256: str | None = None  # when the workflow names the hash
    url: str | None = None  # when the workflow says where to get it


@dataclass(frozen=True)
class _Node:
    node_id: str
    node_type: str
    value: Any  # (input name, widget index) -> the value, see ``_values``
    models: Any  # the node's own ``properties.models``


def needs_of(workflow: Any) -> list[Need]:
    """Every model ``workflow`` (UI or API shape) needs, each once: the same hash, or the
    same folder and name (the workflow's list then adds its hash and URL to the loader's)."""
    if not isinstance(workflow, Mapping):
        return []
    found: list[Need] = []
    for node in _nodes(workflow):
        for need in _node_needs(node):
            _add(found, need)
    for need in _listed(workflow.get("models"), None, None):
        _add(found, need)
    return found


def _add(found: list[Need], need: Need) -> None:
    for n, known in enumerate(found):
        both = known.sha256 and need.sha256
        same_file = known.folder == need.folder and known.name.lower() == need.name.lower()
        if (both and known.sha256 == need.sha256) or (same_file and not both):
            found[n] = Need(
                known.node_id or need.node_id,
                known.node_type or need.node_type,
                known.folder,
                known.name,
                known.sha256 or need.sha256,
                known.url or need.url,
            )
            return
    found.append(need)


def _nodes(workflow: Mapping[str, Any]) -> Iterator[_Node]:
    nodes = workflow.get("nodes")
    if isinstance(nodes, list):  # the UI's shape
        for node in nodes[:MAX_NODES]:
            if isinstance(node, dict) and isinstance(node.get("type"), str):
                widgets = node.get("widgets_values")
                models = (node.get("properties") or {}).get("models")
                yield _Node(str(node.get("id")), node["type"], _widget(widgets), models)
        return
    for node_id, node in list(workflow.items())[:MAX_NODES]:  # the API prompt
        if isinstance(node, dict) and isinstance(node.get("class_type"), str):
            inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
            yield _Node(str(node_id), node["class_type"], _input(inputs), None)


def _widget(widgets: Any) -> Any:
    values = widgets if isinstance(widgets, list) else []

    def value(_name: str, index: int) -> Any:
        return values[index] if 0 <= index < len(values) else None

    return value


def _input(inputs: dict[str, Any]) -> Any:
    def value(name: str, _index: int) -> Any:
        return inputs.get(name)

    return value


def _node_needs(node: _Node) -> list[Need]:
    needs: list[Need] = []
    kind = node.node_type
    if kind in HIKAZE_SINGLE:
        needs += _payload_needs(node, HIKAZE_SINGLE[kind], single=True)
    elif kind == HIKAZE_LORAS:
        needs += _payload_needs(node, "loras", single=False)
    for name, folder, index in CORE_LOADERS.get(kind, ()):
        file = node.value(name, index)
        if isinstance(file, str) and file.strip():
            needs.append(Need(node.node_id, kind, folder, file.strip()))
    if kind in TEXT_NODES:
        text = node.value(*TEXT_NODES[kind])
        needs += _embeddings(node, text if isinstance(text, str) else "")
    needs += _listed(node.models, node.node_id, kind)
    return needs


def _payload_needs(node: _Node, folder: str, *, single: bool) -> list[Need]:
    payload = node.value("hikaze_payload", 0)
    try:
        refs = [parse_model(payload)] if single else [e.model for e in parse_loras(payload)]
    except PayloadError:
        return []
    needs = []
    for ref in refs:
        path_name = (ref.path or "").replace("\\", "/").rsplit("/", 1)[-1]
        name = path_name or ref.name or (ref.sha256 or "")[:10]
        needs.append(Need(node.node_id, node.node_type, folder, name, ref.sha256))
    return needs


def _embeddings(node: _Node, text: str) -> list[Need]:
    needs = []
    for match in EMBEDDING_RE.finditer(text):
        name = match.group(1).strip(",\n")
        tail = WEIGHT_TAIL_RE.match(name)
        name = tail.group(1) if tail else name
        if name:
            needs.append(Need(node.node_id, node.node_type, "embeddings", name))
    return needs


def _listed(models: Any, node_id: str | None, node_type: str | None) -> list[Need]:
    """A ``models`` list: ``{name, url, hash, hash_type, directory}`` each."""
    needs = []
    for item in models if isinstance(models, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        folder = item.get("directory") if isinstance(item.get("directory"), str) else "other"
        digest = item.get("hash")
        sha = None
        if str(item.get("hash_type", "sha256")).lower() == "sha256" and isinstance(digest, str):
            sha = digest.lower() if SHA256_RE.fullmatch(digest) else None
        url = item.get("url") if isinstance(item.get("url"), str) else None
        needs.append(Need(node_id, node_type, folder, item["name"], sha, url))
    return needs
