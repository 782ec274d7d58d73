// The library as a list: search, type, base and tag filters, compact cards with lazy
// thumbnails; a virtual list (shared/virtual-list.js): only the cards near the view are in
// the DOM, the pages they need fetched with limit/offset, the scroll bar true to the set.
// Used by the sidebar tab (cards with actions, draggable) and by the picker (cards are
// buttons that choose). No side effects at import: it only exports createBrowser.

import { getFacet, getJson, imageUrl } from "./api.js";
import { breakable, thumb } from "./parts.js";
import { debounce, h, replaceChildren, safeColor } from "./shared/dom.js";
import { formatBytes } from "./shared/format.js";
import { listingParams } from "./shared/listing.js";
import { createVirtualList } from "./shared/virtual-list.js";

const PAGE_SIZE = 40;
const CARD_TAGS = 3;

const TYPE_LABELS = {
  checkpoints: "Checkpoint",
  loras: "LoRA",
  vae: "VAE",
  diffusion_models: "Diffusion model",
  unet: "UNet",
  embeddings: "Embedding",
  controlnet: "ControlNet",
  upscale_models: "Upscaler",
  clip: "CLIP",
  text_encoders: "Text encoder",
  clip_vision: "CLIP vision",
};

export function typeLabel(type) {
  return TYPE_LABELS[type] || String(type || "");
}

let browserCount = 0;

/** A filter's options with their counts, "all" first; a chosen value stays listed. */
function fillSelect(select, allLabel, options, current) {
  const values = new Set(options.map((o) => o.value));
  replaceChildren(
    select,
    h("option", { value: "" }, allLabel),
    options.map((o) =>
      h("option", { value: o.value, selected: o.value === current }, `${o.label} (${o.count})`),
    ),
  );
  if (current && !values.has(current)) {
    // Keep a filter the facets no longer list (no model of it right now).
    select.append(h("option", { value: current, selected: true }, current));
  }
  select.value = current;
}


/** The type, base and tag filters' options, from the library's facets. */
async function loadFacets(state, types, { typeSelect, baseSelect, tagSelect }) {
  const [typeRows, baseRows, tagRows] = await Promise.all([
    getFacet("types").catch(() => []),
    getFacet("bases").catch(() => []),
    getJson("tags").catch(() => []),
  ]);
  const allowed = Array.isArray(types) && types.length ? types : null;
  const counts = new Map(typeRows.map((row) => [row.value, row.count]));
  if (allowed) {
    // A picker shows its node's types only, and opens on the first that has models.
    if (!allowed.includes(state.type)) state.type = allowed.find((t) => counts.get(t)) || allowed[0];
    replaceChildren(
      typeSelect,
      allowed.map((t) =>
        h("option", { value: t, selected: t === state.type }, `${typeLabel(t)} (${counts.get(t) || 0})`),
      ),
    );
    typeSelect.value = state.type;
  } else {
    const options = typeRows.map((row) => ({
      value: row.value,
      label: typeLabel(row.value),
      count: row.count,
    }));
    fillSelect(typeSelect, "All types", options, state.type);
  }
  fillSelect(
    baseSelect,
    "All bases",
    baseRows.map((row) => ({ value: row.value, label: row.value, count: row.count })),
    state.base,
  );
  const tags = (tagRows || [])
    .filter((tag) => tag.model_count > 0)
    .sort((a, b) => b.model_count - a.model_count || a.name.localeCompare(b.name));
  fillSelect(
    tagSelect,
    "Any tag",
    tags.map((tag) => ({ value: tag.name, label: tag.name, count: tag.model_count })),
    state.tag,
  );
}


/** "12 models", or why there is none. */
function summaryText(total, state) {
  if (!total) return state.q || state.base || state.tag ? "No model matches." : "No models here yet.";
  return total === 1 ? "1 model" : `${total} models`;
}

/** A model's card: its cover, name, type, base, size and tags; picked by a click in a
 * picker, with actions and dragging in the sidebar. */
function modelCard(item, { variant, actions, onPick, onDragStart }) {
  const cover = item.cover_image ? imageUrl(item.cover_image, "low") : "";
  const meta = [typeLabel(item.type), item.base, formatBytes(item.size_bytes, "")].filter(Boolean).join(" · ");
  const tags = (item.tags || [])
    .slice(0, CARD_TAGS)
    .map((tag) =>
      h(
        "span",
        { class: "hkz-tag", style: { "--hkz-tag": safeColor(tag.color) }, title: tag.name },
        tag.name,
      ),
    );
  const body = h(
    "span",
    { class: "hkz-card-body" },
    h("span", { class: "hkz-card-name", title: item.path || item.name }, breakable(item.name)),
    h("span", { class: "hkz-card-meta" }, meta),
    h("span", { class: "hkz-card-tags" }, tags),
  );
  const frame = thumb(cover, item.name);
  if (variant === "picker") {
    return h(
      "li",
      { class: "hkz-card-item", dataset: { sha256: item.sha256 } },
      h(
        "button",
        {
          type: "button",
          class: "hkz-card hkz-card-pick",
          title: item.path || item.name,
          onclick: () => onPick && onPick(item),
        },
        frame,
        body,
      ),
    );
  }
  if (actions) body.append(h("span", { class: "hkz-card-actions" }, actions(item)));
  const li = h(
    "li",
    { class: "hkz-card-item", dataset: { sha256: item.sha256 } },
    h("div", { class: "hkz-card", draggable: onDragStart ? "true" : null }, frame, body),
  );
  if (onDragStart) li.firstChild.addEventListener("dragstart", (event) => onDragStart(event, item));
  return li;
}


