// Details panel: a modal dialog with the model's gallery (components/gallery.js: order,
// cover, full-screen viewer, upload, delete, NSFW blur), what the model made (the "Made
// with this model" strip of details/generations.js, whose images can become the cover), its
// file facts and hashes, and its metadata. It opens in view mode (text, nothing focused
// that a keypress could change); "Edit" turns the metadata into a form (name, type, base,
// tags, description, prompts, community links) saved with one PATCH from a Save bar that
// sticks to the panel's bottom.

//
// The parts: details/state.js (the state, the PATCH body), details/view.js and
// details/form.js (view and edit mode); they share one context object, `ctx`.

import { bumpImageVersion, get, post } from "../api.js";
import { h, replaceChildren } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";
import { imageGallery } from "../components/gallery.js";
import { describeError, toastError } from "../components/toast.js";
import { statusBadge } from "../components/widgets.js";
import { form } from "./details/form.js";
import { SHA_RE, createDetailsState } from "./details/state.js";
import { generationsStrip } from "./details/generations.js";
import { info, view } from "./details/view.js";

function gallerySection(ctx, record, message = "", focus = null) {
  const onImages = (...args) => imagesChanged(ctx, ...args);
  ctx.galleryPart = imageGallery(record, { onImages, revealed: ctx.revealed, focus });
  ctx.galleryPart.setStatus(message);
  return ctx.galleryPart.el;
}

/** After an upload, delete (names null: re-read them) or reorder (the new names). */
async function imagesChanged(ctx, names, message, focus) {
  if (!ctx.current) return;
  const sha = ctx.current.sha256;
  if (names === null) {
    bumpImageVersion(sha); // an upload may reuse a deleted seq: fetch tiers afresh
    try {
      names = await post("images/get_sample_imgs", { hash: sha });
    } catch (err) {
      toastError(err);
      return;
    }
  }
  if (!ctx.current || ctx.current.sha256 !== sha) return;
  ctx.current = { ...ctx.current, images: names, image_count: names.length };
  const old = ctx.dialog.querySelector(".details-gallery");
  const fresh = gallerySection(ctx, ctx.current, message, focus);
  if (old) old.replaceWith(fresh);
  // The library's card shows the first image: it may be new, moved, or gone.
  ctx.onSaved({ sha256: sha, image_count: names.length, cover_image: names[0] ?? null });
}

/** The "Made with this model" strip, kept across re-renders of the same model (Edit, Save). */
function madeSection(ctx, record) {
  if (!ctx.made || ctx.made.sha !== record.sha256) {
    const onImages = (names, message) => imagesChanged(ctx, names, message, null);
    ctx.made = generationsStrip(record.sha256, { onImages });
  }
  return ctx.made.el;
}

/** The panel's left column: images, what the model made, file and hashes. */
function leftColumn(ctx, record) {
  const parts = [gallerySection(ctx, record), madeSection(ctx, record), info(ctx, record)];
  return h("div", { class: "details-left" }, parts);
}

/** Open the panel for a model (fetches the full record), in view mode. */
async function openPanel(ctx, sha256) {
  if (!SHA_RE.test(sha256)) return;
  ctx.dirty = false;
  ctx.editing = false;
  ctx.discardBar.hidden = true;
  ctx.made = null; // opened (again): read what the model made afresh
  if (!ctx.current || ctx.current.sha256 !== sha256) ctx.revealed = new Set();
  replaceChildren(
    ctx.dialog,
    h("header", { class: "details-header" }, h("h2", { id: "details-title", tabindex: "-1" }, t("common.loading"))),
  );
  if (!ctx.dialog.open) ctx.dialog.showModal();
  ctx.dialog.querySelector("#details-title").focus();
  try {
    const record = await get(`models/${sha256}`);
    ctx.render(record);
    ctx.dialog.querySelector("#details-title").focus();
  } catch (err) {
    replaceChildren(
      ctx.dialog,
      h(
        "header",
        { class: "details-header" },
        h("h2", { id: "details-title", tabindex: "-1" }, t("details.loadFailed")),
        ctx.closeButton(true),
      ),
      h("p", { class: "error-text details-error", role: "alert" }, describeError(err)),
    );
    ctx.dialog.querySelector("#details-title").focus();
  }
}

