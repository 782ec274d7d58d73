// The Hikaze loader nodes in the graph: each gets a view (a DOM widget) over its
// `hikaze_payload`, which stays the one source of truth (and is what the prompt sends).
// Single loaders show the chosen model's thumbnail, name and state (not in the library, file
// missing, relinked) and a "Choose…" button that opens the picker; the LoRA loader shows its
// list (enable, strengths, remove) and "Add LoRA…". The raw JSON widget is an "advanced"
// widget: hidden, shown with the node menu's "Show Advanced". No side effects at import.

import { app } from "../../scripts/app.js";
import { imageUrl, lookupModel } from "./api.js";
import { typeLabel } from "./browser.js";
import { formatWeight } from "./shared/format.js";
import { h, replaceChildren } from "./shared/dom.js";
import { icon, thumb } from "./parts.js";
import { openPicker } from "./picker.js";
import {
  NODE_SPECS,
  PAYLOAD,
  loraEntry,
  lorasPayload,
  parseLoras,
  parseSingle,
  parseStrength,
  preferredWeight,
  samePath,
  singlePayload,
} from "./payload.js";

const VIEW = "hikaze_view";
const SINGLE_HEIGHT = 116;
const LORA_ROW_HEIGHT = 60; // a 56 px row and the 4 px gap after it
const LORA_FOOTER_HEIGHT = 32; // the 26 px buttons and the 6 px gap above them
const LORA_EMPTY_HEIGHT = 30;
const MIN_WIDTH = { single: 300, loras: 330 };

export function specOf(node) {
  return (node && NODE_SPECS[node.comfyClass || node.type]) || null;
}

export function payloadWidget(node) {
  return (node && node.widgets && node.widgets.find((w) => w.name === PAYLOAD)) || null;
}

function fileName(path) {
  return String(path || "")
    .replace(/\\/g, "/")
    .split("/")
    .pop();
}

function shortHash(sha256) {
  return sha256 ? sha256.slice(0, 10) : "";
}

/** Tell ComfyUI the graph changed: redraw, and let the workflow tracker see the edit. */
function markChanged(node) {
  if (node.setDirtyCanvas) node.setDirtyCanvas(true, true);
  const workflow = app.extensionManager && app.extensionManager.workflow;
  const tracker = workflow && workflow.activeWorkflow && workflow.activeWorkflow.changeTracker;
  if (tracker && typeof tracker.checkState === "function") tracker.checkState();
}

/** Set the node's payload text; the view is redrawn unless `render` is false. */
export function writePayload(node, text, { render = true } = {}) {
  const widget = payloadWidget(node);
  if (!widget) return false;
  widget.value = text;
  if (render && node.hikaze) node.hikaze.refresh();
  markChanged(node);
  return true;
}

/** Grow the node to fit its view (and shrink it to fit when `exact`). */
function fit(node, exact = false) {
  if (!node.computeSize || !node.setSize) return;
  const spec = specOf(node);
  const wanted = node.computeSize();
  const width = Math.max(node.size[0], wanted[0], MIN_WIDTH[spec ? spec.kind : "single"]);
  const height = exact ? wanted[1] : Math.max(node.size[1], wanted[1]);
  if (width !== node.size[0] || height !== node.size[1]) node.setSize([width, height]);
  if (node.setDirtyCanvas) node.setDirtyCanvas(true, true);
}

/**
 * Put a library model into a Hikaze node: a single loader's model is replaced; a LoRA is
 * appended at its preferred weight (meta.preferred_weight, else 1), or re-enabled when the
 * list has it already. Returns {added, weight?}.
 */
export async function applyModel(node, item) {
  const spec = specOf(node);
  if (!spec) throw new Error("not a Hikaze node");
  if (spec.kind === "single") {
    writePayload(node, singlePayload(item));
    return { added: true };
  }
  const { loras } = parseLoras(payloadWidget(node).value);
  const existing = loras.find((entry) => entry.sha256 === item.sha256);
  if (existing) {
    existing.enabled = true;
    writePayload(node, lorasPayload(loras));
    return { added: false };
  }
  const found = await lookupModel(item.sha256);
  const weight = found.state === "ok" ? preferredWeight(found.model) : 1;
  // Read the payload again: it may have changed while the model was looked up.
  const current = parseLoras(payloadWidget(node).value).loras;
  current.push(loraEntry(item, weight));
  writePayload(node, lorasPayload(current));
  fit(node, true);
  return { added: true, weight };
}

