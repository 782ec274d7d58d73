// Drawing the library page: type tabs (arrow keys between them), the base and folder
// filters' options, the controls' pressed states, cards, the count and the list's message.

import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { modelCard } from "../../components/model-card.js";
import { loadFailed } from "../../components/widgets.js";
import { NSFW, UNKNOWN, activeFilterCount } from "./state.js";

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

/** Add the drawing functions to ctx (renderTypeTabs, renderBases, renderFolders,
 * renderControls, buildCard, buildPlaceholder, renderSummary, renderMessage). */
export function installRender(ctx) {
  const { state, list, typeTabs, baseSelect, folderSelect, orderButton, gridButton, listButton } = ctx;
  const { recentButton, sortSelect, grid, nsfwToggle, filtersButton, summary, message } = ctx;
  const reload = () => ctx.reload();
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
    const n = activeFilterCount(state);
    count.hidden = n === 0;
    count.textContent = formatNumber(n);
  }

  /** The card of `model`, item `index` of the filtered set (its place for screen readers). */
  function buildCard(model, index) {
    const card = modelCard(model, {
      view: state.view,
      nsfw: state.nsfw,
      selected: ctx.bulk.selected.has(model.sha256),
      active: false, // grid.js places the tab stop
    });
    card.setAttribute("aria-posinset", String(index + 1));
    card.setAttribute("aria-setsize", String(list.total));
    return card;
  }

  /** A card whose page is still loading (it can hold the focus; the card replaces it). */
  function buildPlaceholder(index) {
    return h("article", {
      class: "card card-placeholder",
      role: "listitem",
      tabindex: "-1",
      "aria-busy": "true",
      "aria-label": t("common.loading"),
      "aria-posinset": String(index + 1),
      "aria-setsize": String(list.total),
    });
  }

  function renderSummary() {
    summary.textContent = list.error ? "" : t("library.count", { n: list.total });
    ctx.bulk.render();
  }

  function renderMessage() {
    if (list.error) {
      replaceChildren(message, loadFailed(t("library.loadFailed", { error: list.error }), reload));
    } else if (list.loading) {
      replaceChildren(message, h("p", { class: "muted" }, t("common.loading")));
    } else if (!list.total) {
      replaceChildren(message, h("p", { class: "muted empty" }, t("library.empty")));
    } else {
      message.replaceChildren();
    }
  }

  Object.assign(ctx, { renderTypeTabs, renderBases, renderFolders, renderControls, buildCard, buildPlaceholder, renderSummary, renderMessage });
}
