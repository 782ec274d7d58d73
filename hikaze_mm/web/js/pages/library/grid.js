// The library's grid: one tab stop (roving tabindex; arrow keys, Page Up/Down, Home and End
// move over the whole filtered set, scrolling the target into view, not only over the cards
// rendered), clicks and keys on cards (open, select, menu), and the card menu's outcomes
// (a model refreshed or deleted). Cards carry data-index, their place in the filtered set.

import { get } from "../../api.js";
import { showCardMenu } from "../../components/card-actions.js";
import { moveIndex } from "../../../comfy/shared/virtual.js";

const NAV_KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"];

function setTabbable(card, on) {
  const value = on ? "0" : "-1";
  card.setAttribute("tabindex", value);
  for (const control of card.querySelectorAll(".card-control")) control.setAttribute("tabindex", value);
}

const indexOf = (card) => Number(card.dataset.index);

/** Wire the grid; adds activate, goTo and afterRender to ctx. */
export function installGrid(ctx) {
  const { list, grid, bulk, search, openDetails } = ctx;
  let stop = null; // the rendered card holding the tab stop

  /** The tab stop is the active card if rendered, else the first card rendered. */
  function afterRender() {
    const cards = ctx.cards;
    const want = cards.elementAt(ctx.activeIndex) || cards.elementAt(Math.min(...cards.rendered().map(indexOf)));
    if (stop === want && (!stop || stop.getAttribute("tabindex") === "0")) return;
    if (stop && stop.isConnected) setTabbable(stop, false);
    stop = want || null;
    if (stop) setTabbable(stop, true);
  }

  /** Make `card` the grid's tab stop (optionally focusing it). */
  function activate(card, focus = false) {
    if (!card) return;
    ctx.activeIndex = indexOf(card);
    afterRender();
    if (focus) {
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }
  }

  /** Move the tab stop and the focus to item `index` of the filtered set. */
  function goTo(index) {
    const card = ctx.cards.reveal(index);
    ctx.activeIndex = index;
    afterRender();
    if (card) card.focus({ preventScroll: true });
  }

  const modelOf = (card) => ctx.cards.itemAt(indexOf(card));

  grid.addEventListener("focusin", (event) => {
    const card = event.target.closest(".card");
    if (card) activate(card);
  });

  grid.addEventListener("click", async (event) => {
    const card = event.target.closest(".card");
    if (!card || !card.dataset.sha256) return;
    const sha = card.dataset.sha256;
    const index = indexOf(card);
    const box = event.target.closest(".card-select");
    if (box) {
      await bulk.toggle(sha, { shift: event.shiftKey, on: box.checked, index });
      return;
    }
    const menu = event.target.closest(".card-menu");
    if (menu) {
      openMenu(card, menu);
      return;
    }
    if (event.shiftKey || event.ctrlKey || event.metaKey) {
      // Selection gestures on the card itself.
      await bulk.toggle(sha, { shift: event.shiftKey, index });
      return;
    }
    openDetails(sha);
  });

  grid.addEventListener("keydown", (event) => {
    const card = event.target;
    if (!card.classList || !card.classList.contains("card")) return;
    const sha = card.dataset.sha256;
    if (sha && event.key === "Enter") {
      event.preventDefault();
      openDetails(sha);
      return;
    }
    if (sha && event.key === " ") {
      event.preventDefault();
      bulk.toggle(sha, { shift: event.shiftKey, index: indexOf(card) });
      return;
    }
    if (sha && (event.key === "ContextMenu" || (event.key === "F10" && event.shiftKey))) {
      event.preventDefault();
      openMenu(card, card.querySelector(".card-menu"));
      return;
    }
    if (!NAV_KEYS.includes(event.key)) return;
    event.preventDefault();
    const cards = ctx.cards;
    const next = moveIndex(indexOf(card), event.key, {
      columns: cards.columns,
      total: list.total,
      pageRows: cards.viewRows,
    });
    if (next !== null) goTo(next);
  });

  function openMenu(card, button) {
    const model = modelOf(card);
    if (!model || !button) return;
    activate(card);
    showCardMenu(button, model, { comfy: ctx.comfy, onChanged: refreshModel, onDeleted: removeModel });
  }

  /** Fetch one model's list item again (after a Civitai lookup) and redraw its card. */
  async function refreshModel(sha) {
    try {
      const data = await get("models", { q: sha, include_missing: "true", limit: 10 });
      const item = data.items.find((row) => row.sha256 === sha);
      if (item) ctx.updateModel(item);
    } catch {
      // The card stays as it was; the toast said what happened.
    }
  }

  /** A model was deleted from its card: load the same place again, the focus on the card
   * now in its place (or the search box when the list is empty). */
  function removeModel(sha) {
    const index = ctx.cards.findIndex((item) => item.sha256 === sha);
    bulk.forget(sha);
    const focused = grid.contains(document.activeElement) || document.activeElement === document.body;
    list.total = Math.max(0, list.total - 1);
    ctx.reload({ keepSelection: true, keepScroll: true });
    if (!list.total) search.focus();
    else if (focused && index >= 0) goTo(Math.min(index, list.total - 1));
    ctx.loadFacets();
  }

  Object.assign(ctx, { activate, goTo, afterRender });
}
