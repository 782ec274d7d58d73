// Pending review: every pending model with its original image, tags, status and reason;
// multi-select and Import; conflicts shown side by side (existing vs pending) with a
// choice of override / merge / delete per item or for all.
//
// Wide screens list the items in a table; below NARROW (a phone) each item is a card with
// the same parts (status, name, path, short hash, Import/Resolve). Hashes show their first
// SHORT_HASH hex digits, the full one on demand. Images of NSFW items are blurred until
// clicked (or hidden, or shown: the "hikaze.nsfw" setting).

//
// The parts: pending/state.js, pending/query.js (loading, imports, resolving) and the views
// pending/list.js and pending/conflicts.js; they share one context object, `ctx`.

import { h } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";
import { nsfwMode } from "../components/nsfw.js";
import { dismiss, importIds, load, openConflict, page, resolveAll, resolveOne } from "./pending/query.js";
import { render, renderSelection } from "./pending/list.js";
import { NARROW, STATUSES, STRATEGIES, createPendingState } from "./pending/state.js";

/** Wire the toolbar: import the selection, select all, filter by status. */
function wireToolbar(ctx) {
  const { state, selectAll, listHost, statusSelect } = ctx;
  ctx.narrow.addEventListener("change", () => render(ctx));
  ctx.importButton.addEventListener("click", () => importIds(ctx, [...state.selected]));
  selectAll.addEventListener("change", () => {
    for (const item of state.items) {
      if (selectAll.checked) state.selected.add(Number(item.id));
      else state.selected.delete(Number(item.id));
    }
    for (const box of listHost.querySelectorAll(".item-check")) box.checked = selectAll.checked;
    renderSelection(ctx);
  });
  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    state.offset = 0;
    load(ctx);
  });
}

export function mountPending(root, { refreshCounts = () => {} } = {}) {
  const ctx = { ...createPendingState(), refreshCounts, narrow: window.matchMedia(NARROW), nsfw: nsfwMode() };

  const statusSelect = h(
    "select",
    { class: "input", "aria-label": t("pending.statusFilter") },
    STATUSES.map((s) => h("option", { value: s }, s ? t(`status.${s}`) : t("pending.allStatuses"))),
  );
  const refreshButton = h(
    "button",
    { type: "button", class: "btn", onclick: () => ctx.load() },
    t("common.refresh"),
  );
  const selectAll = h("input", { type: "checkbox", class: "checkbox", "aria-label": t("pending.selectAll") });
  const strategySelect = h(
    "select",
    { class: "input", "aria-label": t("pending.strategyLabel") },
    h("option", { value: "" }, t("pending.strategy.ask")),
    STRATEGIES.map((s) => h("option", { value: s }, t(`pending.strategy.${s}`))),
  );
  const importButton = h(
    "button",
    { type: "button", class: "btn btn-primary", disabled: true },
    t("pending.import"),
  );
  const summary = h("p", { class: "summary", role: "status", "aria-live": "polite" });
  const tbody = h("tbody");
  const selectAllHead = h("th", { scope: "col", class: "col-check" });
  const table = h(
    "table",
    { class: "table pending-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        selectAllHead,
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("pending.image"))),
        h("th", { scope: "col" }, t("pending.model")),
        h("th", { scope: "col" }, t("pending.type")),
        h("th", { scope: "col" }, t("pending.tags")),
        h("th", { scope: "col" }, t("pending.status")),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("pending.actions"))),
      ),
    ),
    tbody,
  );
  const tableWrap = h("div", { class: "table-wrap" }, table);
  const cards = h("ul", { class: "pending-cards", "aria-label": t("pending.listLabel") });
  const selectAllLabel = h("label", { class: "inline-label" }, h("span", {}, t("pending.selectAllShort")));
  const cardsBar = h("div", { class: "pending-cards-bar" });
  const listHost = h("div", { class: "pending-list" });
  const prevButton = h(
    "button",
    { type: "button", class: "btn", onclick: () => ctx.page(-1) },
    t("common.previous"),
  );
  const nextButton = h("button", { type: "button", class: "btn", onclick: () => ctx.page(1) }, t("common.next"));
  const pageInfo = h("span", { class: "muted" });
  const message = h("div", { class: "list-message" });
  const conflictSection = h("section", {
    class: "conflicts",
    "aria-labelledby": "conflicts-title",
    hidden: true,
  });

  Object.assign(ctx, { statusSelect, refreshButton, selectAll, strategySelect, importButton, summary, tbody, selectAllHead, table, tableWrap, cards, selectAllLabel, cardsBar, listHost, prevButton, nextButton, pageInfo, message, conflictSection });
  root.append(
    h(
      "section",
      { class: "page page-pending", "aria-labelledby": "pending-title" },
      h("h1", { id: "pending-title" }, t("nav.pending")),
      h("p", { class: "muted" }, t("pending.intro")),
      conflictSection,
      h(
        "div",
        { class: "toolbar" },
        statusSelect,
        refreshButton,
        h("span", { class: "spacer" }),
        h("label", { class: "inline-label" }, t("pending.onConflict"), strategySelect),
        importButton,
      ),
      summary,
      listHost,
      message,
      h("div", { class: "pager" }, prevButton, pageInfo, nextButton),
    ),
  );

  Object.assign(ctx, {
    load: () => load(ctx),
    page: (delta) => page(ctx, delta),
    importIds: (ids) => importIds(ctx, ids),
    openConflict: (id) => openConflict(ctx, id),
    dismiss: (id) => dismiss(ctx, id),
    resolveOne: (id, button) => resolveOne(ctx, id, button),
    resolveAll: (button) => resolveAll(ctx, button),
  });
  wireToolbar(ctx);
  load(ctx);
  return {
    /** Pending models changed (a scan, another tab): the list shown again. */
    onChanges({ kinds, all }) {
      if (all || kinds.has("pending")) load(ctx);
    },
    unmount() {
      ctx.stopped = true;
      clearTimeout(ctx.refreshTimer);
    },
  };
}
