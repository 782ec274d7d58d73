// The details panel's "Update" row: the newer version Civitai has (meta.update, from the
// last update check), "Download update" (POST api/downloads {source: "civitai:<version>",
// type}: the new version lands beside this model, which stays) and "Ignore this version"
// (never offered again for this model). A download the server refuses (no downloads route
// yet answers 404 or 405) says so in the row, with the status and the server's error.

import { post } from "../../api.js";
import { h } from "../../../comfy/shared/dom.js";
import { formatDate } from "../../format.js";
import { t } from "../../i18n.js";
import { describeError, toast, toastError } from "../../components/toast.js";

/** meta.update when it names a version, else null. */
export function updateOfRecord(record) {
  const update = record.meta && record.meta.update;
  return update && Number.isInteger(update.version_id) ? update : null;
}

function versionText(update) {
  const version = update.version_name || `#${update.version_id}`;
  const when = Date.parse(update.published_at || "");
  return t("details.updateVersion", {
    version,
    base: update.base_model || t("library.unknownBase"),
    date: Number.isNaN(when) ? "—" : formatDate(when),
  });
}

/** What the row says when the download was refused: a server without the downloads route
 * (405, or aiohttp's own 404 "Not Found") is told apart from a refused download. */
function downloadError(err) {
  const code = err && err.status ? err.status : "—";
  const noRoute = code === 405 || (code === 404 && err.error === "Not Found");
  const reason = describeError(err);
  return t(noRoute ? "details.updateNoDownloads" : "details.updateDownloadFailed", { status: code, reason });
}

function downloadButton(record, update, status) {
  const version = update.version_name || `#${update.version_id}`;
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-small btn-primary",
      onclick: async () => {
        button.disabled = true;
        status.textContent = "";
        status.classList.remove("error-text");
        try {
          await post("downloads", { source: `civitai:${update.version_id}`, type: record.type });
          status.textContent = t("details.updateQueued", { version });
          toast(status.textContent, "success");
        } catch (err) {
          status.textContent = downloadError(err);
          status.classList.add("error-text");
          toastError(err, t("details.updateDownload"));
          button.disabled = false;
        }
      },
    },
    t("details.updateDownload"),
  );
  return button;
}

function ignoreButton(ctx, record, update) {
  const version = update.version_name || `#${update.version_id}`;
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
          const answer = await post(`models/${record.sha256}/update/ignore`, {
            version_id: update.version_id,
          });
          const meta = { ...(ctx.current || record).meta, update_ignored: answer.update_ignored };
          delete meta.update;
          ctx.render({ ...(ctx.current || record), meta });
          ctx.onSaved({ sha256: record.sha256, update: null });
          toast(t("details.updateIgnored", { version }), "success");
        } catch (err) {
          toastError(err);
          button.disabled = false;
        }
      },
    },
    t("details.updateIgnore"),
  );
  return button;
}

/** The row's content, or null for a model without an update. */
export function updateRow(ctx, record) {
  const update = updateOfRecord(record);
  if (!update) return null;
  const status = h("span", { class: "update-status", role: "status" });
  return h(
    "div",
    { class: "update-row", "data-testid": "update" },
    h("span", { class: "update-version" }, versionText(update)),
    h(
      "span",
      { class: "hash-row" },
      downloadButton(record, update, status),
      ignoreButton(ctx, record, update),
    ),
    status,
  );
}
