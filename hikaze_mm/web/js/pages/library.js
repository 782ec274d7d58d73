// Library page: type tabs, search, and filters (a panel behind a "Filters" button on narrow
// screens): a searchable tag filter, base (with "unknown"), folder tree, sort, "Recently
// used", missing models, the NSFW image setting; a grid (or list) of model cards that loads
// page by page as it scrolls, with one tab stop (roving tabindex, arrow keys between
// cards), a menu of actions per card, and a selection for bulk actions.

import { get } from "../api.js";
import { insideComfy } from "../comfy-link.js";
import { debounce, h, replaceChildren } from "../../comfy/shared/dom.js";
import { listingParams } from "../../comfy/shared/listing.js";
import { formatNumber } from "../format.js";
import { t } from "../i18n.js";
import { loadTags } from "../tags.js";
import { createBulk } from "../components/bulk.js";
import { showCardMenu } from "../components/card-actions.js";
import { modelCard } from "../components/model-card.js";
import { NSFW_MODES, nsfwMode, setNsfwMode } from "../components/nsfw.js";
import { createTagFilter } from "../components/tag-filter.js";
import { describeError } from "../components/toast.js";
import { loadFailed } from "../components/widgets.js";

const PAGE_SIZE = 100;
const NSFW = "nsfw";
const UNKNOWN = "unknown";
const SORTS = ["name", "created_at", "last_used_at", "size_bytes"];
const STORE_KEY = "hikaze.library.view";
const NAV_KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];

function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

function savePrefs(prefs) {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(prefs));
  } catch {
    // Private mode: preferences are simply not remembered.
  }
}

/** Options of the folder filter: each root, then its subfolders indented, with counts. */
function folderOptions(roots, selected) {
  const options = [];
  const walk = (node, depth) => {
    const indent = "\u00a0\u00a0".repeat(depth);
    options.push(
      h(
        "option",
        { value: node.path, selected: node.path === selected },
        `${indent}${depth ? "└ " : ""}${node.name} (${formatNumber(node.count || 0)})`,
      ),
    );
    for (const child of node.children || []) walk(child, depth + 1);
  };
  for (const root of roots) walk(root, 0);
  return options;
}