/** Open the picker for this node; the chosen model goes into it. */
export async function pickFor(node) {
  const spec = specOf(node);
  if (!spec) return null;
  const article = /^[aeiou]/i.test(spec.noun) ? "an" : "a";
  const item = await openPicker({ title: `Choose ${article} ${spec.noun}`, types: spec.types });
  if (item) await applyModel(node, item);
  return item;
}

// ------------------------------------------------------------------ model state
/**
 * What the library says about a node's reference: {level, text, model?, relinkedTo?}.
 * level: "ok", "info", "warn", "error".
 */
async function describeRef(ref) {
  if (!ref.sha256) {
    return { level: "info", text: "No hash: found by path or name. Choose it again to pin it." };
  }
  const found = await lookupModel(ref.sha256);
  if (found.state === "absent") {
    return { level: "error", text: `Not in the library (${shortHash(ref.sha256)})` };
  }
  if (found.state === "error") return { level: "error", text: `Library unavailable: ${found.detail}` };
  const model = found.model;
  if (model.missing) return { level: "warn", text: "File missing: rescan or restore it", model };
  if (ref.path && model.path && !samePath(ref.path, model.path)) {
    return { level: "info", text: `Relinked: now at ${model.path}`, model, relinkedTo: model.path };
  }
  return { level: "ok", text: "", model };
}

function statusLine(status) {
  const el = h("div", { class: "hkz-node-status", role: "status" });
  if (status && status.text) {
    el.classList.add(`hkz-level-${status.level}`);
    const glyph = { error: "times-circle", warn: "exclamation-triangle", info: "info-circle" }[status.level];
    el.append(icon(glyph || "info-circle"), " ", status.text);
    el.title = status.text;
  }
  return el;
}

function coverOf(model) {
  return model && model.images && model.images.length ? imageUrl(model.images[0], "low") : "";
}

// ------------------------------------------------------------------ single loaders
function renderSingle(node, root, spec, token) {
  const ref = parseSingle(payloadWidget(node).value);
  const name = ref && !ref.error ? ref.name || fileName(ref.path) || shortHash(ref.sha256) : "";
  const choose = () => pickFor(node);
  const frame = thumb("", name || "?", "hkz-thumb hkz-node-thumb-img");
  const thumbButton = h(
    "button",
    {
      type: "button",
      class: "hkz-node-thumb",
      "aria-label": `Choose a ${spec.noun} from the Hikaze library`,
      title: "Choose from the library",
      onclick: choose,
    },
    frame,
  );
  const nameEl = h("div", { class: "hkz-node-name", title: name }, name || "No model chosen");
  const metaEl = h("div", { class: "hkz-node-meta" }, ref && ref.sha256 ? shortHash(ref.sha256) : "");
  let status = statusLine(ref && ref.error ? { level: "error", text: ref.error } : null);
  const actions = h(
    "div",
    { class: "hkz-node-actions" },
    h(
      "button",
      { type: "button", class: "hkz-btn hkz-btn-primary hkz-choose", onclick: choose },
      icon("images"),
      ` Choose ${spec.noun}…`,
    ),
  );
  const info = h("div", { class: "hkz-node-info" }, nameEl, metaEl, status, actions);
  root.replaceChildren(thumbButton, info);
  if (!ref || ref.error) return;
  describeRef(ref).then((result) => {
    if (!node.hikaze || node.hikaze.token !== token) return;
    const model = result.model;
    if (model) {
      nameEl.textContent = model.name || name;
      nameEl.title = model.path || model.name || name;
      metaEl.textContent = [typeLabel(model.type), model.base, shortHash(model.sha256)]
        .filter(Boolean)
        .join(" · ");
      const cover = coverOf(model);
      if (cover) frame.replaceWith(thumb(cover, model.name, "hkz-thumb hkz-node-thumb-img"));
    }
    const fresh = statusLine(result);
    status.replaceWith(fresh);
    status = fresh;
    root.dataset.state = result.level === "ok" ? "ok" : result.level;
    if (result.relinkedTo) {
      actions.append(
        h(
          "button",
          {
            type: "button",
            class: "hkz-btn",
            title: "Write the model's current path into the node",
            onclick: () => writePayload(node, singlePayload(model)),
          },
          "Use new path",
        ),
      );
    }
  });
}

