"""Nodes sent to the workflow from the "Models" sidebar, in ComfyUI's real frontend
(``tests/comfyui_harness.py``: ``COMFYUI_DIR`` and ``COMFYUI_PYTHON`` must be set, else
skipped with one line), and the sidebar's ``<lora:FILESTEM:WEIGHT>`` of a renamed LoRA:

- a checkpoint, a LoRA and a VAE sent one after the other land beside each other (their
  bounding boxes do not overlap, with the nodes already there neither);
- a new LoRA loader is wired between the checkpoint loader and the nodes it fed when there
  is exactly one such chain; with none or two, the wiring is left alone;
- the sidebar copies the file's stem of a LoRA whose display name differs from it (the
  manager's card menu is tested in tests/test_ui_lora_string.py).

The ComfyUI, its library and the browser are test_comfyui_ui.py's fixtures (one ComfyUI
for this module).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import test_comfyui_ui as comfy_ui
from tests.browser import requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium]

library = comfy_ui.library
page = comfy_ui.page

Library = comfy_ui.Library

# The graph as plain data: each node's id, type, box and input links (origin id, origin
# output type); links are read through whatever the frontend's graph offers.
GRAPH_JS = """() => {
  const g = app.graph;
  const link = (id) => id == null ? null
    : (g.getLink ? g.getLink(id) : g.links instanceof Map ? g.links.get(id) : g.links[id]);
  return g.nodes.map((n) => ({
    id: n.id,
    type: n.type,
    box: Array.from(n.getBounding()).slice(0, 4),
    inputs: Object.fromEntries((n.inputs || []).map((slot) => {
      const l = link(slot.link);
      const origin = l && g.getNodeById(l.origin_id);
      return [slot.name, l ? [l.origin_id, origin.outputs[l.origin_slot].type] : null];
    })),
    fed: Object.fromEntries(
      (n.outputs || []).map((slot) => [slot.type, (slot.links || []).length])),
  }));
}"""

# A checkpoint loader whose MODEL feeds a KSampler and whose CLIP feeds two text encoders,
# at x; the ids [loader, sampler, positive, negative].
CHAIN_JS = """([x, y]) => {
  let below = y;
  const add = (type, dx) => {
    const node = LiteGraph.createNode(type);
    node.pos = [x + dx, dx ? below : y];
    if (dx) below += node.size[1] + 80;
    app.graph.add(node);
    return node;
  };
  const loader = add("HikazeCheckpointLoader", 0);
  const sampler = add("KSampler", 420);
  const positive = add("CLIPTextEncode", 420);
  const negative = add("CLIPTextEncode", 420);
  loader.connect(loader.findOutputSlot("MODEL"), sampler, sampler.findInputSlot("model"));
  for (const encoder of [positive, negative]) {
    loader.connect(loader.findOutputSlot("CLIP"), encoder, encoder.findInputSlot("clip"));
  }
  app.canvas.deselectAll();
  app.canvas.setDirty(true, true);
  return [loader.id, sampler.id, positive.id, negative.id];
}"""


def graph(pg: Any) -> dict[int, dict[str, Any]]:
    return {node["id"]: node for node in pg.evaluate(GRAPH_JS)}


def send(pg: Any, sidebar: Any, lib: Library, name: str, nodes_after: int) -> None:
    """Press "send to workflow" on the card of ``name``; wait for the graph's new size."""
    pg.evaluate("() => app.canvas.deselectAll()")
    sidebar.locator(f'.hkz-card-item[data-sha256="{lib.sha(name)}"] .hkz-send').click()
    pg.wait_for_function("(n) => app.graph.nodes.length === n", arg=nodes_after)


def the_node(nodes: dict[int, dict[str, Any]], node_type: str) -> dict[str, Any]:
    (node,) = [n for n in nodes.values() if n["type"] == node_type]
    return node


def overlapping(nodes: dict[int, dict[str, Any]]) -> list[tuple[int, int]]:
    found = []
    boxes = sorted((n["id"], n["box"]) for n in nodes.values())
    for i, (a, (ax, ay, aw, ah)) in enumerate(boxes):
        for b, (bx, by, bw, bh) in boxes[i + 1 :]:
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                found.append((a, b))
    return found


