// Loading the library: the listing page by page (the next page when the end of the grid
// nears the viewport), a reload when a filter changes, and the facets (types, bases,
// folders, tags) with their counts.

import { get } from "../../api.js";
import { loadTags } from "../../tags.js";
import { describeError } from "../../components/toast.js";
import { NSFW, PAGE_SIZE, UNKNOWN, queryParams, rememberView } from "./state.js";

/** Add loadPage, reload and loadFacets to ctx, and start following the scroll. */
export function installQuery(ctx) {
  const { state, list, grid, summary, sentinel, bulk, tagFilter } = ctx;
  const { renderSummary, renderMessage, buildCard } = ctx;
  async function loadPage() {
    if (list.loading || list.done) return;
    list.loading = true;
    renderMessage();
    const generation = list.generation;
    const controller = new AbortController();
    ctx.controller = controller;
    try {
      const data = await get("models", queryParams(state, list.items.length), { signal: controller.signal });
      if (generation !== list.generation) return;
      const items = data.items;
      list.total = data.total;
      list.items.push(...items);
      if (!ctx.activeSha && items.length) ctx.activeSha = items[0].sha256;
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
    rememberView(state);
    if (ctx.controller) ctx.controller.abort();
    if (!keepSelection) bulk.clear();
    list.generation += 1;
    list.items = [];
    list.total = 0;
    list.done = false;
    list.loading = false;
    list.error = null;
    ctx.activeSha = null;
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

  Object.assign(ctx, { loadPage, reload, loadFacets, scrollObserver });
}