// ------------------------------------------------------------------ the LoRA loader
function renderLoras(node, root, spec, token) {
  const parsed = parseLoras(payloadWidget(node).value);
  const entries = parsed.loras;
  const update = (index, change) => {
    // The payload is the truth: apply the change to what it holds now.
    const now = parseLoras(payloadWidget(node).value).loras;
    if (!now[index]) return;
    change(now[index], now);
    writePayload(node, lorasPayload(now), { render: false });
  };
  const rows = entries.map((entry, index) => loraRow(node, entry, index, update, token));
  const list = h("ul", { class: "hkz-lora-list", "aria-label": "LoRAs" }, rows);
  const enabled = entries.filter((e) => e.enabled).length;
  const footer = h(
    "div",
    { class: "hkz-node-actions hkz-lora-footer" },
    h(
      "button",
      { type: "button", class: "hkz-btn hkz-btn-primary hkz-choose", onclick: () => pickFor(node) },
      icon("plus"),
      " Add LoRA…",
    ),
    h("span", { class: "hkz-node-meta" }, entries.length ? `${enabled} of ${entries.length} enabled` : ""),
  );
  replaceChildren(
    root,
    parsed.error ? statusLine({ level: "error", text: parsed.error }) : null,
    entries.length ? list : h("p", { class: "hkz-node-empty" }, "No LoRAs yet."),
    footer,
  );
  root.dataset.count = String(entries.length);
}

function loraRow(node, entry, index, update, token) {
  const name = entry.name || fileName(entry.full_path) || shortHash(entry.sha256) || `LoRA ${index + 1}`;
  const frame = thumb("", name, "hkz-thumb hkz-lora-thumb");
  const row = h("li", { class: ["hkz-lora", entry.enabled ? "" : "hkz-off"], dataset: { index } });
  const toggle = h("input", {
    type: "checkbox",
    class: "hkz-lora-toggle",
    checked: entry.enabled,
    "aria-label": `Enable ${name}`,
    title: "Enabled",
  });
  toggle.addEventListener("change", () => {
    row.classList.toggle("hkz-off", !toggle.checked);
    update(index, (e) => {
      e.enabled = toggle.checked;
    });
    const footer = node.hikaze && node.hikaze.root.querySelector(".hkz-lora-footer .hkz-node-meta");
    if (footer) {
      const all = parseLoras(payloadWidget(node).value).loras;
      footer.textContent = `${all.filter((e) => e.enabled).length} of ${all.length} enabled`;
    }
  });
  const strengthInput = (key, label) => {
    const input = h("input", {
      type: "number",
      class: "hkz-input hkz-strength",
      step: "0.05",
      min: "-100",
      max: "100",
      value: formatWeight(entry[key]),
      "aria-label": `${label} strength of ${name}`,
    });
    input.addEventListener("change", () => {
      const value = parseStrength(input.value);
      if (value === null) {
        input.value = formatWeight(parseLoras(payloadWidget(node).value).loras[index]?.[key] ?? 1);
        return;
      }
      input.value = formatWeight(value);
      update(index, (e) => {
        e[key] = value;
      });
    });
    return h(
      "label",
      { class: "hkz-strength-field" },
      h("span", { class: "hkz-strength-label" }, label),
      input,
    );
  };
  const remove = h(
    "button",
    { type: "button", class: "hkz-icon-btn", "aria-label": `Remove ${name}`, title: "Remove" },
    icon("trash"),
  );
  remove.addEventListener("click", () => {
    const now = parseLoras(payloadWidget(node).value).loras;
    now.splice(index, 1);
    writePayload(node, lorasPayload(now));
    fit(node, true);
  });
  const nameEl = h("span", { class: "hkz-lora-name", title: entry.full_path || name }, name);
  const status = h("span", { class: "hkz-lora-status" });
  row.append(
    toggle,
    frame,
    h(
      "div",
      { class: "hkz-lora-main" },
      h("div", { class: "hkz-lora-title" }, nameEl, status),
      h(
        "div",
        { class: "hkz-lora-strengths" },
        strengthInput("strength_model", "Model"),
        strengthInput("strength_clip", "CLIP"),
      ),
    ),
    remove,
  );
  describeRef({ sha256: entry.sha256 || null, name: entry.name, path: entry.full_path || null }).then(
    (result) => {
      if (!node.hikaze || node.hikaze.token !== token) return;
      const cover = coverOf(result.model);
      if (cover) frame.replaceWith(thumb(cover, name, "hkz-thumb hkz-lora-thumb"));
      if (result.text) {
        status.replaceWith(
          h(
            "span",
            {
              class: ["hkz-lora-status", `hkz-level-${result.level}`],
              title: result.text,
              role: "img",
              "aria-label": result.text,
            },
            icon({ error: "times-circle", warn: "exclamation-triangle" }[result.level] || "info-circle"),
          ),
        );
        row.dataset.state = result.level;
      }
    },
  );
  return row;
}

