// Loading the library: a virtual grid (comfy/shared/virtual-list.js) that fetches the pages
// of the listing its rows in view need, a reload when a filter changes, and the facets
// (types, bases, folders, tags) with their counts.

import { get } from "../../api.js";
import { loadTags } from "../../tags.js";
import { describeError } from "../../components/toast.js";
import { releaseThumbs } from "../../components/lazyimg.js";
import { createVirtualList } from "../../../comfy/shared/virtual-list.js";
import { NSFW, PAGE_SIZE, UNKNOWN, queryParams, rememberView } from "./state.js";

/** Add the virtual list (ctx.cards), reload and loadFacets to ctx. */
export function installQuery(ctx) {
  const { state, list, grid, summary, bulk, tagFilter } = ctx;
  const { renderSummary, renderMessage, buildCard, buildPlaceholder } = ctx;
  const cards = createVirtualList({
    container: grid,
    pageSize: PAGE_SIZE,
    estimate: 360,
    load: (offset, _limit, signal) => get("models", queryParams(state, offset), { signal }),
    render: buildCard,
    placeholder: buildPlaceholder,
    onRemove: releaseThumbs,
    afterRender: () => ctx.afterRender(),
    onLoad({ total, error }) {
      list.total = total || 0;
      list.loading = false;
      list.error = error ? describeError(error) : null;
      renderSummary();
      renderMessage();
    },
  });

  /** Load the list again: after a filter changed (from the top), or after models changed
   * under it (`keepScroll`: the same place, the count kept until the answer). */
  function reload({ keepSelection = false, keepScroll = false } = {}) {
    rememberView(state);
    if (keepSelection) bulk.resetAnchor();
    else bulk.clear();
    list.error = null;
    if (!keepScroll) {
      list.total = 0;
      list.loading = true;
      ctx.activeIndex = 0;
      summary.textContent = "";
    }
    renderMessage();
    cards.reset({ keepTotal: keepScroll });
  }

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
    ctx.renderTypeTabs(rows(types, "type"));
    // A model without a base counts as "unknown" (the listing's base=unknown filter).
    const baseCounts = new Map();
    for (const row of rows(bases, "base")) {
      const value = row.value || UNKNOWN;
      baseCounts.set(value, (baseCounts.get(value) || 0) + row.count);
    }
    ctx.renderBases([...baseCounts].map(([value, count]) => ({ value, count })));
    ctx.renderFolders(folders.status === "fulfilled" ? folders.value.roots || [] : []);
    ctx.allTags = tags.status === "fulfilled" ? tags.value : [];
    const vocabulary = ctx.allTags.some((tag) => tag.name.toLowerCase() === NSFW)
      ? ctx.allTags
      : [{ name: NSFW, color: null, model_count: 0 }, ...ctx.allTags];
    tagFilter.setTags(vocabulary);
  }

  Object.assign(ctx, { cards, reload, loadFacets });
}
