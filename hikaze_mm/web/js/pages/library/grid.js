// The library's grid: one tab stop (roving tabindex; arrow keys, Home and End move between
// cards), clicks and keys on cards (open, select, menu), and the card menu's outcomes
// (a model refreshed or deleted).

import { get } from "../../api.js";
import { showCardMenu } from "../../components/card-actions.js";

const NAV_KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];

/** Wire the grid; adds cardOf and activate to ctx. */
export function installGrid(ctx) {
  const { state, list, grid, bulk, search, openDetails } = ctx;
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
    if (ctx.activeSha !== card.dataset.sha256) {
      const old = ctx.activeSha && cardOf(ctx.activeSha);
      if (old) setTabbable(old, false);
      ctx.activeSha = card.dataset.sha256;
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
    if (next >= cards.length - cols) ctx.loadPage();
  });

  function openMenu(card, button) {
    const model = modelOf(card.dataset.sha256);
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
    if (ctx.activeSha === sha) {
      ctx.activeSha = null;
      if (neighbour) activate(neighbour, true);
      else search.focus();
    }
    ctx.renderSummary();
    ctx.renderMessage();
    ctx.loadFacets();
  }

  Object.assign(ctx, { cardOf, activate });
}
