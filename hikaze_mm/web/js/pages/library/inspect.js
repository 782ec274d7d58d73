// The Library's "Inspect image…": drop an image anywhere on the page (or pick one) and a
// dialog lists what it was made with (POST images/inspect): its parameters and each model,
// with the library's card or "not in the library" (library/inspect-view.js).
//
// A drop is ours only when nothing else took it (event.defaultPrevented: the details
// gallery's upload zone takes its own) and no other dialog is open (the details panel).

import { request } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatBytes } from "../../../comfy/shared/format.js";
import { t } from "../../i18n.js";
import { describeError } from "../../components/toast.js";
import { inspectResult, modelRecords } from "./inspect-view.js";

export const MAX_INSPECT_BYTES = 32 * 1024 * 1024;
const ACCEPT = "image/png,image/webp,image/jpeg";

/** Whether a drag carries files (not text, links or a gallery image being moved). */
function carriesFiles(event) {
  return Boolean(event.dataTransfer && [...event.dataTransfer.types].includes("Files"));
}

/** Another dialog (the details panel, a viewer) is open: its own drops are not ours. */
function otherDialogOpen() {
  return Boolean(document.querySelector("dialog[open]:not(.inspect)"));
}

/** The words for a failed inspect: 400 not an image, 413 too large, else the API's. */
function inspectError(err) {
  if (err && err.status === 413) return t("inspect.tooLarge", { max: formatBytes(MAX_INSPECT_BYTES) });
  if (err && err.status === 400) return t("inspect.notImage", { detail: err.detail || err.error || "" });
  return t("inspect.failed", { error: describeError(err) });
}

/** The dialog: a header (title, the file's name, Close), a preview and the answer. */
function createDialog(onClose) {
  const title = h("h2", { id: "inspect-title", tabindex: "-1" }, t("inspect.title"));
  const fileName = h("p", { class: "muted inspect-file" });
  const preview = h("img", { class: "inspect-preview", alt: "", hidden: true });
  preview.addEventListener("error", () => (preview.hidden = true)); // not an image after all
  const body = h("div", { class: "inspect-body", "aria-live": "polite" });
  const close = h(
    "button",
    { type: "button", class: "btn-icon", "aria-label": t("common.close"), onclick: () => dialog.close() },
    "×",
  );
  const dialog = h(
    "dialog",
    { class: "inspect", "aria-labelledby": "inspect-title" },
    h("header", { class: "inspect-header" }, title, close),
    h("div", { class: "inspect-top" }, preview, fileName),
    body,
  );
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // the backdrop
  });
  dialog.addEventListener("close", onClose);
  document.body.append(dialog);
  return { dialog, title, fileName, preview, body };
}

/** Add the inspect button, its file input, the page-wide drop and the dialog to ctx
 * (ctx.inspect: {button, fileInput, inspectFile, destroy}). */
export function installInspect(ctx) {
  let run = 0; // the latest inspect: an older answer arriving late is dropped
  let previewUrl = null;
  let returnFocus = null;
  let depth = 0; // dragenter minus dragleave over the document: the hint shows while > 0
  const parts = createDialog(() => {
    run += 1;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    if (returnFocus && returnFocus.isConnected && !otherDialogOpen()) returnFocus.focus();
  });
  const hint = h("div", { class: "inspect-drop-hint", hidden: true }, h("p", {}, t("inspect.dropHint")));
  document.body.append(hint);
  const fileInput = h("input", {
    type: "file",
    accept: ACCEPT,
    class: "visually-hidden",
    tabindex: "-1",
    "aria-hidden": "true",
    onchange: () => {
      if (fileInput.files.length) inspectFile(fileInput.files[0]);
      fileInput.value = "";
    },
  });
  const button = h(
    "button",
    { type: "button", class: "btn inspect-button", title: t("inspect.buttonHelp"), onclick: () => fileInput.click() },
    h("span", { class: "inspect-long" }, t("inspect.button")),
    h("span", { class: "inspect-short" }, t("inspect.buttonShort")), // a phone's narrow bar
  );

  /** The details of a resource's model: the inspect dialog gives way to the panel. */
  function openModel(sha256) {
    returnFocus = null;
    parts.dialog.close();
    ctx.openDetails(sha256);
  }

  async function inspectFile(file) {
    const mine = ++run;
    if (!parts.dialog.open) {
      returnFocus = document.activeElement;
      parts.dialog.showModal();
    }
    parts.fileName.textContent = t("inspect.file", { name: file.name || "", size: formatBytes(file.size) });
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    parts.preview.src = previewUrl;
    parts.preview.hidden = false;
    parts.title.focus();
    replaceChildren(parts.body, h("p", { class: "muted", role: "status" }, t("inspect.reading")));
    const failed = (message) => {
      parts.preview.hidden = true;
      replaceChildren(parts.body, h("p", { class: "error-text inspect-error", role: "alert" }, message));
    };
    if (file.size > MAX_INSPECT_BYTES) {
      failed(inspectError({ status: 413 }));
      return;
    }
    try {
      const answer = await request("POST", "images/inspect", {
        body: file,
        headers: { "Content-Type": file.type || "application/octet-stream" },
      });
      const records = await modelRecords(answer.resources || []);
      if (mine === run) replaceChildren(parts.body, inspectResult(answer, records, openModel));
    } catch (err) {
      if (mine === run) failed(inspectError(err));
    }
  }

  const showHint = (on) => {
    hint.hidden = !on;
  };
  const listeners = {
    dragenter: (event) => {
      if (carriesFiles(event) && !otherDialogOpen()) showHint(++depth > 0);
    },
    dragleave: (event) => {
      if (!carriesFiles(event)) return;
      depth = Math.max(0, depth - 1);
      showHint(depth > 0 && !otherDialogOpen());
    },
    dragover: (event) => {
      if (!carriesFiles(event) || event.defaultPrevented || otherDialogOpen()) return;
      event.preventDefault(); // a drop here is ours (not the browser opening the file)
      event.dataTransfer.dropEffect = "copy";
    },
    drop: (event) => {
      depth = 0;
      showHint(false);
      if (!carriesFiles(event) || event.defaultPrevented || otherDialogOpen()) return;
      event.preventDefault();
      const file = [...event.dataTransfer.files][0];
      if (file) inspectFile(file);
    },
  };
  for (const [name, listener] of Object.entries(listeners)) document.addEventListener(name, listener);

  ctx.inspect = {
    button,
    fileInput,
    inspectFile,
    destroy() {
      for (const [name, listener] of Object.entries(listeners)) document.removeEventListener(name, listener);
      if (parts.dialog.open) parts.dialog.close();
      parts.dialog.remove();
      hint.remove();
    },
  };
  return ctx.inspect;
}