export function mountLibrary(root, { openDetails }) {
  const prefs = loadPrefs();
  const state = {
    type: "",
    q: "",
    base: "",
    folder: "",
    recent: false,
    sort: SORTS.includes(prefs.sort) ? prefs.sort : "name",
    order: prefs.order === "desc" ? "desc" : "asc",
    view: prefs.view === "list" ? "list" : "grid",
    includeMissing: prefs.includeMissing !== false,
    tagStates: new Map([[NSFW, "exclude"]]),
    nsfw: nsfwMode(),
  };
  const list = { items: [], total: 0, loading: false, done: false, generation: 0, error: null };
  let allTags = [];
  let controller = null;
  let activeSha = null; // the card that holds the grid's one tab stop
  let comfy = false; // served by ComfyUI: cards offer "Send to workflow"
  insideComfy().then((inside) => {
    comfy = inside;
  });

  // ---------------------------------------------------------------- controls
  const typeTabs = h("div", { class: "tabs library-tabs", role: "tablist", "aria-label": t("library.types") });
  const search = h("input", {
    type: "search",
    class: "input search",
    placeholder: t("library.searchPlaceholder"),
    "aria-label": t("library.search"),
    value: state.q,
  });
  const filtersButton = h(
    "button",
    {
      type: "button",
      class: "btn filters-toggle",
      "aria-expanded": "false",
      "aria-controls": "library-filters",
    },
    h("span", {}, t("library.filters")),
    h("span", { class: "count filters-count", hidden: true }),
  );
  const recentButton = h("button", { type: "button", class: "btn", "aria-pressed": "false" }, t("library.recent"));
  const baseSelect = h("select", { class: "input", id: "filter-base" });
  const folderSelect = h("select", { class: "input", id: "filter-folder" });
  const sortSelect = h(
    "select",
    { class: "input", id: "filter-sort" },
    SORTS.map((key) => h("option", { value: key, selected: key === state.sort }, t(`library.sort.${key}`))),
  );
  const orderButton = h("button", { type: "button", class: "btn" });
  const nsfwSelect = h(
    "select",
    { class: "input", id: "filter-nsfw-mode" },
    NSFW_MODES.map((mode) => h("option", { value: mode, selected: mode === state.nsfw }, t(`nsfw.mode.${mode}`))),
  );
  const nsfwToggle = h("input", { type: "checkbox", id: "nsfw-toggle", class: "switch" });
  const missingToggle = h("input", {
    type: "checkbox",
    id: "missing-toggle",
    class: "switch",
    checked: state.includeMissing,
  });
  const viewButton = (label, icon) =>
    h("button", { type: "button", class: "btn btn-seg", "aria-label": label, title: label }, icon);
  const gridButton = viewButton(t("library.gridView"), "▦");
  const listButton = viewButton(t("library.listView"), "☰");
  const tagFilter = createTagFilter({
    states: state.tagStates,
    onChange: () => {
      renderControls();
      reload();
    },
  });
  const summary = h("p", { class: "summary", role: "status", "aria-live": "polite" });
  const grid = h("div", { class: "cards", role: "list", "aria-label": t("library.models") });
  const message = h("div", { class: "list-message" });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const field = (label, id, control) =>
    h("div", { class: "filter-field" }, h("label", { class: "filter-label", for: id }, label), control);
  const filters = h(
    "div",
    { id: "library-filters", class: "filters-panel" },
    tagFilter.el,
    h(
      "div",
      { class: "filter-row" },
      field(t("library.base"), "filter-base", baseSelect),
      field(t("library.folder"), "filter-folder", folderSelect),
      field(t("library.sort"), "filter-sort", h("div", { class: "sort-group" }, sortSelect, orderButton, recentButton)),
      field(t("nsfw.label"), "filter-nsfw-mode", nsfwSelect),
      h(
        "div",
        { class: "filter-toggles" },
        h("label", { class: "toggle", for: "nsfw-toggle" }, nsfwToggle, h("span", {}, t("library.showNsfw"))),
        h(
          "label",
          { class: "toggle", for: "missing-toggle" },
          missingToggle,
          h("span", {}, t("library.showMissing")),
        ),
      ),
    ),
  );

  const bulk = createBulk({
    params: () => queryParams(0),
    total: () => list.total,
    visibleShas: () => list.items.map((item) => item.sha256),
    tagNames: () => allTags.map((tag) => tag.name),
    onSelectionChange: (selected) => {
      for (const el of grid.querySelectorAll(".card")) {
        const on = selected.has(el.dataset.sha256);
        el.classList.toggle("selected", on);
        const box = el.querySelector(".card-select");
        if (box) box.checked = on;
      }
    },
    // The facets' counts changed (tags, bases, types). After tags or a delete the selection
    // is done with; after a Civitai lookup it stays, to act on the same models again.
    afterChange: (kind) => {
      loadFacets();
      reload({ keepSelection: kind === "civitai" });
    },
  });

  root.append(
    h(
      "section",
      { class: "page page-library", "aria-labelledby": "library-title" },
      h("h1", { id: "library-title", class: "visually-hidden" }, t("nav.library")),
      typeTabs,
      h(
        "div",
        { class: "toolbar library-bar" },
        search,
        filtersButton,
        h(
          "div",
          { class: "segmented", role: "group", "aria-label": t("library.viewMode") },
          gridButton,
          listButton,
        ),
      ),
      filters,
      summary,
      grid,
      message,
      sentinel,
      bulk.bar,
    ),
  );

  // ---------------------------------------------------------------- rendering
  function renderTypeTabs(types) {
    const tabs = [{ value: "", count: null }, ...types];
    replaceChildren(
      typeTabs,
      tabs.map((item) => {
        const selected = item.value === state.type;
        const label = item.value ? item.value : t("library.allTypes");
        return h(
          "button",
          {
            type: "button",
            role: "tab",
            class: "tab",
            "aria-selected": selected ? "true" : "false",
            tabindex: selected ? "0" : "-1",
            dataset: { type: item.value },
            onclick: () => {
              state.type = item.value;
              renderTypeTabs(types);
              reload();
            },
          },
          label,
          item.count !== null ? h("span", { class: "count" }, formatNumber(item.count)) : null,
        );
      }),
    );
  }

  // Arrow keys move between tabs (WAI-ARIA tabs pattern).
  typeTabs.addEventListener("keydown", (event) => {
    if (!["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) return;
    const tabs = [...typeTabs.querySelectorAll("[role=tab]")];
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = index;
    if (event.key === "ArrowLeft") next = (index - 1 + tabs.length) % tabs.length;
    if (event.key === "ArrowRight") next = (index + 1) % tabs.length;
    if (event.key === "Home") next = 0;
    if (event.key === "End") next = tabs.length - 1;
    event.preventDefault();
    tabs[next].click();
    // The tabs were redrawn: focus the newly selected one.
    const selected = typeTabs.querySelector('[aria-selected="true"]');
    if (selected) selected.focus();
  });

  function renderBases(bases) {
    replaceChildren(
      baseSelect,
      h("option", { value: "" }, t("library.allBases")),
      bases.map((item) =>
        h(
          "option",
          { value: item.value, selected: item.value === state.base },
          `${item.value === UNKNOWN ? t("library.unknownBase") : item.value} (${formatNumber(item.count)})`,
        ),
      ),
    );
  }

  function renderFolders(roots) {
    replaceChildren(
      folderSelect,
      h("option", { value: "" }, t("library.allFolders")),
      folderOptions(roots, state.folder),
    );
    folderSelect.disabled = !roots.length;
  }

  function activeFilterCount() {
    let n = 0;
    if (state.base) n += 1;
    if (state.folder) n += 1;
    if (!state.includeMissing) n += 1;
    for (const [name, st] of state.tagStates) if (!(name === NSFW && st === "exclude")) n += 1;
    return n;
  }

  function renderControls() {
    orderButton.textContent = state.order === "asc" ? t("library.ascending") : t("library.descending");
    orderButton.setAttribute("aria-label", t("library.orderLabel", { order: orderButton.textContent }));
    gridButton.setAttribute("aria-pressed", String(state.view === "grid"));
    listButton.setAttribute("aria-pressed", String(state.view === "list"));
    recentButton.setAttribute("aria-pressed", String(state.recent));
    sortSelect.disabled = state.recent;
    orderButton.disabled = state.recent;
    grid.classList.toggle("view-list", state.view === "list");
    grid.classList.toggle("view-grid", state.view === "grid");
    nsfwToggle.checked = state.tagStates.get(NSFW) !== "exclude";
    const count = filtersButton.querySelector(".filters-count");
    const n = activeFilterCount();
    count.hidden = n === 0;
    count.textContent = formatNumber(n);
  }

  function buildCard(model) {
    return modelCard(model, {
      view: state.view,
      nsfw: state.nsfw,
      selected: bulk.selected.has(model.sha256),
      active: model.sha256 === activeSha,
    });
  }

  function renderSummary() {
    summary.textContent = list.error ? "" : t("library.count", { n: list.total });
    bulk.render();
  }

  function renderMessage() {
    if (list.error) {
      replaceChildren(message, loadFailed(t("library.loadFailed", { error: list.error }), reload));
    } else if (list.loading) {
      replaceChildren(message, h("p", { class: "muted" }, t("common.loading")));
    } else if (!list.items.length) {
      replaceChildren(message, h("p", { class: "muted empty" }, t("library.empty")));
    } else {
      message.replaceChildren();
    }
  }

  // ---------------------------------------------------------------- the grid's tab stop
  const cardOf = (sha) => grid.querySelector(`.card[data-sha256="${CSS.escape(sha)}"]`);

  function setTabbable(card, on) {
    const value = on ? "0" : "-1";
    card.setAttribute("tabindex", value);
    for (const control of card.querySelectorAll(".card-control")) control.setAttribute("tabindex", value);
  }

  /** Make `card` the grid's tab stop (optionally focusing it). */
  function activate(card, focus = false) {
    if (!card) return;
    if (activeSha !== card.dataset.sha256) {
      const old = activeSha && cardOf(activeSha);
      if (old) setTabbable(old, false);
      activeSha = card.dataset.sha256;
    }
    setTabbable(card, true);
    if (focus) {
      card.focus();
      card.scrollIntoView({ block: "nearest" });
    }
  }

  function columns(cards) {
    if (state.view === "list" || cards.length < 2) return 1;
    const top = cards[0].offsetTop;
    const n = cards.findIndex((card) => card.offsetTop !== top);
    return n < 0 ? cards.length : n;
  }

  function modelOf(sha) {
    return list.items.find((item) => item.sha256 === sha);
  }

  grid.addEventListener("focusin", (event) => {
    const card = event.target.closest(".card");
    if (card) activate(card);
  });

  grid.addEventListener("click", (event) => {
    const card = event.target.closest(".card");
    if (!card) return;
    const sha = card.dataset.sha256;
    const box = event.target.closest(".card-select");
    if (box) {
      bulk.toggle(sha, { shift: event.shiftKey, on: box.checked });
      return;
    }
    const menu = event.target.closest(".card-menu");
    if (menu) {
      openMenu(card, menu);
      return;
    }
    if (event.shiftKey || event.ctrlKey || event.metaKey) {
      // Selection gestures on the card itself.
      bulk.toggle(sha, { shift: event.shiftKey });
      return;
    }
    openDetails(sha);
  });

  grid.addEventListener("keydown", (event) => {
    const card = event.target;
    if (!card.classList || !card.classList.contains("card")) return;
    const sha = card.dataset.sha256;
    if (event.key === "Enter") {
      event.preventDefault();
      openDetails(sha);
      return;
    }
    if (event.key === " ") {
      event.preventDefault();
      bulk.toggle(sha, { shift: event.shiftKey });
      return;
    }
    if (event.key === "ContextMenu" || (event.key === "F10" && event.shiftKey)) {
      event.preventDefault();
      openMenu(card, card.querySelector(".card-menu"));
      return;
    }
    if (!NAV_KEYS.includes(event.key)) return;
    event.preventDefault();
    const cards = [...grid.querySelectorAll(".card")];
    const index = cards.indexOf(card);
    const cols = columns(cards);
    let next = index;
    if (event.key === "ArrowLeft") next = index - 1;
    if (event.key === "ArrowRight") next = index + 1;
    if (event.key === "ArrowUp") next = index - cols;
    if (event.key === "ArrowDown") next = Math.min(index + cols, cards.length - 1);
    if (event.key === "Home") next = 0;
    if (event.key === "End") next = cards.length - 1;
    if (next < 0 || next >= cards.length) return;
    activate(cards[next], true);
    // Near the end of what is loaded: fetch the next page.
    if (next >= cards.length - cols) loadPage();
  });

  function openMenu(card, button) {
    const model = modelOf(card.dataset.sha256);
    if (!model || !button) return;
    activate(card);
    showCardMenu(button, model, { comfy, onChanged: refreshModel, onDeleted: removeModel });
  }

  /** Fetch one model's list item again (after a Civitai lookup) and redraw its card. */
  async function refreshModel(sha) {
    try {
      const data = await get("models", { q: sha, include_missing: "true", limit: 10 });
      const item = data.items.find((row) => row.sha256 === sha);
      if (item) api.updateModel(item);
    } catch {
      // The card stays as it was; the toast said what happened.
    }
  }

  /** A model was deleted from its card: drop the card, keep the focus in the grid. */
  function removeModel(sha) {
    const index = list.items.findIndex((item) => item.sha256 === sha);
    if (index < 0) return;
    list.items.splice(index, 1);
    list.total = Math.max(0, list.total - 1);
    const card = cardOf(sha);
    const neighbour = card && (card.nextElementSibling || card.previousElementSibling);
    if (card) card.remove();
    bulk.forget(sha);
    if (activeSha === sha) {
      activeSha = null;
      if (neighbour) activate(neighbour, true);
      else search.focus();
    }
    renderSummary();
    renderMessage();
    loadFacets();
  }

  // ---------------------------------------------------------------- data
  function queryParams(offset) {
    const include = [];
    const exclude = [];
    for (const [name, st] of state.tagStates) (st === "include" ? include : exclude).push(name);
    const { type, base, folder, q, sort, order, recent, includeMissing } = state;
    const filters = { type, base, folder, q, sort, order, recent, includeMissing };
    return listingParams({ ...filters, tags: include, excludeTags: exclude }, offset, PAGE_SIZE);
  }

  async function loadPage() {
    if (list.loading || list.done) return;
    list.loading = true;
    renderMessage();
    const generation = list.generation;
    controller = new AbortController();
    try {
      const data = await get("models", queryParams(list.items.length), { signal: controller.signal });
      if (generation !== list.generation) return;
      const items = data.items;
      list.total = data.total;
      list.items.push(...items);
      if (!activeSha && items.length) activeSha = items[0].sha256;
      grid.append(...items.map(buildCard));
      list.done = items.length < PAGE_SIZE || list.items.length >= list.total;
      list.error = null;
    } catch (err) {
      if (err.name === "AbortError" || generation !== list.generation) return;
      list.error = describeError(err);
    } finally {
      if (generation === list.generation) {
        list.loading = false;
        renderSummary();
        renderMessage();
      }
    }
    // The sentinel may still be near the viewport (a short page): keep filling.
    if (generation === list.generation && !list.done && !list.error && nearViewport(sentinel)) loadPage();
  }

  function reload({ keepSelection = false } = {}) {
    savePrefs({
      sort: state.sort,
      order: state.order,
      view: state.view,
      includeMissing: state.includeMissing,
    });
    if (controller) controller.abort();
    if (!keepSelection) bulk.clear();
    list.generation += 1;
    list.items = [];
    list.total = 0;
    list.done = false;
    list.loading = false;
    list.error = null;
    activeSha = null;
    grid.replaceChildren();
    summary.textContent = "";
    loadPage();
  }

  const MARGIN = 800;
  const nearViewport = (el) => el.isConnected && el.getBoundingClientRect().top < window.innerHeight + MARGIN;
  const scrollObserver = new IntersectionObserver(
    (entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadPage();
    },
    { rootMargin: `${MARGIN}px 0px` },
  );
  scrollObserver.observe(sentinel);

  async function loadFacets() {
    const [types, bases, tags, folders] = await Promise.allSettled([
      get("models/types"),
      get("models/bases"),
      loadTags(true),
      get("models/folders"),
    ]);
    const rows = (result, key) =>
      result.status === "fulfilled"
        ? result.value.filter((row) => key !== "type" || row.type).map((row) => ({ value: row[key], count: row.count }))
        : [];
    renderTypeTabs(rows(types, "type"));
    // A model without a base counts as "unknown" (the listing's base=unknown filter).
    const baseCounts = new Map();
    for (const row of rows(bases, "base")) {
      const value = row.value || UNKNOWN;
      baseCounts.set(value, (baseCounts.get(value) || 0) + row.count);
    }
    renderBases([...baseCounts].map(([value, count]) => ({ value, count })));
    renderFolders(folders.status === "fulfilled" ? folders.value.roots || [] : []);
    allTags = tags.status === "fulfilled" ? tags.value : [];
    const vocabulary = allTags.some((tag) => tag.name.toLowerCase() === NSFW)
      ? allTags
      : [{ name: NSFW, color: null, model_count: 0 }, ...allTags];
    tagFilter.setTags(vocabulary);
  }

  // ---------------------------------------------------------------- events
  search.addEventListener(
    "input",
    debounce(() => {
      state.q = search.value;
      reload();
    }, 250),
  );
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && search.value) {
      search.value = "";
      state.q = "";
      reload();
    }
  });
  function setFiltersOpen(open) {
    filters.classList.toggle("open", open);
    filtersButton.setAttribute("aria-expanded", String(open));
  }
  filtersButton.addEventListener("click", () => setFiltersOpen(!filters.classList.contains("open")));
  // On a narrow screen, Escape folds the filters away again (after the tag list closed).
  filters.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented || !filtersButton.offsetParent) return;
    setFiltersOpen(false);
    filtersButton.focus();
  });
  recentButton.addEventListener("click", () => {
    state.recent = !state.recent;
    renderControls();
    reload();
  });
  baseSelect.addEventListener("change", () => {
    state.base = baseSelect.value;
    renderControls();
    reload();
  });
  folderSelect.addEventListener("change", () => {
    state.folder = folderSelect.value;
    renderControls();
    reload();
  });
  sortSelect.addEventListener("change", () => {
    state.sort = sortSelect.value;
    reload();
  });
  orderButton.addEventListener("click", () => {
    state.order = state.order === "asc" ? "desc" : "asc";
    renderControls();
    reload();
  });
  nsfwSelect.addEventListener("change", () => {
    state.nsfw = nsfwSelect.value;
    setNsfwMode(state.nsfw);
    grid.replaceChildren(...list.items.map(buildCard));
  });
  nsfwToggle.addEventListener("change", () => {
    if (nsfwToggle.checked) state.tagStates.delete(NSFW);
    else state.tagStates.set(NSFW, "exclude");
    tagFilter.render();
    renderControls();
    reload();
  });
  missingToggle.addEventListener("change", () => {
    state.includeMissing = missingToggle.checked;
    renderControls();
    reload();
  });
  for (const [button, view] of [
    [gridButton, "grid"],
    [listButton, "list"],
  ]) {
    button.addEventListener("click", () => {
      if (state.view === view) return;
      state.view = view;
      renderControls();
      reload({ keepSelection: true });
    });
  }

  renderControls();
  renderTypeTabs([]);
  renderFolders([]);
  loadFacets();
  reload();

  const api = {
    /** A model changed (saved in the details panel): redraw its card in place. */
    updateModel(model) {
      const index = list.items.findIndex((item) => item.sha256 === model.sha256);
      if (index < 0) return;
      const merged = { ...list.items[index], ...model };
      // A full record (from the details panel) carries meta, not the listing's derived fields.
      if (model.meta && typeof model.nsfw !== "boolean") {
        const civitai = model.meta.civitai || {};
        merged.nsfw = civitai.nsfw === true || (merged.tags || []).some((tag) => tag.name.toLowerCase() === NSFW);
        if (typeof civitai.url === "string") merged.civitai_url = civitai.url;
      }
      list.items[index] = merged;
      const old = cardOf(model.sha256);
      if (old) old.replaceWith(buildCard(merged));
    },
    refreshFacets: loadFacets,
    focusCard(sha256) {
      activate(cardOf(sha256), true);
    },
    unmount() {
      if (controller) controller.abort();
      scrollObserver.disconnect();
    },
  };
  return api;
}