export function createDetails({ onSaved = () => {}, onClosed = () => {} } = {}) {
  const dialog = h("dialog", { class: "details", "aria-labelledby": "details-title" });
  document.body.append(dialog);
  const ctx = { ...createDetailsState({ onSaved, onClosed }), dialog };

  // ------------------------------------------------------------- closing
  const discardBar = h(
    "div",
    { class: "discard-bar", role: "alertdialog", "aria-label": t("details.unsaved"), hidden: true },
    h("span", {}, t("details.unsaved")),
    h(
      "button",
      {
        type: "button",
        class: "btn btn-danger",
        onclick: () => (ctx.afterDiscard === "view" ? leaveEdit(true) : close(true)),
      },
      t("details.discard"),
    ),
    h("button", { type: "button", class: "btn", onclick: () => hideDiscard() }, t("details.keepEditing")),
  );

  function hideDiscard() {
    discardBar.hidden = true;
    if (ctx.fields.name && ctx.fields.name.isConnected) ctx.fields.name.focus();
  }

  function askDiscard(action) {
    ctx.afterDiscard = action;
    discardBar.hidden = false;
    discardBar.querySelector("button").focus();
  }

  function close(force = false) {
    if (ctx.editing && ctx.dirty && !force) {
      askDiscard("close");
      return;
    }
    ctx.dirty = false;
    ctx.editing = false;
    discardBar.hidden = true;
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener("cancel", (event) => {
    event.preventDefault(); // Escape: our close() decides (unsaved changes, open popups)
    if (ctx.editing && ctx.editor && ctx.editor.busy) return;
    if (!discardBar.hidden) {
      hideDiscard();
      return;
    }
    close();
  });
  dialog.addEventListener("close", () => {
    const sha = ctx.current && ctx.current.sha256;
    ctx.current = null;
    ctx.made = null;
    ctx.editing = false;
    ctx.revealed = new Set();
    onClosed(sha);
  });
  // A click on the backdrop (outside the panel) closes it.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close();
  });

  // ------------------------------------------------------------- edit mode
  function enterEdit() {
    if (!ctx.current) return;
    ctx.editing = true;
    ctx.dirty = false;
    render(ctx.current);
    ctx.fields.name.focus();
  }

  function leaveEdit(force = false) {
    if (ctx.dirty && !force) {
      askDiscard("view");
      return;
    }
    ctx.editing = false;
    ctx.dirty = false;
    discardBar.hidden = true;
    render(ctx.current);
    const edit = dialog.querySelector(".details-edit");
    if (edit) edit.focus();
  }

  function closeButton(force = false) {
    return h(
      "button",
      {
        type: "button",
        class: "btn-icon",
        "aria-label": t("common.close"),
        onclick: () => close(force),
      },
      "×",
    );
  }

  function render(record) {
    ctx.current = record;
    const title = h("h2", { id: "details-title", tabindex: "-1" }, record.name || record.sha256);
    const edit = ctx.editing
      ? null
      : h("button", { type: "button", class: "btn details-edit", onclick: () => enterEdit() }, t("details.edit"));
    const parts = ctx.editing ? form(ctx, record) : null;
    if (!ctx.editing) {
      ctx.editor = null;
      ctx.fields = {};
    }
    replaceChildren(
      dialog,
      h(
        "header",
        { class: "details-header" },
        title,
        record.missing ? statusBadge("missing") : null,
        edit,
        closeButton(),
      ),
      discardBar,
      h(
        "div",
        { class: "details-body" },
        leftColumn(ctx, record),
        ctx.editing ? parts.formEl : view(record),
      ),
      ctx.editing ? parts.bar : null,
    );
    dialog.classList.toggle("editing", ctx.editing);
  }

  Object.assign(ctx, { render, leaveEdit });
  Object.assign(ctx, { discardBar, closeButton });
  return {
    /** Open the panel for a model (fetches the full record), in view mode. */
    open: (sha256) => openPanel(ctx, sha256),
    close,
    get openSha() {
      return ctx.current ? ctx.current.sha256 : null;
    },
  };
}