// ------------------------------------------------------------------ set-up
function viewHeight(node, spec) {
  if (spec.kind === "single") return SINGLE_HEIGHT;
  const count = parseLoras(payloadWidget(node).value).loras.length;
  return LORA_FOOTER_HEIGHT + (count ? count * LORA_ROW_HEIGHT - 4 : LORA_EMPTY_HEIGHT);
}

/** Give a Hikaze node its view (once); called when ComfyUI creates the node. */
export function setupNode(node) {
  const spec = specOf(node);
  const widget = payloadWidget(node);
  if (!spec || !widget || node.hikaze || typeof node.addDOMWidget !== "function") return;
  widget.advanced = true; // the raw JSON: "Show Advanced" in the node's menu
  // Litegraph lays out hidden widgets too: while hidden, this one takes no room.
  widget.computeSize = (width) => {
    if (node.isWidgetVisible && !node.isWidgetVisible(widget)) return [0, -4];
    return [width || 0, (window.LiteGraph && window.LiteGraph.NODE_WIDGET_HEIGHT) || 20];
  };
  const callback = widget.callback;
  widget.callback = function (...args) {
    const result = callback ? callback.apply(this, args) : undefined;
    if (node.hikaze) node.hikaze.refresh();
    return result;
  };
  const root = h("div", { class: ["hkz-node", `hkz-node-${spec.kind}`] });
  const state = {
    root,
    token: 0,
    refresh() {
      state.token += 1;
      if (spec.kind === "single") renderSingle(node, root, spec, state.token);
      else renderLoras(node, root, spec, state.token);
      if (node.graph) fit(node); // a longer list: grow to show it
    },
  };
  node.hikaze = state;
  const view = node.addDOMWidget(VIEW, "hikaze-view", root, {
    serialize: false,
    hideOnZoom: true,
    margin: 6,
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => viewHeight(node, spec),
    getMaxHeight: spec.kind === "single" ? () => SINGLE_HEIGHT : undefined,
  });
  view.serialize = false; // not in widgets_values (the workflow) nor in the prompt
  state.refresh();
  fit(node, true);
}

/** After a workflow sets the node's values: draw them (and grow to fit the list). */
export function refreshNode(node) {
  if (node.hikaze) node.hikaze.refresh();
}

/** Redraw every Hikaze node of the graph (e.g. after a scan changed the library). */
export function refreshAllNodes(graph) {
  const nodes = (graph && (graph.nodes || graph._nodes)) || [];
  for (const node of nodes) {
    if (node.hikaze) node.hikaze.refresh();
  }
}
