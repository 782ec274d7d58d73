// Where a node sent to the workflow lands, and how a new LoRA loader joins the graph.
//
// `freeSpot` is pure geometry (boxes [x, y, w, h]); tests/js/placement.test.mjs runs it.
// `chainOf` and `insertLora` work on LiteGraph nodes and links (no import of ComfyUI: the
// graph is given). A new node lands beside the nodes already there, never on top of one; a
// new LoRA loader is wired between the one checkpoint loader that feeds other nodes and
// what it fed, and only when there is exactly one such chain. No side effects at import.

export const GAP = 30;

function overlaps(a, b, gap) {
  return (
    a[0] < b[0] + b[2] + gap && b[0] < a[0] + a[2] + gap && a[1] < b[1] + b[3] + gap && b[1] < a[1] + a[3] + gap
  );
}

/**
 * The first place for a box of `size` [w, h], from `start` [x, y] on, that keeps `gap` from
 * every box: while the candidate overlaps one, it moves past it along `axis` ("x": to its
 * right, "y": below it).
 */
export function freeSpot(boxes, size, start, { axis = "x", gap = GAP } = {}) {
  const spot = [start[0], start[1], size[0], size[1]];
  for (let step = 0; step <= boxes.length; step += 1) {
    const hit = boxes.find((box) => overlaps(spot, box, gap));
    if (!hit) break;
    if (axis === "x") spot[0] = hit[0] + hit[2] + gap;
    else spot[1] = hit[1] + hit[3] + gap;
  }
  return [spot[0], spot[1]];
}

/** A node's box with its title bar, [x, y, w, h]. */
export function boxOf(node, titleHeight = 30) {
  if (typeof node.getBounding === "function") {
    const b = node.getBounding();
    return [b[0], b[1], b[2], b[3]];
  }
  return [node.pos[0], node.pos[1] - titleHeight, node.size[0], node.size[1] + titleHeight];
}

function linkOf(graph, id) {
  const links = graph.links;
  if (typeof graph.getLink === "function") return graph.getLink(id);
  return links instanceof Map ? links.get(id) : links[id];
}

function slotOf(slots, type) {
  return (slots || []).findIndex((slot) => slot.type === type);
}

/** The links leaving one output: [{node, slot}] of their targets. */
function targetsOf(graph, node, slot) {
  const ids = (node.outputs[slot] && node.outputs[slot].links) || [];
  return ids
    .map((id) => linkOf(graph, id))
    .filter(Boolean)
    .map((link) => ({ node: graph.getNodeById(link.target_id), slot: link.target_slot }))
    .filter((target) => target.node);
}

/** A checkpoint loader: MODEL and CLIP out, no MODEL in (a LoRA loader takes one). */
function isCheckpointLoader(node) {
  return slotOf(node.outputs, "MODEL") >= 0 && slotOf(node.outputs, "CLIP") >= 0 && slotOf(node.inputs, "MODEL") < 0;
}

/** The one checkpoint loader whose MODEL or CLIP feeds another node, or null (none, or several). */
export function chainOf(graph, nodes) {
  const chains = nodes.filter((node) => {
    if (!isCheckpointLoader(node)) return false;
    const fed = ["MODEL", "CLIP"].flatMap((type) => targetsOf(graph, node, slotOf(node.outputs, type)));
    return fed.length > 0;
  });
  return chains.length === 1 ? chains[0] : null;
}

/**
 * Wire `lora` between `loader` and what the loader's MODEL and CLIP fed: those inputs now
 * take the LoRA loader's outputs, and the LoRA loader takes the loader's.
 */
export function insertLora(graph, loader, lora) {
  for (const type of ["MODEL", "CLIP"]) {
    const from = slotOf(loader.outputs, type);
    const out = slotOf(lora.outputs, type);
    const input = slotOf(lora.inputs, type);
    if (from < 0 || out < 0 || input < 0) continue;
    for (const target of targetsOf(graph, loader, from)) lora.connect(out, target.node, target.slot);
    loader.connect(from, lora, input);
  }
}
