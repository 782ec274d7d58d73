// Conflicts side by side: the existing model and the pending one, their differing fields
// highlighted, and a choice of override, merge or delete per item or for all.

import { imageUrl, pendingImageUrl } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatBytes } from "../../../comfy/shared/format.js";
import { formatDate } from "../../format.js";
import { t } from "../../i18n.js";
import { fieldList, tagList } from "../../components/widgets.js";
import { hashView, isNsfw, nsfwBox, pendingN } from "./helpers.js";
import { STRATEGIES } from "./state.js";

/** The compared fields of a record: [label key, display value, comparable value]. */
function compared(ctx, record) {
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

function side(ctx, kind, record, other, isPending) {
  // Same content, same model: either record marked NSFW makes both sides' images NSFW.
  const explicit = isNsfw(record) || isNsfw(other);
  const hide = explicit && ctx.nsfw === "hide";
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
  const theirs = compared(ctx, other);
  return h(
    "div",
    { class: ["conflict-side", `side-${kind}`] },
    h("h3", {}, t(`pending.${kind}`)),
    // Fields that differ between the two records are highlighted.
    fieldList(
      compared(ctx, record).map(([key, shown, value], i) => [
        t(key),
        shown,
        value !== theirs[i][2] ? "differs" : null,
      ]),
    ),
    explicit && record.images.length ? nsfwBox(gallery, label, ctx.nsfw, "pending-nsfw-gallery") : gallery,
  );
}

export function renderConflicts(ctx) {
  ctx.conflictSection.hidden = ctx.conflicts.size === 0;
  if (!ctx.conflicts.size) {
    ctx.conflictSection.replaceChildren();
    return;
  }
  const applyAll = (strategy) => {
    for (const entry of ctx.conflicts.values()) entry.choice = strategy;
    renderConflicts(ctx);
  };
  const resolveButton = h(
    "button",
    { type: "button", class: "btn btn-primary", onclick: () => ctx.resolveAll(resolveButton) },
    t("pending.resolveAll", { n: ctx.conflicts.size }),
  );
  replaceChildren(
    ctx.conflictSection,
    h("h2", { id: "conflicts-title" }, t("pending.conflicts", { n: ctx.conflicts.size })),
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
    [...ctx.conflicts.entries()].map(([id, entry]) => {
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
          side(ctx, "existing", entry.existing, entry.pending, false),
          side(ctx, "pending", entry.pending, entry.existing, true),
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
            { type: "button", class: "btn", onclick: (event) => ctx.resolveOne(id, event.target) },
            t("pending.apply"),
          ),
          h(
            "button",
            { type: "button", class: "btn btn-link", onclick: () => ctx.dismiss(id) },
            t("pending.later"),
          ),
        ),
      );
    }),
  );
}