/** The browser's elements: search, type/base/tag filters, the cards. */
function browserElements(uid, variant, types) {
  const search = h("input", {
    type: "search",
    id: `${uid}-q`,
    class: "hkz-input hkz-search",
    placeholder: "Search name or path…",
    autocomplete: "off",
    spellcheck: "false",
  });
  const typeSelect = h("select", { id: `${uid}-type`, class: "hkz-input" });
  const baseSelect = h("select", { id: `${uid}-base`, class: "hkz-input" });
  const tagSelect = h("select", { id: `${uid}-tag`, class: "hkz-input" });
  const summary = h("p", { class: "hkz-summary", role: "status", "aria-live": "polite" });
  const cards = h("ul", { class: "hkz-cards", "aria-label": "Models" });

  const field = (label, control, hidden = false) =>
    h(
      "div",
      { class: "hkz-field", hidden },
      h("label", { class: "hkz-label", for: control.id }, label),
      control,
    );
  const typeFixed = Array.isArray(types) && types.length === 1;
  const el = h(
    "div",
    { class: ["hkz-browser", `hkz-browser-${variant}`] },
    h(
      "div",
      { class: "hkz-filters", role: "search", "aria-label": "Filter models" },
      h("label", { class: "hkz-visually-hidden", for: search.id }, "Search models"),
      search,
      h(
        "div",
        { class: "hkz-filter-row" },
        field("Type", typeSelect, typeFixed),
        field("Base", baseSelect),
        field("Tag", tagSelect),
      ),
    ),
    summary,
    cards,
  );
  return { search, typeSelect, baseSelect, tagSelect, summary, cards, el };
}

/**
 * A model browser. Options:
 * - variant: "sidebar" (cards with `actions(item)`, draggable with `onDragStart`) or
 *   "picker" (each card is a button calling `onPick(item)`);
 * - types: the library types it may show (null: all; one type: no type filter shown);
 * - type: the type shown first.
 * Returns {el, load(), reload(), focus(), destroy()}; `load` fetches the first page once
 * (and later only brings the list in line with its view), `reload` fetches filters and
 * models again (after a scan).
 */
export function createBrowser({
  variant = "sidebar",
  types = null,
  type = "",
  actions = null,
  onPick = null,
  onDragStart = null,
} = {}) {
  browserCount += 1;
  const uid = `hkz-browser-${browserCount}`;
  const state = { q: "", type: type || "", base: "", tag: "" };
  let loaded = false;

  const parts = browserElements(uid, variant, types);
  const { search, typeSelect, baseSelect, tagSelect, summary, cards, el } = parts;

  // ---------------------------------------------------------------- models
  const list = createVirtualList({
    container: cards,
    pageSize: PAGE_SIZE,
    estimate: 100,
    load: (offset, limit, signal) =>
      getJson(
        "models",
        listingParams({ type: state.type, base: state.base, tags: state.tag, q: state.q }, offset, limit),
        { signal },
      ),
    render: (item) => modelCard(item, { variant, actions, onPick, onDragStart }),
    placeholder: () => h("li", { class: "hkz-card-item hkz-card-placeholder", "aria-busy": "true" }),
    onLoad({ total, error }) {
      el.removeAttribute("aria-busy");
      if (!error) {
        summary.textContent = summaryText(total, state);
        return;
      }
      replaceChildren(
        summary,
        h("span", { class: "hkz-error" }, `Could not load the library: ${error.detail || error.message}`),
        " ",
        h("button", { type: "button", class: "hkz-btn hkz-btn-link", onclick: () => refetch() }, "Retry"),
      );
    },
  });

  function refetch() {
    el.setAttribute("aria-busy", "true");
    summary.textContent = "Loading models…";
    list.reset();
  }

  // ---------------------------------------------------------------- events
  // Typing searches after a pause, Enter at once; a text already searched is not asked again.
  const searchNow = () => {
    if (search.value.trim() === state.q) return;
    state.q = search.value.trim();
    refetch();
  };
  search.addEventListener("input", debounce(searchNow, 250));
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") searchNow();
  });
  typeSelect.addEventListener("change", () => {
    state.type = typeSelect.value;
    refetch();
  });
  baseSelect.addEventListener("change", () => {
    state.base = baseSelect.value;
    refetch();
  });
  tagSelect.addEventListener("change", () => {
    state.tag = tagSelect.value;
    refetch();
  });
  return {
    el,
    /** The first load (filters and first page), once. */
    load() {
      if (loaded) {
        list.update(); // shown again: the view may have changed meanwhile
        return;
      }
      loaded = true;
      loadFacets(state, types, { typeSelect, baseSelect, tagSelect }).finally(refetch);
    },
    /** Filters and models again (the library changed). */
    reload() {
      if (!loaded) return;
      loadFacets(state, types, { typeSelect, baseSelect, tagSelect }).finally(refetch);
    },
    focus() {
      search.focus();
    },
    /** The browser is gone (a picker closed): stop following the scroll. */
    destroy() {
      list.destroy();
    },
  };
}
