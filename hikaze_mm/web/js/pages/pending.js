// Pending review: every pending model with its original image, tags, status and reason;
// multi-select and Import; conflicts shown side by side (existing vs pending) with a
// choice of override / merge / delete per item or for all.
//
// Wide screens list the items in a table; below NARROW (a phone) each item is a card with
// the same parts (status, name, path, short hash, Import/Resolve). Hashes show their first
// SHORT_HASH hex digits, the full one on demand. Images of NSFW items are blurred until
// clicked (or hidden, or shown: the "hikaze.nsfw" setting).

import { bumpImageVersion, get, imageUrl, pendingImageUrl, post } from "../api.js";
import { copyText, h, replaceChildren } from "../../comfy/shared/dom.js";
import { formatBytes } from "../../comfy/shared/format.js";
import { formatDate, formatNumber } from "../format.js";
import { t } from "../i18n.js";
import { lazyThumb } from "../components/lazyimg.js";
import { nsfwMode } from "../components/nsfw.js";
import { describeError, toast, toastError } from "../components/toast.js";
import { fieldList, loadFailed, statusBadge, tagList } from "../components/widgets.js";

const PAGE_SIZE = 50;
const STATUSES = ["", "new", "hashing", "error", "conflict"];
const STRATEGIES = ["override", "merge", "delete"];
const NARROW = "(max-width: 700px)";
const SHORT_HASH = 10;
const CARD_TAG_LIMIT = 6;
const SHA256 = /\b[0-9a-f]{64}\b/gi;

/** The n of a pending image file name "<id>_<n>.<ext>". */
function pendingN(name) {
  return Number(/^\d+_(\d+)\./.exec(name)[1]);
}

/** A text with every full SHA-256 in it cut to its first SHORT_HASH digits. */
function shortenHashes(text) {
  return String(text || "").replace(SHA256, (sha) => `${sha.slice(0, SHORT_HASH)}…`);
}

/** A hash as its first SHORT_HASH digits; a disclosure shows the full one and copies it. */
function hashView(sha) {
  const full = String(sha);
  return h(
    "details",
    { class: "hash-view" },
    h(
      "summary",
      { title: full },
      h("code", { class: "hash-short" }, full.slice(0, SHORT_HASH)),
      h("span", { class: "visually-hidden" }, t("pending.showFullHash")),
    ),
    h(
      "span",
      { class: "hash-more" },
      h("code", { class: "hash-full" }, full),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          onclick: async () => {
            const ok = await copyText(full);
            toast(ok ? t("pending.hashCopied") : t("pending.copyFailed"), ok ? "success" : "error");
          },
        },
        t("pending.copyHash"),
      ),
    ),
  );
}

/** Whether a record (pending item or model) is NSFW: an "nsfw" tag (any case), or
 * nsfw: true in its Civitai or sidecar metadata. */
function isNsfw(record) {
  if ((record.tags || []).some((tag) => String(tag.name).toLowerCase() === "nsfw")) return true;
  const meta = record.meta || {};
  return [meta.civitai, meta.civitai && meta.civitai.model, meta.sidecar].some(
    (part) => part && typeof part === "object" && part.nsfw === true,
  );
}

/**
 * Wrap the images of an NSFW record for the current mode: "blur" shows them blurred under
 * a button that reveals them; "hide" leaves the caller's placeholder and a label (the
 * caller loads no image); "show" leaves them as they are.
 */
function nsfwBox(content, name, mode, cls = "") {
  const box = h("div", { class: ["pending-nsfw", cls] }, content);
  if (mode === "show") return box;
  if (mode === "hide") {
    box.classList.add("pending-nsfw-hidden");
    box.append(h("span", { class: "pending-nsfw-tag" }, t("pending.nsfw")));
    return box;
  }
  box.classList.add("pending-nsfw-blurred");
  const reveal = h(
    "button",
    {
      type: "button",
      class: "pending-nsfw-reveal",
      "aria-label": t("pending.revealNsfw", { name }),
      onclick: () => {
        box.classList.remove("pending-nsfw-blurred");
        box.classList.add("pending-nsfw-revealed");
        reveal.remove();
      },
    },
    t("pending.nsfw"),
  );
  box.append(reveal);
  return box;
}

