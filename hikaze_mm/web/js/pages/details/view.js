// The details panel in view mode: the metadata as text, and the file's facts (hashes with
// copy buttons, path and "Move to template folder", size, dates, the Civitai page and lookup).

import { bumpImageVersion, get, post } from "../../api.js";
import { copyText, h } from "../../../comfy/shared/dom.js";
import { formatBytes } from "../../../comfy/shared/format.js";
import { formatDate } from "../../format.js";
import { t } from "../../i18n.js";
import { openMoveDialog } from "../../components/move-dialog.js";
import { toast, toastError } from "../../components/toast.js";
import { fieldList, tagList } from "../../components/widgets.js";
import { linksOf, promptsOf } from "./state.js";

const URL_RE = /^https?:\/\/\S+$/i;

/** A safe external link (http/https only), opened in a new tab without referrer. */
function externalLink(url) {
  if (!URL_RE.test(url)) return h("span", {}, url);
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url);
}

/** Multi-line text shown as typed (line breaks kept), or null when empty. */
function textBlock(text) {
  const value = String(text || "");
  return value.trim() ? h("span", { class: "pre-text" }, value) : null;
}


export function view(record) {
  const meta = record.meta || {};
  const prompts = promptsOf(meta);
  const links = linksOf(meta);
  const words = record.trigger_words || [];
  return h(
    "section",
    { class: "details-view", "aria-label": t("details.editForm") },
    fieldList(
      [
        [t("details.name"), h("span", { class: "details-name" }, record.name || "")],
        [t("details.type"), record.type || ""],
        [t("details.base"), record.base || ""],
        [t("details.tags"), (record.tags || []).length ? tagList(record.tags) : null],
        words.length ? [t("details.triggerWords"), words.join(", ")] : null,
        record.preferred_weight !== null && record.preferred_weight !== undefined
          ? [t("details.preferredWeight"), String(record.preferred_weight)]
          : null,
        [t("details.description"), textBlock(meta.description)],
        [t("details.positive"), textBlock(prompts.positive)],
        [t("details.negative"), textBlock(prompts.negative)],
        [
          t("details.links"),
          links.length
            ? h(
                "ul",
                { class: "links", "aria-label": t("details.links") },
                links.map((url) => h("li", {}, externalLink(url))),
              )
            : null,
        ],
      ].filter(Boolean),
      "fields details-fields",
    ),
  );
}

function copyButton(label, value) {
  return h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      "aria-label": label,
      onclick: async () => {
        const ok = await copyText(value);
        toast(ok ? t("details.copied", { value }) : t("details.copyFailed"), ok ? "success" : "error");
      },
    },
    t("details.copy"),
  );
}

export function info(ctx, record) {
  const autov2 = record.short_hash;
  return h(
    "section",
    { class: "details-info", "aria-label": t("details.info") },
    fieldList([
      [
        t("details.sha256"),
        h(
          "span",
          { class: "hash-row" },
          h("code", { class: "hash-full", "data-testid": "sha256" }, record.sha256),
          copyButton(t("details.copySha"), record.sha256),
        ),
      ],
      [
        t("details.autov2"),
        h(
          "span",
          { class: "hash-row" },
          h("code", { "data-testid": "autov2" }, autov2),
          copyButton(t("details.copyAutov2"), autov2),
        ),
      ],
      [
        t("details.path"),
        h("span", { class: "hash-row" }, h("code", { class: "path" }, record.path || ""), moveButton(ctx, record)),
      ],
      [t("details.size"), formatBytes(record.size_bytes)],
      [t("details.created"), formatDate(record.created_at)],
      [t("details.lastUsed"), formatDate(record.last_used_at)],
      [t("details.civitai"), civitaiRow(ctx, record)],
    ]),
  );
}

/** "Move to template folder": the move dialog for this model; the panel then shows the
 * new path (not while editing: the answer would redraw the form). */
function moveButton(ctx, record) {
  return h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      dataset: { action: "move" },
      disabled: ctx.editing || record.missing,
      onclick: async () => {
        if (!(await openMoveDialog([record.sha256]))) return;
        try {
          const fresh = await get(`models/${record.sha256}`);
          if (!ctx.current || ctx.current.sha256 !== fresh.sha256) return;
          ctx.render(fresh);
          ctx.onSaved(fresh);
        } catch (err) {
          toastError(err);
        }
      },
    },
    t("library.move.action"),
  );
}

/** The Civitai page when known, and a button that looks the model up by its hash (an
 * explicit request: the hash goes to Civitai only when the user asks). In Edit mode it
 * waits: its answer would redraw the form over unsaved changes. */
function civitaiRow(ctx, record) {
  const url = record.meta && record.meta.civitai && record.meta.civitai.url;
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      disabled: ctx.editing,
      title: ctx.editing ? t("details.civitaiWhileEditing") : null,
      onclick: async () => {
        button.disabled = true;
        try {
          const answer = await post(`models/${record.sha256}/civitai`, {});
          const found = answer.civitai && answer.civitai.status === "found";
          toast(t(found ? "details.civitaiFound" : "details.civitaiNotFound"), found ? "success" : "info");
          if (answer.images && answer.images.length !== (ctx.current.images || []).length) {
            bumpImageVersion(answer.sha256);
          }
          ctx.render(answer);
          ctx.onSaved({ ...answer, cover_image: answer.images[0] ?? null });
        } catch (err) {
          toastError(err);
          button.disabled = false;
        }
      },
    },
    t("details.civitaiFetch"),
  );
  return h("span", { class: "hash-row" }, url ? externalLink(url) : null, button);
}

