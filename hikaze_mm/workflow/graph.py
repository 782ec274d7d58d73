"""What made an image, read from ComfyUI's executed prompt (no ComfyUI needed here).

ComfyUI hands an output node the prompt it ran: ``{node_id: {"class_type", "inputs"}}``,
where an input is a literal or a link ``[node_id, output_index]``. ``walk_generation``
goes back from the save node's ``images`` to the first sampler that made its latent
(through decoders, upscalers and any node with an image or latent input), then

* the sampler's own values: ``KSampler``/``KSamplerAdvanced`` directly; ``SamplerCustom``
  and ``SamplerCustomAdvanced`` through ``RandomNoise``, ``KSamplerSelect``, the sigmas
  node (``BasicScheduler``, ``KarrasScheduler``...) and the guider (``CFGGuider``,
  ``BasicGuider``...);
* its ``model`` chain: every model loader and LoRA loader on it (ours by payload, ComfyUI's
  by file name);
* its positive and negative conditioning back to the text encoders (their text makes the
  prompts; ``embedding:NAME`` in it names an embedding), and each encoder's ``clip`` chain
  for LoRAs applied to CLIP only.

A widget value may itself be a link to a primitive node (one literal input). The walk
never raises: a cycle, a dangling link or an odd value is skipped, and what was found is
returned.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hikaze_mm.workflow.payload import ModelRef, PayloadError, parse_loras, parse_model

MAX_NODES = 5000  # a walk visits at most this many nodes
MAX_HOPS = 8  # a widget value followed through at most this many primitive nodes

SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
# The sigmas nodes that name their schedule by class rather than by a ``scheduler`` input.
SCHEDULER_CLASSES = {
    "KarrasScheduler": "karras",
    "ExponentialScheduler": "exponential",
    "PolyexponentialScheduler": "polyexponential",
    "LaplaceScheduler": "laplace",
    "BetaSamplingScheduler": "beta",
    "VPScheduler": "vp",
    "SDTurboScheduler": "sgm_uniform",
    "AlignYourStepsScheduler": "align_your_steps",
    "GITSScheduler": "gits",
}
IMAGE_PREFIXES = ("image", "samples", "latent", "pixels")
TEXT_INPUTS = ("text", "text_g", "text_l", "clip_l", "clip_g", "t5xxl", "prompt")
LITERAL_INPUTS = ("value", "text", "string", "seed", "int", "float", "number")
# Inputs a conditioning walk never follows: they lead to images, models or encoders'
# inputs, never to the conditioning itself.
NOT_CONDITIONING = frozenset(
    {"clip", "model", "vae", "mask", "control_net", "clip_vision", "clip_vision_output",
     "style_model", "image", "images", "pixels", "samples", "latent", "latent_image", "noise"}
)  # fmt: skip
CHECKPOINT_LOADERS = {"CheckpointLoaderSimple": "ckpt_name", "CheckpointLoader": "ckpt_name"}
EMBEDDING_RE = re.compile(r"(?<![\w:])embedding:([^\s,()\[\]{}<>|]+)", re.IGNORECASE)
WEIGHT_TAIL_RE = re.compile(r"^(.+):(-?\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class LoaderUse:
    """One model an image used, as its loader named it."""

    kind: str  # "model", "lora" or "embedding" (credits.keys.ROLES)
    folder: str  # ComfyUI's folder key: checkpoints, diffusion_models, loras, embeddings
    name: str  # the file name the node gave (sub/x.safetensors), or the payload's name
    ref: ModelRef | None = None  # our loaders: the payload's model (sha256 authoritative)
    weight: float | None = None  # LoRA strength on the model (on CLIP when model is 0)
    node_id: str | None = None


@dataclass
class Generation:
    """The sampler's values and the models behind an image (ComfyUI's names)."""

    sampler_node: str | None = None
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler_name: str | None = None
    scheduler: str | None = None
    cfg: float | None = None
    seed: int | None = None
    uses: list[LoaderUse] = field(default_factory=list)


# ---------------------------------------------------------------- values
def is_link(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
    )


class Graph:
    """The prompt with safe access: a missing node or odd entry reads as nothing."""

    def __init__(self, prompt: Any) -> None:
        self.nodes: Mapping[str, Any] = prompt if isinstance(prompt, Mapping) else {}

    def node(self, node_id: Any) -> dict[str, Any] | None:
        node = self.nodes.get(str(node_id))
        return node if isinstance(node, dict) else None

    def class_type(self, node_id: Any) -> str:
        node = self.node(node_id)
        value = node.get("class_type") if node else None
        return value if isinstance(value, str) else ""

    def inputs(self, node_id: Any) -> dict[str, Any]:
        node = self.node(node_id)
        value = node.get("inputs") if node else None
        return value if isinstance(value, dict) else {}

    def links(self, node_id: Any) -> Iterator[tuple[str, str, int]]:
        """``(input name, source node id, output index)`` of each linked input."""
        for name, value in self.inputs(node_id).items():
            if is_link(value):
                yield name, str(value[0]), value[1]

    def value(self, node_id: Any, name: str) -> Any:
        """An input's literal value, through links to primitive nodes; None if none."""
        value = self.inputs(node_id).get(name)
        for _ in range(MAX_HOPS):
            if not is_link(value):
                return value
            value = self._literal(str(value[0]))
        return None

    def _literal(self, node_id: str) -> Any:
        inputs = self.inputs(node_id)
        literals = {k: v for k, v in inputs.items() if not is_link(v)}
        if len(literals) == 1 and not any(is_link(v) for v in inputs.values()):
            return next(iter(literals.values()))
        for name in LITERAL_INPUTS:
            if name in inputs:
                return inputs[name]
        return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------- walking
