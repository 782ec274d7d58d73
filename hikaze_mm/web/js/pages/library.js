// Library page: type tabs, search, and filters (a panel behind a "Filters" button on narrow
// screens): a searchable tag filter, base (with "unknown"), folder tree, sort, "Recently
// used", missing models, the NSFW image setting; a grid (or list) of model cards that loads
// page by page as it scrolls, with one tab stop (roving tabindex, arrow keys between
// cards), a menu of actions per card, and a selection for bulk actions.
//
// The parts: library/state.js (filters, list, query), library/query.js (loading),
// library/controls.js, library/render.js and library/grid.js (the views). They share one
// context object, `ctx`: the state, the elements, and the functions each part adds.

import { h } from "../../comfy/shared/dom.js";
import { insideComfy } from "../comfy-link.js";
import { t } from "../i18n.js";
import { createBulk } from "../components/bulk.js";
import { createControls, wireControls } from "./library/controls.js";
import { installGrid } from "./library/grid.js";
import { installQuery } from "./library/query.js";
import { installRender } from "./library/render.js";
import { NSFW, createLibraryState, queryParams } from "./library/state.js";

/** The bulk actions' bar, over the selection of the listed models. */
function libraryBulk(ctx) {
  return createBulk({
    params: () => queryParams(ctx.state, 0),
    total: () => ctx.list.total,
    visibleShas: () => ctx.list.items.map((item) => item.sha256),
    tagNames: () => ctx.allTags.map((tag) => tag.name),
    onSelectionChange: (selected) => {
      for (const el of ctx.grid.querySelectorAll(".card")) {
        const on = selected.has(el.dataset.sha256);
        el.classList.toggle("selected", on);
        const box = el.querySelector(".card-select");
        if (box) box.checked = on;
      }
    },
    // The facets' counts changed (tags, bases, types). After tags or a delete the selection
    // is done with; after a Civitai lookup it stays, to act on the same models again.
    afterChange: (kind) => {
      ctx.loadFacets();
      ctx.reload({ keepSelection: kind === "civitai" });
    },
  });
}

/** A model changed (saved in the details panel): redraw its card in place. */
function updateModel(ctx, model) {
  const { list } = ctx;
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
  const old = ctx.cardOf(model.sha256);
  if (old) old.replaceWith(ctx.buildCard(merged));
}

export function mountLibrary(root, { openDetails }) {
  const ctx = {
    ...createLibraryState(),
    openDetails,
    allTags: [],
    controller: null,
    activeSha: null, // the card that holds the grid's one tab stop
    comfy: false, // served by ComfyUI: cards offer "Send to workflow"
    summary: h("p", { class: "summary", role: "status", "aria-live": "polite" }),
    grid: h("div", { class: "cards", role: "list", "aria-label": t("library.models") }),
    message: h("div", { class: "list-message" }),
    sentinel: h("div", { class: "sentinel", "aria-hidden": "true" }),
  };
  insideComfy().then((inside) => {
    ctx.comfy = inside;
  });
  Object.assign(
    ctx,
    createControls(ctx.state, () => {
      ctx.renderControls();
      ctx.reload();
    }),
  );
  ctx.bulk = libraryBulk(ctx);
  ctx.updateModel = (model) => updateModel(ctx, model);
  const { typeTabs, search, filtersButton, gridButton, listButton, filters, summary, grid, message } = ctx;
  const { sentinel, bulk } = ctx;

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

  installRender(ctx);
  installGrid(ctx);
  installQuery(ctx);
  wireControls(ctx);
  ctx.renderControls();
  ctx.renderTypeTabs([]);
  ctx.renderFolders([]);
  ctx.loadFacets();
  ctx.reload();

  return {
    updateModel: ctx.updateModel,
    refreshFacets: () => ctx.loadFacets(),
    focusCard(sha256) {
      ctx.activate(ctx.cardOf(sha256), true);
    },
    unmount() {
      if (ctx.controller) ctx.controller.abort();
      ctx.scrollObserver.disconnect();
    },
  };
}