def lora_payload_shas(pg: Any, node_id: int) -> list[str]:
    pg.wait_for_function(
        "(id) => app.graph.getNodeById(id).widgets.find((w) => w.name === 'hikaze_payload').value",
        arg=node_id,
    )
    text = pg.evaluate(
        "(id) => app.graph.getNodeById(id).widgets.find((w) => w.name === 'hikaze_payload').value",
        node_id,
    )
    return [entry["sha256"] for entry in json.loads(text)["loras"]]


def test_sent_nodes_land_beside_each_other(page: Any, library: Library) -> None:
    sidebar = comfy_ui.open_sidebar(page)
    # A node already on the canvas, where the first sent node would land.
    comfy_ui.add_node(page, "KSampler", 300, 200)
    send(page, sidebar, library, "aurora_xl_checkpoint", 2)
    send(page, sidebar, library, "ink_style_lora", 3)
    send(page, sidebar, library, "clear_vae", 4)
    nodes = graph(page)
    assert overlapping(nodes) == []
    # No chain (the checkpoint loader feeds nothing): the LoRA loader is not wired.
    lora = the_node(nodes, "HikazeLoraPowerLoader")
    assert lora["inputs"]["model"] is None and lora["inputs"]["clip"] is None
    assert lora_payload_shas(page, lora["id"]) == [library.sha("ink_style_lora")]


def test_a_new_lora_loader_joins_the_one_chain(page: Any, library: Library) -> None:
    sidebar = comfy_ui.open_sidebar(page)
    loader, sampler, positive, negative = page.evaluate(CHAIN_JS, [100, 100])
    assert overlapping(graph(page)) == []
    send(page, sidebar, library, "ink_style_lora", 5)
    nodes = graph(page)
    lora = the_node(nodes, "HikazeLoraPowerLoader")
    assert lora["inputs"]["model"] == [loader, "MODEL"]
    assert lora["inputs"]["clip"] == [loader, "CLIP"]
    assert nodes[sampler]["inputs"]["model"] == [lora["id"], "MODEL"]
    assert nodes[positive]["inputs"]["clip"] == [lora["id"], "CLIP"]
    assert nodes[negative]["inputs"]["clip"] == [lora["id"], "CLIP"]
    assert nodes[loader]["fed"]["MODEL"] == 1 and nodes[loader]["fed"]["CLIP"] == 1
    assert overlapping(nodes) == []
    assert lora_payload_shas(page, lora["id"]) == [library.sha("ink_style_lora")]
    # The prompt runs through the LoRA loader: the sampler's model comes from it.
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert prompt[str(sampler)]["inputs"]["model"] == [str(lora["id"]), 0]


def test_two_chains_leave_the_wiring_alone(page: Any, library: Library) -> None:
    sidebar = comfy_ui.open_sidebar(page)
    first = page.evaluate(CHAIN_JS, [100, 100])
    second = page.evaluate(CHAIN_JS, [100, 2000])
    before = graph(page)
    assert overlapping(before) == []
    send(page, sidebar, library, "detail_tweaker_lora", 9)
    nodes = graph(page)
    lora = the_node(nodes, "HikazeLoraPowerLoader")
    assert lora["inputs"]["model"] is None and lora["inputs"]["clip"] is None
    for node_id in first + second:
        assert nodes[node_id]["inputs"] == before[node_id]["inputs"]
    assert overlapping(nodes) == []


def test_the_sidebar_copies_the_file_stem_of_a_renamed_lora(page: Any, library: Library) -> None:
    sha = library.sha("detail_tweaker_lora")
    patch = {"name": "Detail Tweaker (renamed)", "meta_json": {"preferred_weight": 0.45}}
    body = json.dumps(patch).encode()
    comfy_ui.api_call(library.server, "PATCH", f"/models/{sha}", body, "application/json")
    sidebar = comfy_ui.open_sidebar(page)
    button = sidebar.get_by_role("button", name="Copy the LoRA tag of Detail Tweaker (renamed)")
    page.evaluate("() => navigator.clipboard.writeText('')")
    button.click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()) !== ''")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == "<lora:detail_tweaker_lora:0.45>"
