// One model card of the Library grid (or row of its list view): a thumbnail of fixed ratio
// (blurred or hidden for NSFW models, per the NSFW setting), a selection checkbox, the name
// clamped to two lines (full name in the tooltip), type and base badges, an "Update" badge
// when Civitai has a newer version (the listing's `update`), a few tags and "+N", and an
// actions button. The card is one stop of the grid's roving tabindex: its
// inner controls (class "card-control") are reachable by Tab only while it is the active card.

import { imageUrl } from "../api.js";
import { h } from "../../comfy/shared/dom.js";
import { formatBytes } from "../../comfy/shared/format.js";
import { t } from "../i18n.js";
import { lazyThumb } from "./lazyimg.js";
import { nsfwMedia } from "./nsfw.js";
import { tagList } from "./widgets.js";

export const CARD_TAG_LIMIT = 3;

/** Whether a list item is NSFW: the API's flag, else its "nsfw" tag. */
export function isNsfw(model) {
  if (typeof model.nsfw === "boolean") return model.nsfw;
  return (model.tags || []).some((tag) => String(tag.name).toLowerCase() === "nsfw");
}

/** The "Update" badge of a model with a newer version on Civitai (the listing's `update`:
 * {version_id, version_name}), or null. */
export function updateBadge(model) {
  const update = model.update;
  if (!update || typeof update.version_id !== "number") return null;
  const version = update.version_name || `#${update.version_id}`;
  return h(
    "span",
    { class: "badge badge-update", title: t("library.updateTitle", { version }) },
    t("library.updateBadge"),
  );
}

/** The name a card shows: the model's name, else its path or hash. */
export function displayName(model) {
  return model.name || model.path || model.sha256;
}

/**
 * Build a card. opts: {view: "grid"|"list", nsfw: mode, selected: bool, active: bool}.
 * Clicks are handled by the page (event delegation on the grid).
 */
export function modelCard(model, { view = "grid", nsfw = "blur", selected = false, active = false } = {}) {
  const name = displayName(model);
  const explicit = isNsfw(model);
  const hide = explicit && nsfw === "hide";
  const quality = view === "list" ? "low" : "medium";
  const src = model.cover_image && !hide ? imageUrl(model.cover_image, quality) : "";
  const tab = active ? "0" : "-1";
  const media = h(
    "div",
    { class: "card-media" },
    lazyThumb(src, name, { alt: t("library.previewOf", { name }) }),
    h("input", {
      type: "checkbox",
      class: "card-select card-control",
      tabindex: tab,
      checked: selected,
      "aria-label": t("library.selectModel", { name }),
    }),
  );
  if (explicit) nsfwMedia(media, name, nsfw);
  const reveal = media.querySelector(".nsfw-reveal");
  if (reveal) {
    reveal.classList.add("card-control");
    reveal.setAttribute("tabindex", tab);
  }
  return h(
    "article",
    {
      class: ["card", model.missing ? "missing" : "", selected ? "selected" : ""],
      role: "listitem",
      tabindex: tab,
      "aria-label": model.missing ? t("library.cardMissingLabel", { name }) : name,
      dataset: { sha256: model.sha256 },
    },
    media,
    h(
      "div",
      { class: "card-body" },
      h(
        "div",
        { class: "card-head" },
        h("div", { class: "card-name", title: name }, name),
        h(
          "button",
          {
            type: "button",
            class: "btn-icon card-menu card-control",
            tabindex: tab,
            "aria-haspopup": "menu",
            "aria-expanded": "false",
            "aria-label": t("library.actionsFor", { name }),
            title: t("library.actions"),
          },
          "⋯",
        ),
      ),
      h(
        "div",
        { class: "card-meta" },
        h("span", { class: "badge badge-type" }, model.type || "other"),
        h(
          "span",
          { class: ["badge", "badge-base", model.base ? "" : "badge-unknown"] },
          model.base || t("library.unknownBase"),
        ),
        updateBadge(model),
        missingBadge(model),
        h("code", { class: "hash", title: model.sha256 }, model.short_hash),
        h("span", { class: "size" }, formatBytes(model.size_bytes)),
      ),
      tagList(model.tags, { limit: CARD_TAG_LIMIT, type: model.type }),
    ),
  );
}

/** "missing", or for a model on a studio's root this host does not mount, that root. */
function missingBadge(model) {
  if (!model.missing) return null;
  if (model.mounted === false && model.location) {
    const root = model.location.root;
    return h(
      "span",
      { class: "badge status-missing", title: t("status.notMountedTitle", { root }) },
      t("status.notMounted", { root }),
    );
  }
  return h("span", { class: "badge status-missing" }, t("status.missing"));
}
