// The library page's controls: type tabs, search, the Filters panel (tags, base, folder,
// sort, "Recently used", NSFW, missing models, "Update available" and the update check's
// `extra` element) and the grid/list switch; their events change the state and reload the
// list (ctx.reload).

import { debounce, h } from "../../../comfy/shared/dom.js";
import { t } from "../../i18n.js";
import { NSFW_MODES, setNsfwMode } from "../../components/nsfw.js";
import { createTagFilter } from "../../components/tag-filter.js";
import { NSFW, SORTS } from "./state.js";

/** The controls' elements; `onTagsChange` runs when the tag filter changes; `extra` (an
 * element or null) closes the filters' row. */
export function createControls(state, onTagsChange, extra = null) {
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
  const updateToggle = h("input", { type: "checkbox", id: "update-toggle", class: "switch", checked: state.update });
  const viewButton = (label, icon) =>
    h("button", { type: "button", class: "btn btn-seg", "aria-label": label, title: label }, icon);
  const gridButton = viewButton(t("library.gridView"), "▦");
  const listButton = viewButton(t("library.listView"), "☰");
  const tagFilter = createTagFilter({
    states: state.tagStates,
    onChange: onTagsChange,
  });
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
        h(
          "label",
          { class: "toggle", for: "update-toggle" },
          updateToggle,
          h("span", {}, t("library.updateAvailable")),
        ),
      ),
      extra,
    ),
  );
  return {
    typeTabs,
    search,
    filtersButton,
    recentButton,
    baseSelect,
    folderSelect,
    sortSelect,
    orderButton,
    nsfwSelect,
    nsfwToggle,
    missingToggle,
    updateToggle,
    gridButton,
    listButton,
    tagFilter,
    filters,
  };
}

/** Wire the controls: each change updates the state, redraws the controls and reloads. */
export function wireControls(ctx) {
  const { state, tagFilter, search, filters, filtersButton } = ctx;
  const { recentButton, baseSelect, folderSelect, sortSelect, orderButton } = ctx;
  const { nsfwSelect, nsfwToggle, missingToggle, updateToggle, gridButton, listButton } = ctx;
  const renderControls = () => ctx.renderControls();
  const reload = (options) => ctx.reload(options);
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
    ctx.cards.redraw();
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
  updateToggle.addEventListener("change", () => {
    state.update = updateToggle.checked;
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
}
