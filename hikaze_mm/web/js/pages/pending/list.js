// The pending items: a table on wide screens, cards on a phone, with the same parts
// (selection, image, name, path, short hash, status and reason, Import or Resolve).

import { pendingImageUrl } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatBytes } from "../../../comfy/shared/format.js";
import { formatDate, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { lazyThumb } from "../../components/lazyimg.js";
import { statusBadge, tagList } from "../../components/widgets.js";
import { displayName, hashView, isNsfw, nsfwBox, pendingN, reasonView } from "./helpers.js";
import { CARD_TAG_LIMIT } from "./state.js";

/** The parts of one item that both the table row and the card show. */
function parts(ctx, item) {
  const id = Number(item.id);
  const name = displayName(item);
  const checkbox = h("input", {
    type: "checkbox",
    class: "checkbox item-check",
    checked: ctx.state.selected.has(id),
    "aria-label": t("pending.selectItem", { name }),
    onchange: (event) => {
      if (event.target.checked) ctx.state.selected.add(id);
      else ctx.state.selected.delete(id);
      renderSelection(ctx);
    },
  });
  const explicit = isNsfw(item);
  const cover = item.images[0];
  const src = cover && !(explicit && ctx.nsfw === "hide") ? pendingImageUrl(id, pendingN(cover)) : "";
  let thumb = lazyThumb(src, name, { cls: "thumb thumb-small", alt: t("pending.imageOf", { name }) });
  if (explicit && cover) thumb = nsfwBox(thumb, name, ctx.nsfw, "pending-nsfw-thumb");
  const actions = [];
  if (item.status === "conflict") {
    actions.push(
      h(
        "button",
        { type: "button", class: "btn btn-small", onclick: () => ctx.openConflict(id) },
        t("pending.resolve"),
      ),
    );
  } else if (item.status !== "hashing") {
    actions.push(
      h(
        "button",
        { type: "button", class: "btn btn-small", onclick: () => ctx.importIds([id]) },
        t("pending.importOne"),
      ),
    );
  }
  return {
    checkbox,
    thumb,
    actions,
    title: h("div", { class: "row-name", title: name }, name),
    path: h("code", { class: "path item-path", title: item.path }, item.path),
    // A conflict's reason already shows the hash.
    hash: item.sha256 && item.status !== "conflict" ? hashView(item.sha256) : null,
    facts: h(
      "div",
      { class: "muted small" },
      `#${id} · ${formatBytes(item.size_bytes)} · ${formatDate(item.created_at)}`,
    ),
    type: h("span", { class: "badge badge-type" }, item.type || "other"),
    status: statusBadge(item.status || "new"),
    reason: reasonView(item),
  };
}

function itemAttrs(ctx, item, cls) {
  const id = Number(item.id);
  return {
    dataset: { id: String(id), status: item.status || "" },
    class: [cls, ctx.state.selected.has(id) ? "selected" : ""],
  };
}

function row(ctx, item) {
  const p = parts(ctx, item);
  return h(
    "tr",
    itemAttrs(ctx, item, ""),
    h("td", { class: "col-check" }, p.checkbox),
    h("td", {}, p.thumb),
    h("td", { class: "col-model" }, p.title, p.path, p.hash, p.facts),
    h("td", {}, p.type),
    h("td", {}, tagList(item.tags)),
    h("td", { class: "col-status" }, p.status, p.reason),
    h("td", { class: "col-actions" }, p.actions),
  );
}

/** An item on a narrow screen: everything in one column, the actions at the bottom. */
function card(ctx, item) {
  const p = parts(ctx, item);
  return h(
    "li",
    itemAttrs(ctx, item, "pending-card"),
    h(
      "div",
      { class: "pending-card-top" },
      p.checkbox,
      p.thumb,
      h(
        "div",
        { class: "pending-card-main" },
        p.title,
        h("div", { class: "pending-card-badges" }, p.status, p.type),
        p.path,
        p.hash,
      ),
    ),
    p.reason,
    item.tags && item.tags.length ? tagList(item.tags, { limit: CARD_TAG_LIMIT }) : null,
    h("div", { class: "pending-card-foot" }, p.facts, h("span", { class: "spacer" }), p.actions),
  );
}

export function renderSelection(ctx) {
  const n = ctx.state.selected.size;
  ctx.importButton.disabled = n === 0;
  ctx.importButton.textContent = n ? t("pending.importSelected", { n }) : t("pending.import");
  const visible = ctx.state.items.map((item) => Number(item.id));
  const checked = visible.filter((id) => ctx.state.selected.has(id)).length;
  ctx.selectAll.checked = visible.length > 0 && checked === visible.length;
  ctx.selectAll.indeterminate = checked > 0 && checked < visible.length;
  for (const el of ctx.listHost.querySelectorAll("[data-id]"))
    el.classList.toggle("selected", ctx.state.selected.has(Number(el.dataset.id)));
}

export function render(ctx) {
  if (ctx.narrow.matches) {
    replaceChildren(ctx.tbody);
    replaceChildren(ctx.cards, ctx.state.items.map((item) => card(ctx, item)));
    replaceChildren(ctx.cardsBar, ctx.state.items.length ? ctx.selectAllLabel : null);
    if (ctx.selectAllLabel.firstChild !== ctx.selectAll) ctx.selectAllLabel.prepend(ctx.selectAll);
    replaceChildren(ctx.listHost, ctx.cardsBar, ctx.cards);
  } else {
    replaceChildren(ctx.cards);
    replaceChildren(ctx.tbody, ctx.state.items.map((item) => row(ctx, item)));
    replaceChildren(ctx.selectAllHead, ctx.selectAll);
    replaceChildren(ctx.listHost, ctx.tableWrap);
  }
  ctx.summary.textContent = t("pending.count", { n: ctx.state.total });
  const last = Math.min(ctx.state.offset + ctx.state.items.length, ctx.state.total);
  ctx.pageInfo.textContent = ctx.state.total
    ? t("pending.range", { from: ctx.state.offset + 1, to: last, total: formatNumber(ctx.state.total) })
    : "";
  ctx.prevButton.disabled = ctx.state.offset === 0;
  ctx.nextButton.disabled = ctx.state.offset + ctx.state.items.length >= ctx.state.total;
  if (!ctx.state.items.length) replaceChildren(ctx.message, h("p", { class: "muted empty" }, t("pending.empty")));
  else ctx.message.replaceChildren();
  renderSelection(ctx);
}