/** Scroll so that `el` starts just below the sticky header (whatever its height: it wraps
 * on a phone), not under it. */
function scrollBelowHeader(el) {
  const bar = document.querySelector(".topbar");
  const covered = bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
  const top = el.getBoundingClientRect().top + window.scrollY - covered - 8;
  window.scrollTo({ top: Math.max(0, top), behavior: "instant" });
}

/** The name shown for a pending item: its name, else its file name. */
function displayName(item) {
  return (
    item.name ||
    String(item.path || "")
      .split(/[\\/]/)
      .pop()
  );
}

/** Why an item is in its status: a conflict as information (same content as which model,
 * short hash, wrapped path), an error as an error (hashes shortened, full text on hover). */
function reasonView(item) {
  if (item.status === "conflict") {
    if (!item.sha256) {
      return item.error ? h("div", { class: "reason reason-conflict" }, shortenHashes(item.error)) : null;
    }
    // The reason reads "same content as the model <sha> (<path>)": show its path.
    const found = /\((.+)\)\s*$/.exec(String(item.error || ""));
    return h(
      "div",
      { class: "reason reason-conflict" },
      h("span", {}, t("pending.sameContent")),
      " ",
      hashView(item.sha256),
      found ? h("code", { class: "path reason-path" }, found[1]) : null,
    );
  }
  if (!item.error) return null;
  return h("div", { class: "reason reason-error", title: item.error }, shortenHashes(item.error));
}