def bfs(graph: Graph, starts: list[str], follow: Callable[[str], list[str]]) -> Iterator[str]:
    """Node ids reached from ``starts`` breadth first, each once; ``follow(id)`` gives the
    next ids. At most MAX_NODES."""
    seen: set[str] = set()
    queue = deque(starts)
    while queue and len(seen) < MAX_NODES:
        node_id = queue.popleft()
        if node_id in seen or graph.node(node_id) is None:
            continue
        seen.add(node_id)
        yield node_id
        queue.extend(follow(node_id))


def is_sampler(graph: Graph, node_id: str) -> bool:
    if graph.class_type(node_id) in SAMPLERS:
        return True
    names = graph.inputs(node_id).keys()
    return {"model", "positive", "negative", "steps"} <= set(names)  # KSampler-like


def find_sampler(graph: Graph, save_id: str) -> str | None:
    """The first sampler behind the save node's ``images``."""

    def follow(node_id: str) -> list[str]:
        return [
            source for name, source, _ in graph.links(node_id) if name.startswith(IMAGE_PREFIXES)
        ]

    for node_id in bfs(graph, [str(save_id)], follow):
        if node_id != str(save_id) and is_sampler(graph, node_id):
            return node_id
    return None


def linked(graph: Graph, node_id: str, name: str) -> tuple[str, int] | None:
    value = graph.inputs(node_id).get(name)
    return (str(value[0]), value[1]) if is_link(value) else None


def walk_generation(prompt: Any, save_id: Any) -> Generation:
    """Everything ``walk_generation`` can find for the images of node ``save_id``."""
    graph = Graph(prompt)
    found = Generation()
    try:
        sampler = find_sampler(graph, str(save_id))
        if sampler is None:
            return found
        found.sampler_node = sampler
        model, positive, negative = read_sampler(graph, sampler, found)
        found.uses.extend(model_uses(graph, model))
        pos_texts, pos_encoders = conditioning(graph, positive)
        neg_texts, neg_encoders = conditioning(graph, negative)
        found.prompt = ", ".join(pos_texts)
        found.negative_prompt = ", ".join(neg_texts)
        found.uses.extend(clip_lora_uses(graph, pos_encoders + neg_encoders, found.uses))
        found.uses.extend(embedding_uses(pos_texts + neg_texts))
    except (RecursionError, TypeError, ValueError, AttributeError):  # a graph we cannot read
        pass
    return found


def walk_any(prompt: Any) -> Generation:
    """``walk_generation`` for an image whose saving node is not known (an image made
    elsewhere): from each node that nothing links to and that takes an image, the first
    whose walk finds a sampler. Nothing found: an empty Generation."""
    graph = Graph(prompt)
    try:
        linked_to = {source for node_id in graph.nodes for _, source, _ in graph.links(node_id)}
        sinks = [
            node_id
            for node_id in list(graph.nodes)[:MAX_NODES]
            if node_id not in linked_to
            and any(name.startswith(IMAGE_PREFIXES) for name, _, _ in graph.links(node_id))
        ]
    except (TypeError, ValueError, AttributeError):
        return Generation()
    for node_id in sinks:
        found = walk_generation(prompt, node_id)
        if found.sampler_node is not None:
            return found
    return Generation()


