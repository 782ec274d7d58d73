// Small reusable pieces: tag chips, status badges, progress bars, panels, thumbnails.

import { h, safeColor } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";

/** A tag in its color. With onRemove, it gets a keyboard-reachable remove button. */
export function tagChip(tag, { onRemove = null } = {}) {
  const color = safeColor(tag.color);
  const chip = h(
    "span",
    { class: "tag", style: { "--tag-color": color }, title: tag.name },
    h("span", { class: "tag-dot", "aria-hidden": "true" }),
    h("span", { class: "tag-name" }, tag.name),
  );
  if (onRemove) {
    chip.append(
      h(
        "button",
        {
          type: "button",
          class: "tag-remove",
          "aria-label": t("tags.remove", { name: tag.name }),
          onclick: () => onRemove(tag),
        },
        "×",
      ),
    );
  }
  return chip;
}

const singular = (word) => String(word || "").toLowerCase().replace(/s$/, "");

/** Whether a tag only repeats a model's type (legacy tags "lora", "checkpoints", ...). */
export function repeatsType(tag, type) {
  return Boolean(type) && singular(tag.name) === singular(type);
}

/**
 * A row of tag chips. `limit` shows that many and a "+N" chip whose tooltip names the
 * rest; `type` hides the tags that only repeat the model's type badge.
 */
export function tagList(tags, { limit = Infinity, type = null, ...opts } = {}) {
  const shown = (tags || []).filter((tag) => !repeatsType(tag, type));
  const rest = shown.slice(limit);
  return h(
    "span",
    { class: "tag-list" },
    shown.slice(0, limit).map((tag) => tagChip(tag, opts)),
    rest.length
      ? h(
          "span",
          { class: "tag tag-more", title: rest.map((tag) => tag.name).join(", ") },
          `+${rest.length} `,
          h("span", { class: "visually-hidden" }, t("tags.more", { n: rest.length })),
        )
      : null,
  );
}

/** A colored badge for a pending status (new, hashing, error, conflict) or a model state. */
export function statusBadge(status) {
  const known = ["new", "hashing", "error", "conflict", "missing", "running", "paused", "completed", "idle"];
  const key = known.includes(String(status).toLowerCase()) ? String(status).toLowerCase() : "other";
  return h("span", { class: ["badge", `status-${key}`] }, t(`status.${key}`, { _: String(status) }));
}

/**
 * A labelled progress bar (role=progressbar). Returns {el, set(percent, text)}.
 * percent null makes it indeterminate.
 */
export function progressBar(label) {
  const fill = h("div", { class: "progress-fill" });
  const text = h("span", { class: "progress-text" });
  const bar = h(
    "div",
    {
      class: "progress",
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
    },
    fill,
    text,
  );
  return {
    el: bar,
    set(percent, caption = "") {
      if (percent === null || percent === undefined || Number.isNaN(percent)) {
        bar.classList.add("indeterminate");
        bar.removeAttribute("aria-valuenow");
        fill.style.setProperty("width", "100%");
      } else {
        const value = Math.max(0, Math.min(100, percent));
        bar.classList.remove("indeterminate");
        bar.setAttribute("aria-valuenow", value.toFixed(1));
        fill.style.setProperty("width", `${value}%`);
      }
      text.textContent = caption;
    },
  };
}

/** A key/value description list from [[label, value-or-node, rowClass?], ...]. */
export function fieldList(rows, cls = "fields") {
  return h(
    "dl",
    { class: cls },
    rows.map(([label, value, rowClass]) => [
      h("dt", { class: rowClass }, label),
      h("dd", { class: rowClass }, value === null || value === undefined || value === "" ? "—" : value),
    ]),
  );
}

/** A titled panel (section) whose heading labels it. */
export function panel(title, id, ...children) {
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** A list that failed to load: the message as an alert, and a Retry button. */
export function loadFailed(message, retry) {
  return [
    h("p", { class: "error-text", role: "alert" }, message),
    h("button", { type: "button", class: "btn", onclick: () => retry() }, t("common.retry")),
  ];
}

/** Placeholder shown instead of a thumbnail: the first letter of the name. */
export function thumbPlaceholder(name) {
  const letter = (String(name || "?").trim()[0] || "?").toUpperCase();
  return h("span", { class: "thumb-placeholder", "aria-hidden": "true" }, letter);
}
