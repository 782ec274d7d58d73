// "Send to workflow" and drag-and-drop of library cards onto the canvas. A checkpoint (or a
// diffusion model, a VAE) replaces the model of the selected loader of its kind, or goes
// into a new one; a LoRA is appended to the selected (or only) LoRA loader, or to a new
// one. A card dropped on a loader of its kind goes into that loader; elsewhere on the canvas
// it is sent as above, a new node landing where it was dropped. A node sent by the button
// lands beside the nodes already on the canvas (placement.js); a new LoRA loader is wired
// between the checkpoint loader and what it fed, when there is exactly one such chain. No
// side effects at import.

import { app } from "../../scripts/app.js";
import { applyModel, specOf } from "./nodes.js";
import { toast } from "./notify.js";
import { nodeTypeFor } from "./payload.js";
import { GAP, boxOf, chainOf, freeSpot, insertLora } from "./placement.js";

export const DRAG_TYPE = "application/x-hikaze-model";

function currentGraph() {
  return (app.canvas && app.canvas.graph) || app.graph;
}

function graphNodes(graph) {
  return (graph && (graph.nodes || graph._nodes)) || [];
}

function selectedNodes() {
  return Object.values((app.canvas && app.canvas.selected_nodes) || {});
}

function isType(node, nodeType) {
  return (node.comfyClass || node.type) === nodeType;
}

/** Whether the library item can go into a Hikaze node. */
export function canSend(item) {
  return Boolean(item && nodeTypeFor(item.type));
}

/** The centre of the visible canvas, in graph coordinates. */
function canvasCenter() {
  const ds = app.canvas && app.canvas.ds;
  if (!ds || !ds.visible_area) return [100, 100];
  const [x, y, w, hgt] = ds.visible_area;
  return [x + w / 2, y + hgt / 2];
}

/** Where a new node goes: beside the nodes there (right of the chain's loader, if given). */
function besideOthers(graph, node, chain) {
  const title = (window.LiteGraph && window.LiteGraph.NODE_TITLE_HEIGHT) || 30;
  const boxes = graphNodes(graph).map((other) => boxOf(other, title));
  const size = [node.size[0], node.size[1] + title];
  let start = null;
  if (chain) {
    const box = boxOf(chain, title);
    start = [box[0] + box[2] + GAP, box[1]];
  } else {
    const [x, y] = canvasCenter();
    start = [x - size[0] / 2, y - size[1] / 2];
  }
  const [x, y] = freeSpot(boxes, size, start, { axis: chain ? "y" : "x" });
  return [x, y + title];
}

/** A new node of this type: at `pos` (a drop), else beside the others. */
function addNode(nodeType, { pos = null, chain = null } = {}) {
  const graph = currentGraph();
  const LiteGraph = window.LiteGraph;
  const node = LiteGraph && LiteGraph.createNode(nodeType);
  if (!node || !graph) throw new Error(`ComfyUI cannot create a ${nodeType} node`);
  node.pos = pos ? [pos[0] - node.size[0] / 2, pos[1] - node.size[1] / 2] : besideOthers(graph, node, chain);
  graph.add(node);
  if (app.canvas && app.canvas.selectNode) app.canvas.selectNode(node);
  return node;
}

/** The node a library item goes into: the target given, the selected one (or the only
 * LoRA loader), else null (a new node is needed). */
function targetFor(item, nodeType) {
  const selected = selectedNodes().filter((node) => isType(node, nodeType));
  if (selected.length === 1) return selected[0];
  if (nodeType === "HikazeLoraPowerLoader") {
    const all = graphNodes(currentGraph()).filter((node) => isType(node, nodeType));
    if (all.length === 1) return all[0];
  }
  return null;
}

function nodeLabel(node) {
  return `${node.title || node.type} #${node.id}`;
}

/**
 * Put a library item into the workflow. `target` (a node under the drop point) wins when it
 * is a loader of the item's kind; `pos` places a new node. Returns the node, or null.
 */
export async function sendToWorkflow(item, { target = null, pos = null } = {}) {
  const nodeType = nodeTypeFor(item.type);
  if (!nodeType) {
    toast("warn", "Hikaze", `${item.name}: no Hikaze loader takes ${item.type} models`);
    return null;
  }
  try {
    let node = target && isType(target, nodeType) ? target : targetFor(item, nodeType);
    const created = !node;
    const graph = currentGraph();
    const chain = created && nodeType === "HikazeLoraPowerLoader" ? chainOf(graph, graphNodes(graph)) : null;
    if (created) node = addNode(nodeType, { pos, chain });
    if (chain) {
      insertLora(graph, chain, node);
      if (app.canvas && app.canvas.setDirty) app.canvas.setDirty(true, true);
    }
    const result = await applyModel(node, item);
    let detail;
    if (specOf(node).kind === "loras") {
      detail = result.added
        ? `${item.name} added to ${nodeLabel(node)} at ${result.weight}`
        : `${item.name} is already in ${nodeLabel(node)} (enabled)`;
      if (chain) detail += `, after ${nodeLabel(chain)}`;
    } else {
      detail = `${item.name} ${created ? "loaded by a new" : "now loaded by"} ${nodeLabel(node)}`;
    }
    toast("success", "Sent to workflow", detail, { life: 2500 });
    return node;
  } catch (err) {
    toast("error", "Hikaze: could not send to the workflow", err.message || String(err), { life: 6000 });
    return null;
  }
}

/** Start dragging a card: the item travels as JSON under our own type only. */
export function startDrag(event, item) {
  if (!event.dataTransfer) return;
  event.dataTransfer.clearData(); // no text/uri-list: ComfyUI would fetch it as a file
  event.dataTransfer.setData(DRAG_TYPE, JSON.stringify(item));
  event.dataTransfer.effectAllowed = "copy";
}

function carriesModel(event) {
  return Boolean(event.dataTransfer && Array.from(event.dataTransfer.types || []).includes(DRAG_TYPE));
}

function overCanvas(event) {
  const el = app.canvasEl || (app.canvas && app.canvas.canvas);
  if (!el) return false;
  const box = el.getBoundingClientRect();
  return (
    event.clientX >= box.left &&
    event.clientX <= box.right &&
    event.clientY >= box.top &&
    event.clientY <= box.bottom
  );
}

let dropInstalled = false;

/**
 * Accept library cards dropped on the canvas. Listens in the capture phase on the document
 * and handles only drags of our own type, so ComfyUI's file drop is left alone.
 */
export function installDrop() {
  if (dropInstalled) return;
  dropInstalled = true;
  document.addEventListener(
    "dragover",
    (event) => {
      if (!carriesModel(event) || !overCanvas(event)) return;
      event.preventDefault();
      event.stopPropagation();
      event.dataTransfer.dropEffect = "copy";
    },
    true,
  );
  document.addEventListener(
    "drop",
    (event) => {
      if (!carriesModel(event)) return;
      event.preventDefault();
      event.stopPropagation();
      if (!overCanvas(event)) return;
      let item;
      try {
        item = JSON.parse(event.dataTransfer.getData(DRAG_TYPE));
      } catch {
        return;
      }
      const pos = app.canvas.convertEventToCanvasOffset(event);
      const graph = currentGraph();
      const target = graph && graph.getNodeOnPos ? graph.getNodeOnPos(pos[0], pos[1]) : null;
      sendToWorkflow(item, { target, pos });
    },
    true,
  );
}