# ---------------------------------------------------------------- the sampler
def read_sampler(
    graph: Graph, sampler: str, found: Generation
) -> tuple[str | None, tuple[str, int] | None, tuple[str, int] | None]:
    """Fill the sampler's values; its model node and positive and negative links."""
    model = linked(graph, sampler, "model")
    positive, negative = linked(graph, sampler, "positive"), linked(graph, sampler, "negative")
    seed = graph.value(sampler, "seed")
    found.seed = as_int(seed if seed is not None else graph.value(sampler, "noise_seed"))
    found.steps = as_int(graph.value(sampler, "steps"))
    found.cfg = as_float(graph.value(sampler, "cfg"))
    found.sampler_name = as_text(graph.value(sampler, "sampler_name"))
    found.scheduler = as_text(graph.value(sampler, "scheduler"))
    select = linked(graph, sampler, "sampler")
    if select is not None:
        found.sampler_name = as_text(graph.value(select[0], "sampler_name"))
    sigmas = linked(graph, sampler, "sigmas")
    if sigmas is not None:
        read_sigmas(graph, sigmas[0], found)
    noise = linked(graph, sampler, "noise")
    if noise is not None:
        found.seed = as_int(graph.value(noise[0], "noise_seed"))
    guider = linked(graph, sampler, "guider")
    if guider is not None:
        model, positive, negative = read_guider(graph, guider[0], found)
    return (model[0] if model else None), positive, negative


def read_sigmas(graph: Graph, start: str, found: Generation) -> None:
    """Steps and schedule from the first sigmas node that has steps (through splits)."""

    def follow(node_id: str) -> list[str]:
        return [source for name, source, _ in graph.links(node_id) if name.startswith("sigmas")]

    for node_id in bfs(graph, [start], follow):
        steps = as_int(graph.value(node_id, "steps"))
        if steps is None:
            continue
        found.steps = steps
        found.scheduler = as_text(graph.value(node_id, "scheduler")) or SCHEDULER_CLASSES.get(
            graph.class_type(node_id)
        )
        return


def read_guider(
    graph: Graph, guider: str, found: Generation
) -> tuple[tuple[str, int] | None, tuple[str, int] | None, tuple[str, int] | None]:
    """CFGGuider (cfg, positive, negative), BasicGuider (conditioning), DualCFGGuider..."""
    cfg = graph.value(guider, "cfg")
    found.cfg = as_float(cfg if cfg is not None else graph.value(guider, "cfg_conds"))
    positive = None
    for name in ("positive", "conditioning", "cond1"):
        positive = positive or linked(graph, guider, name)
    return linked(graph, guider, "model"), positive, linked(graph, guider, "negative")


# ---------------------------------------------------------------- loaders
def _payload_uses(class_type: str, text: Any, via_clip: bool) -> list[LoaderUse]:
    folders = {
        "HikazeCheckpointLoader": "checkpoints",
        "HikazeDiffusionModelLoader": "diffusion_models",
    }
    try:
        if class_type in folders and not via_clip:
            ref = parse_model(text)
            return [LoaderUse("model", folders[class_type], _ref_name(ref), ref)]
        if class_type == "HikazeLoraPowerLoader":
            uses = []
            for entry in parse_loras(text):
                weight = _lora_weight(entry.strength_model, entry.strength_clip, via_clip)
                if entry.enabled and weight is not None:
                    uses.append(
                        LoaderUse("lora", "loras", _ref_name(entry.model), entry.model, weight)
                    )
            return uses
    except PayloadError:
        return []
    return []


def _ref_name(ref: ModelRef) -> str:
    return ref.name or (ref.path or "").replace("\\", "/").rsplit("/", 1)[-1]


def _lora_weight(strength_model: Any, strength_clip: Any, via_clip: bool) -> float | None:
    """The weight a LoRA is credited with: its model strength, or its CLIP strength when
    it reaches the image only through CLIP; None when it changes nothing there."""
    model = as_float(strength_model)
    clip = as_float(strength_clip)
    if not via_clip and model:
        return model
    if clip:
        return clip
    return None