export function mountPending(root, { refreshCounts = () => {} } = {}) {
  const state = { status: "", offset: 0, total: 0, items: [], selected: new Set() };
  const conflicts = new Map(); // pending id -> {existing, pending, choice}
  let refreshTimer = null;
  let stopped = false;
  const narrow = window.matchMedia(NARROW);
  const nsfw = nsfwMode();

  const statusSelect = h(
    "select",
    { class: "input", "aria-label": t("pending.statusFilter") },
    STATUSES.map((s) => h("option", { value: s }, s ? t(`status.${s}`) : t("pending.allStatuses"))),
  );
  const refreshButton = h(
    "button",
    { type: "button", class: "btn", onclick: () => load() },
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
    { type: "button", class: "btn", onclick: () => page(-1) },
    t("common.previous"),
  );
  const nextButton = h("button", { type: "button", class: "btn", onclick: () => page(1) }, t("common.next"));
  const pageInfo = h("span", { class: "muted" });
  const message = h("div", { class: "list-message" });
  const conflictSection = h("section", {
    class: "conflicts",
    "aria-labelledby": "conflicts-title",
    hidden: true,
  });

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

  // ------------------------------------------------------------- list
  /** The parts of one item that both the table row and the card show. */
  function parts(item) {
    const id = Number(item.id);
    const name = displayName(item);
    const checkbox = h("input", {
      type: "checkbox",
      class: "checkbox item-check",
      checked: state.selected.has(id),
      "aria-label": t("pending.selectItem", { name }),
      onchange: (event) => {
        if (event.target.checked) state.selected.add(id);
        else state.selected.delete(id);
        renderSelection();
      },
    });
    const explicit = isNsfw(item);
    const cover = item.images[0];
    const src = cover && !(explicit && nsfw === "hide") ? pendingImageUrl(id, pendingN(cover)) : "";
    let thumb = lazyThumb(src, name, { cls: "thumb thumb-small", alt: t("pending.imageOf", { name }) });
    if (explicit && cover) thumb = nsfwBox(thumb, name, nsfw, "pending-nsfw-thumb");
    const actions = [];
    if (item.status === "conflict") {
      actions.push(
        h(
          "button",
          { type: "button", class: "btn btn-small", onclick: () => openConflict(id) },
          t("pending.resolve"),
        ),
      );
    } else if (item.status !== "hashing") {
      actions.push(
        h(
          "button",
          { type: "button", class: "btn btn-small", onclick: () => importIds([id]) },
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

  function itemAttrs(item, cls) {
    const id = Number(item.id);
    return {
      dataset: { id: String(id), status: item.status || "" },
      class: [cls, state.selected.has(id) ? "selected" : ""],
    };
  }

  function row(item) {
    const p = parts(item);
    return h(
      "tr",
      itemAttrs(item, ""),
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
  function card(item) {
    const p = parts(item);
    return h(
      "li",
      itemAttrs(item, "pending-card"),
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

  function renderSelection() {
    const n = state.selected.size;
    importButton.disabled = n === 0;
    importButton.textContent = n ? t("pending.importSelected", { n }) : t("pending.import");
    const visible = state.items.map((item) => Number(item.id));
    const checked = visible.filter((id) => state.selected.has(id)).length;
    selectAll.checked = visible.length > 0 && checked === visible.length;
    selectAll.indeterminate = checked > 0 && checked < visible.length;
    for (const el of listHost.querySelectorAll("[data-id]"))
      el.classList.toggle("selected", state.selected.has(Number(el.dataset.id)));
  }

  function render() {
    if (narrow.matches) {
      replaceChildren(tbody);
      replaceChildren(cards, state.items.map(card));
      replaceChildren(cardsBar, state.items.length ? selectAllLabel : null);
      if (selectAllLabel.firstChild !== selectAll) selectAllLabel.prepend(selectAll);
      replaceChildren(listHost, cardsBar, cards);
    } else {
      replaceChildren(cards);
      replaceChildren(tbody, state.items.map(row));
      replaceChildren(selectAllHead, selectAll);
      replaceChildren(listHost, tableWrap);
    }
    summary.textContent = t("pending.count", { n: state.total });
    const last = Math.min(state.offset + state.items.length, state.total);
    pageInfo.textContent = state.total
      ? t("pending.range", { from: state.offset + 1, to: last, total: formatNumber(state.total) })
      : "";
    prevButton.disabled = state.offset === 0;
    nextButton.disabled = state.offset + state.items.length >= state.total;
    if (!state.items.length) replaceChildren(message, h("p", { class: "muted empty" }, t("pending.empty")));
    else message.replaceChildren();
    renderSelection();
  }
  narrow.addEventListener("change", render);

  async function load() {
    try {
      const data = await get("migration/pending", {
        status: state.status,
        offset: state.offset,
        limit: PAGE_SIZE,
      });
      state.items = data.items;
      state.total = data.total;
      if (!state.items.length && state.offset > 0 && state.total > 0) {
        state.offset = Math.max(0, state.offset - PAGE_SIZE);
        return load();
      }
      render();
      // Items being hashed (by the worker or another client) change soon: look again.
      clearTimeout(refreshTimer);
      if (!stopped && state.items.some((item) => item.status === "hashing"))
        refreshTimer = setTimeout(load, 2000);
    } catch (err) {
      state.items = [];
      replaceChildren(tbody);
      replaceChildren(cards);
      replaceChildren(message, loadFailed(t("pending.loadFailed", { error: describeError(err) }), load));
    }
    return undefined;
  }

  function page(delta) {
    state.offset = Math.max(0, state.offset + delta * PAGE_SIZE);
    load();
  }

  // ------------------------------------------------------------- import
  async function importIds(ids) {
    if (!ids.length) return;
    const strategy = strategySelect.value || null;
    importButton.disabled = true;
    importButton.textContent = t("pending.importing", { n: ids.length });
    let results;
    try {
      results = (await post("migration/import_models", { ids, conf_strategy: strategy })).results;
    } catch (err) {
      toastError(err, t("pending.importFailed"));
      renderSelection();
      return;
    }
    let imported = 0;
    const failures = [];
    // Each result is a success, a conflict (with both records) or another error.
    for (const result of results) {
      if (result.status === "success") {
        imported += 1;
        state.selected.delete(result.id);
      } else if (result.existing && result.pending) {
        conflicts.set(result.id, { existing: result.existing, pending: result.pending, choice: "merge" });
        state.selected.delete(result.id);
      } else {
        failures.push(`#${result.id}: ${shortenHashes(describeError(result))}`);
      }
    }
    if (imported) toast(t("pending.imported", { n: imported }), "success");
    for (const failure of failures) toast(failure, "error");
    const found = results.some((result) => result.existing && result.pending);
    renderConflicts();
    await load();
    refreshCounts();
    if (found) scrollBelowHeader(conflictSection);
  }

  importButton.addEventListener("click", () => importIds([...state.selected]));
  selectAll.addEventListener("change", () => {
    for (const item of state.items) {
      if (selectAll.checked) state.selected.add(Number(item.id));
      else state.selected.delete(Number(item.id));
    }
    for (const box of listHost.querySelectorAll(".item-check")) box.checked = selectAll.checked;
    renderSelection();
  });
  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    state.offset = 0;
    load();
  });

  // ------------------------------------------------------------- conflicts
  /** Show a conflict known from the list (status "conflict"): fetch both records. */
  async function openConflict(id) {
    try {
      const pending = await get(`migration/pending/${id}`);
      if (!pending.sha256) throw new Error(t("pending.noHashYet"));
      const existing = await get(`models/${pending.sha256}`);
      conflicts.set(id, { existing, pending, choice: "merge" });
      renderConflicts();
      const el = conflictSection.querySelector(`[data-conflict="${id}"]`);
      if (el) scrollBelowHeader(el);
    } catch (err) {
      toastError(err, t("pending.loadConflictFailed"));
    }
  }

  /** The compared fields of a record: [label key, display value, comparable value]. */
  function compared(record) {
    const tags = (record.tags || []).map((tag) => tag.name.toLowerCase()).sort();
    const description = record.meta && record.meta.description ? String(record.meta.description) : null;
    return [
      ["details.name", record.name, record.name || ""],
      ["details.sha256", record.sha256 ? hashView(record.sha256) : null, record.sha256 || ""],
      ["details.type", record.type, record.type || ""],
      ["details.base", record.base, record.base || ""],
      ["details.path", record.path ? h("code", { class: "path" }, record.path) : null, record.path || ""],
      ["details.size", formatBytes(record.size_bytes), String(record.size_bytes ?? "")],
      ["details.created", formatDate(record.created_at), formatDate(record.created_at)],
      ["details.description", description, description || ""],
      ["details.tags", tags.length ? tagList(record.tags) : null, tags.join("\n")],
    ];
  }

  function side(kind, record, other, isPending) {
    // Same content, same model: either record marked NSFW makes both sides' images NSFW.
    const explicit = isNsfw(record) || isNsfw(other);
    const hide = explicit && nsfw === "hide";
    const imgs = (hide ? [] : record.images.slice(0, 6)).map((name, i) =>
      h("img", {
        class: "conflict-img",
        src: isPending ? pendingImageUrl(record.id, pendingN(name)) : imageUrl(name, "low"),
        alt: t("pending.imageN", { kind: t(`pending.${kind}`), n: i + 1 }),
        loading: "lazy",
      }),
    );
    const gallery = h(
      "div",
      { class: "conflict-images" },
      imgs.length || hide ? imgs : h("span", { class: "muted" }, t("details.noImages")),
    );
    const label = t("pending.imagesOf", { kind: t(`pending.${kind}`), name: record.name || record.path });
    const theirs = compared(other);
    return h(
      "div",
      { class: ["conflict-side", `side-${kind}`] },
      h("h3", {}, t(`pending.${kind}`)),
      // Fields that differ between the two records are highlighted.
      fieldList(
        compared(record).map(([key, shown, value], i) => [
          t(key),
          shown,
          value !== theirs[i][2] ? "differs" : null,
        ]),
      ),
      explicit && record.images.length ? nsfwBox(gallery, label, nsfw, "pending-nsfw-gallery") : gallery,
    );
  }

  function renderConflicts() {
    conflictSection.hidden = conflicts.size === 0;
    if (!conflicts.size) {
      conflictSection.replaceChildren();
      return;
    }
    const applyAll = (strategy) => {
      for (const entry of conflicts.values()) entry.choice = strategy;
      renderConflicts();
    };
    const resolveButton = h(
      "button",
      { type: "button", class: "btn btn-primary", onclick: () => resolveAll(resolveButton) },
      t("pending.resolveAll", { n: conflicts.size }),
    );
    replaceChildren(
      conflictSection,
      h("h2", { id: "conflicts-title" }, t("pending.conflicts", { n: conflicts.size })),
      h("p", { class: "muted" }, t("pending.conflictsIntro")),
      h(
        "div",
        { class: "toolbar", role: "group", "aria-label": t("pending.forAll") },
        h("span", {}, t("pending.forAll")),
        STRATEGIES.map((s) =>
          h(
            "button",
            { type: "button", class: "btn", dataset: { all: s }, onclick: () => applyAll(s) },
            t(`pending.strategy.${s}`),
          ),
        ),
        h("span", { class: "spacer" }),
        resolveButton,
      ),
      [...conflicts.entries()].map(([id, entry]) => {
        const name = `choice-${id}`;
        return h(
          "article",
          {
            class: "conflict",
            dataset: { conflict: String(id) },
            "aria-label": t("pending.conflictFor", { name: entry.pending.name || entry.pending.path }),
          },
          h(
            "div",
            { class: "conflict-sides" },
            side("existing", entry.existing, entry.pending, false),
            side("pending", entry.pending, entry.existing, true),
          ),
          h(
            "fieldset",
            { class: "choices" },
            h("legend", {}, t("pending.choose")),
            STRATEGIES.map((s) =>
              h(
                "label",
                { class: "radio" },
                h("input", {
                  type: "radio",
                  name,
                  value: s,
                  checked: entry.choice === s,
                  onchange: () => {
                    entry.choice = s;
                  },
                }),
                h("span", {}, t(`pending.strategy.${s}`)),
                h("span", { class: "muted small" }, t(`pending.strategyHelp.${s}`)),
              ),
            ),
            h(
              "button",
              { type: "button", class: "btn", onclick: (event) => resolveOne(id, event.target) },
              t("pending.apply"),
            ),
            h(
              "button",
              { type: "button", class: "btn btn-link", onclick: () => dismiss(id) },
              t("pending.later"),
            ),
          ),
        );
      }),
    );
  }

  function dismiss(id) {
    conflicts.delete(id);
    renderConflicts();
  }

  async function resolveOne(id, button) {
    const entry = conflicts.get(id);
    if (!entry) return false;
    if (button) button.disabled = true;
    try {
      const result = await post("migration/import_a_model", { id, conf_strategy: entry.choice });
      if (result && result.sha256) bumpImageVersion(result.sha256); // override replaces seq 0
      conflicts.delete(id);
      toast(
        t("pending.resolved", {
          id,
          action: t(`pending.action.${result.action_taken}`, { _: result.action_taken }),
        }),
        "success",
      );
      return true;
    } catch (err) {
      if (button) button.disabled = false;
      toastError(err, t("pending.resolveFailed", { id }));
      return false;
    } finally {
      if (button) {
        renderConflicts();
        await load();
        refreshCounts();
      }
    }
  }

  async function resolveAll(button) {
    button.disabled = true;
    for (const id of [...conflicts.keys()]) await resolveOne(id, null);
    renderConflicts();
    await load();
    refreshCounts();
  }

  load();
  return {
    unmount() {
      stopped = true;
      clearTimeout(refreshTimer);
    },
  };
}
