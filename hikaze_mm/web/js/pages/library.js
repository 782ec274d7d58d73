// Library page: type tabs, search, and filters (a panel behind a "Filters" button on narrow
// screens): a searchable tag filter, base (with "unknown"), folder tree, sort, "Recently
// used", missing models, "Update available" with "Check for updates"
// (library/update-check.js), the NSFW image setting; a grid (or list) of model cards that
// renders only the rows near the viewport (pages of the listing fetched as they come into
// view; the scroll bar spans the whole filtered set), with one tab stop (roving tabindex,
// arrow keys over the whole set), a menu of actions per card, and a selection for bulk
// actions. "Inspect image…" (or an image dropped anywhere on the page) lists what an image
// was made with (library/inspect.js).
//
// The parts: library/state.js (filters, list, query), library/query.js (the virtual grid),
// library/controls.js, library/render.js and library/grid.js (the views). They share one
// context object, `ctx`: the state, the elements, and the functions each part adds.

import { h } from "../../comfy/shared/dom.js";
import { insideComfy } from "../comfy-link.js";
import { t } from "../i18n.js";
import { createBulk, listShas } from "../components/bulk.js";
import { isNsfw } from "../components/gallery.js";
import { createControls, wireControls } from "./library/controls.js";
import { installGrid } from "./library/grid.js";
import { installInspect } from "./library/inspect.js";
import { installQuery } from "./library/query.js";
import { installRender } from "./library/render.js";
import { createLibraryState, queryParams } from "./library/state.js";
import { createUpdateCheck } from "./library/update-check.js";

/** The sha256s of items a..b (inclusive) of the filtered set: from the cached pages, else
 * asked from the listing (500 at a time). */
async function shasBetween(ctx, a, b) {
  const cached = [];
  for (let index = a; index <= b; index += 1) {
    const item = ctx.cards.itemAt(index);
    if (!item) break;
    cached.push(item.sha256);
  }
  if (cached.length === b - a + 1) return cached;
  return listShas(queryParams(ctx.state, 0), a, b - a + 1);
}

/** The bulk actions' bar, over the selection of the listed models. */
function libraryBulk(ctx) {
  return createBulk({
    params: () => queryParams(ctx.state, 0),
    total: () => ctx.list.total,
    shasBetween: (a, b) => shasBetween(ctx, a, b),
    tagNames: () => ctx.allTags.map((tag) => tag.name),
    onSelectionChange: (selected) => {
      for (const el of ctx.cards ? ctx.cards.rendered() : []) {
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
      ctx.reload({ keepSelection: kind === "civitai", keepScroll: true });
    },
  });
}

/** The listing's `update` of a record's meta: {version_id, version_name}, or null. */
function updateOf(meta) {
  const update = meta.update;
  if (!update || !Number.isInteger(update.version_id)) return null;
  const name = typeof update.version_name === "string" ? update.version_name : null;
  return { version_id: update.version_id, version_name: name };
}

/** A model changed (saved in the details panel): redraw its card in place. */
function updateModel(ctx, model) {
  const index = ctx.cards.findIndex((item) => item.sha256 === model.sha256);
  if (index < 0) return;
  const merged = { ...ctx.cards.itemAt(index), ...model };
  // A full record (from the details panel) carries meta, not the listing's derived fields.
  if (model.meta && typeof model.nsfw !== "boolean") {
    merged.nsfw = isNsfw(model);
    const civitai = model.meta.civitai || {};
    if (typeof civitai.url === "string") merged.civitai_url = civitai.url;
    merged.update = updateOf(model.meta);
  }
  ctx.cards.setItem(index, merged);
}

export function mountLibrary(root, { openDetails }) {
  const ctx = {
    ...createLibraryState(),
    openDetails,
    allTags: [],
    activeIndex: 0, // the item (of the filtered set) that holds the grid's one tab stop
    comfy: false, // served by ComfyUI: cards offer "Send to workflow"
    summary: h("p", { class: "summary", role: "status", "aria-live": "polite" }),
    grid: h("div", { class: "cards", role: "list", "aria-label": t("library.models") }),
    message: h("div", { class: "list-message" }),
  };
  insideComfy().then((inside) => {
    ctx.comfy = inside;
  });
  // After a check the cards' badges (and the "Update available" filter's set) change.
  const updateCheck = createUpdateCheck({ afterCheck: () => ctx.reload({ keepSelection: true, keepScroll: true }) });
  Object.assign(
    ctx,
    createControls(
      ctx.state,
      () => {
        ctx.renderControls();
        ctx.reload();
      },
      updateCheck.el,
    ),
  );
  ctx.bulk = libraryBulk(ctx);
  const inspect = installInspect(ctx);
  ctx.updateModel = (model) => updateModel(ctx, model);
  const { typeTabs, search, filtersButton, gridButton, listButton, filters, summary, grid, message } = ctx;
  const { bulk } = ctx;

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
        inspect.button,
        inspect.fileInput,
      ),
      filters,
      summary,
      grid,
      message,
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
    /** Models, tags or images changed somewhere: the cards shown (in place, the rows kept
     * until the new ones arrive) and the filters' counts read again. */
    onChanges({ kinds, all }) {
      if (all || kinds.has("models") || kinds.has("images") || kinds.has("tags")) ctx.cards.refresh();
      if (all || kinds.has("models") || kinds.has("tags")) ctx.loadFacets();
    },
    /** Back from the details panel: focus the model's card (scrolling only if it is out of view). */
    focusCard(sha256) {
      const index = ctx.cards.findIndex((item) => item.sha256 === sha256);
      if (index < 0) return;
      const card = ctx.cards.elementAt(index);
      if (card) ctx.activate(card, true);
      else ctx.goTo(index);
    },
    unmount() {
      ctx.cards.destroy();
      inspect.destroy();
      updateCheck.destroy();
    },
  };
}