def node_uses(graph: Graph, node_id: str, *, via_clip: bool = False) -> list[LoaderUse]:
    """The models node ``node_id`` loads (only LoRAs when reached through a CLIP chain)."""
    class_type = graph.class_type(node_id)
    if class_type.startswith("Hikaze"):
        uses = _payload_uses(class_type, graph.value(node_id, "hikaze_payload"), via_clip)
        return [LoaderUse(u.kind, u.folder, u.name, u.ref, u.weight, node_id) for u in uses]
    lora = as_text(graph.value(node_id, "lora_name"))
    if lora is not None:
        clip = graph.value(node_id, "strength_clip") if "clip" in graph.inputs(node_id) else 0
        weight = _lora_weight(graph.value(node_id, "strength_model"), clip, via_clip)
        return [] if weight is None else [LoaderUse("lora", "loras", lora, None, weight, node_id)]
    if via_clip:
        return []
    for key, folder in (("ckpt_name", "checkpoints"), ("unet_name", "diffusion_models")):
        name = as_text(graph.value(node_id, key))
        if name is not None:
            return [LoaderUse("model", folder, name, None, None, node_id)]
    return []


def model_uses(graph: Graph, model: str | None) -> list[LoaderUse]:
    """Every loader on the sampler's model chain (through any node's ``model*`` inputs)."""

    def follow(node_id: str) -> list[str]:
        return [source for name, source, _ in graph.links(node_id) if name.startswith("model")]

    uses: list[LoaderUse] = []
    for node_id in bfs(graph, [model] if model else [], follow):
        uses.extend(node_uses(graph, node_id))
    return uses


def clip_lora_uses(graph: Graph, encoders: list[str], known: list[LoaderUse]) -> list[LoaderUse]:
    """LoRAs on the encoders' ``clip`` chains that the model chain did not already give."""
    done = {use.node_id for use in known}

    def follow(node_id: str) -> list[str]:
        return [source for name, source, _ in graph.links(node_id) if name == "clip"]

    starts = [link[0] for link in (linked(graph, e, "clip") for e in encoders) if link]
    uses: list[LoaderUse] = []
    for node_id in bfs(graph, starts, follow):
        if node_id not in done:
            uses.extend(node_uses(graph, node_id, via_clip=True))
    return uses


# ---------------------------------------------------------------- conditioning
def encoder_texts(graph: Graph, node_id: str) -> list[str] | None:
    """A text encoder's texts (a node with a linked ``clip`` and a text input), else None."""
    inputs = graph.inputs(node_id)
    if not is_link(inputs.get("clip")) or not any(name in inputs for name in TEXT_INPUTS):
        return None
    texts = (as_text(graph.value(node_id, name)) for name in TEXT_INPUTS if name in inputs)
    return [text.strip() for text in texts if text and text.strip()]


def _conditioning_sources(graph: Graph, node_id: str, index: int) -> list[tuple[str, int]]:
    if graph.class_type(node_id) == "ConditioningZeroOut":
        return []  # an empty conditioning: its source's text is not this prompt
    links = list(graph.links(node_id))
    names = {name for name, _, _ in links}
    if {"positive", "negative"} <= names:  # a node that outputs (positive, negative)
        wanted = "positive" if index == 0 else "negative"
        return [(source, out) for name, source, out in links if name == wanted]
    return [(source, out) for name, source, out in links if name not in NOT_CONDITIONING]


def conditioning(graph: Graph, start: tuple[str, int] | None) -> tuple[list[str], list[str]]:
    """The texts (each once, in order) and encoder node ids behind a conditioning link."""
    texts: list[str] = []
    encoders: list[str] = []
    seen: set[tuple[str, int]] = set()
    queue = deque([start] if start else [])
    while queue and len(seen) < MAX_NODES:
        node_id, index = queue.popleft()
        if (node_id, index) in seen or graph.node(node_id) is None:
            continue
        seen.add((node_id, index))
        found = encoder_texts(graph, node_id)
        if found is None:
            queue.extend(_conditioning_sources(graph, node_id, index))
            continue
        if node_id not in encoders:
            encoders.append(node_id)
        texts.extend(text for text in found if text not in texts)
    return texts, encoders


def embedding_uses(texts: list[str]) -> list[LoaderUse]:
    """``embedding:NAME`` (or ``(embedding:NAME:1.2)``) in the prompts, each name once."""
    uses: dict[str, LoaderUse] = {}
    for text in texts:
        for match in EMBEDDING_RE.finditer(text):
            name, weight = match.group(1).strip(",\n"), None
            tail = WEIGHT_TAIL_RE.match(name)
            if tail is not None:
                name, weight = tail.group(1), as_float(tail.group(2))
            if name and name.lower() not in uses:
                uses[name.lower()] = LoaderUse("embedding", "embeddings", name, None, weight)
    return list(uses.values())
