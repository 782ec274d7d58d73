// Library page: type tabs, search, base filter, tri-state tag chips (nsfw excluded by
// default), sort, grid/list view, and an infinitely scrolling list of model cards that
// fetches pages with limit/offset and lazy-loads thumbnails.

import { get, getFacet, imageUrl } from "../api.js";
import { debounce, h, replaceChildren, safeColor } from "../dom.js";
import { formatBytes, formatNumber } from "../format.js";
import { t } from "../i18n.js";
import { loadTags } from "../tags.js";
import { lazyThumb } from "../components/lazyimg.js";
import { describeError } from "../components/toast.js";
import { loadFailed, tagList } from "../components/widgets.js";

const PAGE_SIZE = 100;
const NSFW = "nsfw";
const TAG_CHIP_LIMIT = 40;
const SORTS = ["name", "created_at", "last_used_at", "size_bytes"];
const STORE_KEY = "hikaze.library.view";

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

export function mountLibrary(root, { openDetails }) {
  const prefs = loadPrefs();
  const state = {
    type: "",
    q: "",
    base: "",
    sort: SORTS.includes(prefs.sort) ? prefs.sort : "name",
    order: prefs.order === "desc" ? "desc" : "asc",
    view: prefs.view === "list" ? "list" : "grid",
    includeMissing: prefs.includeMissing !== false,
    tagStates: new Map([[NSFW, "exclude"]]),
    tagFilter: "",
    showAllTags: false,
  };
  const list = { items: [], total: 0, loading: false, done: false, generation: 0, error: null };
  let allTags = [];
  let controller = null;

  // ---------------------------------------------------------------- controls
  const typeTabs = h("div", { class: "tabs", role: "tablist", "aria-label": t("library.types") });
  const search = h("input", {
    type: "search",
    class: "input search",
    placeholder: t("library.searchPlaceholder"),
    "aria-label": t("library.search"),
    value: state.q,
  });
  const baseSelect = h("select", { class: "input", "aria-label": t("library.base") });
  const sortSelect = h(
    "select",
    { class: "input", "aria-label": t("library.sort") },
    SORTS.map((key) => h("option", { value: key, selected: key === state.sort }, t(`library.sort.${key}`))),
  );
  const orderButton = h("button", { type: "button", class: "btn" });
  const nsfwToggle = h("input", { type: "checkbox", id: "nsfw-toggle", class: "switch" });
  const missingToggle = h("input", {
    type: "checkbox",
    id: "missing-toggle",
    class: "switch",
    checked: state.includeMissing,
  });
  const gridButton = h(
    "button",
    {
      type: "button",
      class: "btn btn-seg",
      "aria-label": t("library.gridView"),
      title: t("library.gridView"),
    },
    "▦",
  );
  const listButton = h(
    "button",
    {
      type: "button",
      class: "btn btn-seg",
      "aria-label": t("library.listView"),
      title: t("library.listView"),
    },
    "☰",
  );
  const tagFilterInput = h("input", {
    type: "search",
    class: "input input-small",
    placeholder: t("library.filterTags"),
    "aria-label": t("library.filterTags"),
  });
  const tagChips = h("div", { class: "chips", role: "group", "aria-label": t("library.tagFilters") });
  const tagMore = h("button", { type: "button", class: "btn btn-link" });
  const summary = h("p", { class: "summary", role: "status", "aria-live": "polite" });
  const grid = h("div", { class: "cards", role: "list", "aria-label": t("library.models") });
  const message = h("div", { class: "list-message" });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });

  root.append(
    h(
      "section",
      { class: "page page-library", "aria-labelledby": "library-title" },
      h("h1", { id: "library-title", class: "visually-hidden" }, t("nav.library")),
      typeTabs,
      h(
        "div",
        { class: "toolbar" },
        search,
        baseSelect,
        sortSelect,
        orderButton,
        h("label", { class: "toggle", for: "nsfw-toggle" }, nsfwToggle, h("span", {}, t("library.showNsfw"))),
        h(
          "label",
          { class: "toggle", for: "missing-toggle" },
          missingToggle,
          h("span", {}, t("library.showMissing")),
        ),
        h(
          "div",
          { class: "segmented", role: "group", "aria-label": t("library.viewMode") },
          gridButton,
          listButton,
        ),
      ),
      h("div", { class: "tag-filter-bar" }, tagFilterInput, tagChips, tagMore),
      summary,
      grid,
      message,
      sentinel,
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
        h("option", { value: item.value, selected: item.value === state.base }, item.value),
      ),
    );
  }

  function renderControls() {
    orderButton.textContent = state.order === "asc" ? t("library.ascending") : t("library.descending");
    orderButton.setAttribute("aria-label", t("library.orderLabel", { order: orderButton.textContent }));
    gridButton.setAttribute("aria-pressed", String(state.view === "grid"));
    listButton.setAttribute("aria-pressed", String(state.view === "list"));
    grid.classList.toggle("view-list", state.view === "list");
    grid.classList.toggle("view-grid", state.view === "grid");
    nsfwToggle.checked = state.tagStates.get(NSFW) !== "exclude";
  }

  function tagStateLabel(name, st) {
    return t(`library.tagState.${st || "off"}`, { name });
  }

  function renderTagChips() {
    const filter = state.tagFilter.trim().toLowerCase();
    let tags = allTags.filter((tag) => !filter || tag.name.toLowerCase().includes(filter));
    // nsfw always has a chip, even before any model carries it.
    if (!tags.some((tag) => tag.name.toLowerCase() === NSFW) && (!filter || NSFW.includes(filter))) {
      tags = [{ name: NSFW, color: null, model_count: 0 }, ...tags];
    }
    const active = tags.filter((tag) => state.tagStates.has(tag.name));
    const rest = tags.filter((tag) => !state.tagStates.has(tag.name));
    const shown = state.showAllTags || filter ? rest : rest.slice(0, TAG_CHIP_LIMIT);
    replaceChildren(
      tagChips,
      [...active, ...shown].map((tag) => {
        const st = state.tagStates.get(tag.name) || "off";
        return h(
          "button",
          {
            type: "button",
            class: ["chip", `chip-${st}`],
            style: { "--tag-color": safeColor(tag.color) },
            "aria-label": tagStateLabel(tag.name, st),
            title: tagStateLabel(tag.name, st),
            dataset: { tag: tag.name, state: st },
            onclick: () => cycleTag(tag.name),
          },
          h(
            "span",
            { class: "chip-mark", "aria-hidden": "true" },
            st === "include" ? "+" : st === "exclude" ? "−" : "",
          ),
          h("span", {}, tag.name),
          tag.model_count ? h("span", { class: "count" }, formatNumber(tag.model_count)) : null,
        );
      }),
    );
    const hidden = rest.length - shown.length;
    tagMore.hidden = !(hidden > 0 || (state.showAllTags && rest.length > TAG_CHIP_LIMIT && !filter));
    tagMore.textContent = state.showAllTags ? t("library.fewerTags") : t("library.moreTags", { n: hidden });
  }

  function cycleTag(name) {
    const current = state.tagStates.get(name) || "off";
    const next = { off: "include", include: "exclude", exclude: "off" }[current];
    if (next === "off") state.tagStates.delete(name);
    else state.tagStates.set(name, next);
    renderTagChips();
    renderControls();
    const chip = tagChips.querySelector(`[data-tag="${CSS.escape(name)}"]`);
    if (chip) chip.focus();
    reload();
  }

  function card(model) {
    const tags = model.tags || [];
    const quality = state.view === "list" ? "low" : "medium";
    const src = model.cover_image ? imageUrl(model.cover_image, quality) : "";
    const name = model.name || model.path || model.sha256;
    const el = h(
      "article",
      {
        class: ["card", model.missing ? "missing" : ""],
        role: "listitem",
        tabindex: "0",
        "aria-label": model.missing ? t("library.cardMissingLabel", { name }) : name,
        dataset: { sha256: model.sha256 },
        onclick: () => openDetails(model.sha256),
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            openDetails(model.sha256);
          }
        },
      },
      lazyThumb(src, name, { alt: t("library.previewOf", { name }) }),
      h(
        "div",
        { class: "card-body" },
        h("div", { class: "card-name", title: model.path || "" }, name),
        h(
          "div",
          { class: "card-meta" },
          h("span", { class: "badge badge-type" }, model.type || "other"),
          model.base ? h("span", { class: "badge badge-base" }, model.base) : null,
          model.missing ? h("span", { class: "badge status-missing" }, t("status.missing")) : null,
          h(
            "code",
            { class: "hash", title: model.sha256 },
            model.short_hash,
          ),
          h("span", { class: "size" }, formatBytes(model.size_bytes)),
        ),
        tagList(tags),
      ),
    );
    return el;
  }

  function renderSummary() {
    summary.textContent = list.error ? "" : t("library.count", { n: list.total });
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

  // ---------------------------------------------------------------- data
  function queryParams(offset) {
    const include = [];
    const exclude = [];
    for (const [name, st] of state.tagStates) (st === "include" ? include : exclude).push(name);
    return {
      type: state.type,
      base: state.base,
      q: state.q.trim(),
      tags: include,
      exclude_tags: exclude,
      sort: state.sort,
      order: state.order,
      include_missing: state.includeMissing ? "true" : "false",
      offset,
      limit: PAGE_SIZE,
    };
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
      grid.append(...items.map(card));
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

  function reload() {
    savePrefs({
      sort: state.sort,
      order: state.order,
      view: state.view,
      includeMissing: state.includeMissing,
    });
    if (controller) controller.abort();
    list.generation += 1;
    list.items = [];
    list.total = 0;
    list.done = false;
    list.loading = false;
    list.error = null;
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
    const [types, bases, tags] = await Promise.allSettled([
      getFacet("type"),
      getFacet("base"),
      loadTags(true),
    ]);
    renderTypeTabs(types.status === "fulfilled" ? types.value : []);
    renderBases(bases.status === "fulfilled" ? bases.value : []);
    allTags = tags.status === "fulfilled" ? tags.value : [];
    renderTagChips();
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
  baseSelect.addEventListener("change", () => {
    state.base = baseSelect.value;
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
  nsfwToggle.addEventListener("change", () => {
    if (nsfwToggle.checked) state.tagStates.delete(NSFW);
    else state.tagStates.set(NSFW, "exclude");
    renderTagChips();
    reload();
  });
  missingToggle.addEventListener("change", () => {
    state.includeMissing = missingToggle.checked;
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
      reload();
    });
  }
  tagFilterInput.addEventListener(
    "input",
    debounce(() => {
      state.tagFilter = tagFilterInput.value;
      renderTagChips();
    }, 150),
  );
  tagMore.addEventListener("click", () => {
    state.showAllTags = !state.showAllTags;
    renderTagChips();
  });

  renderControls();
  renderTypeTabs([]);
  renderTagChips();
  loadFacets();
  reload();

  return {
    /** A model changed (saved in the details panel): redraw its card in place. */
    updateModel(model) {
      const index = list.items.findIndex((item) => item.sha256 === model.sha256);
      if (index < 0) return;
      const merged = { ...list.items[index], ...model };
      list.items[index] = merged;
      const old = grid.querySelector(`[data-sha256="${CSS.escape(model.sha256)}"]`);
      if (old) old.replaceWith(card(merged));
    },
    refreshFacets: loadFacets,
    focusCard(sha256) {
      const el = grid.querySelector(`[data-sha256="${CSS.escape(sha256)}"]`);
      if (el) el.focus();
    },
    unmount() {
      if (controller) controller.abort();
      scrollObserver.disconnect();
    },
  };
}
