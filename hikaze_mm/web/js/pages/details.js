// Details panel: a modal dialog with the model's gallery (components/gallery.js: order,
// cover, full-screen viewer, upload, delete, NSFW blur), its file facts and hashes, and its
// metadata. It opens in view mode (text, nothing focused that a keypress could change);
// "Edit" turns the metadata into a form (name, type, base, tags, description, prompts,
// community links) saved with one PATCH from a Save bar that sticks to the panel's bottom.

import { bumpImageVersion, get, getFacet, patch, post } from "../api.js";
import { copyText, h, replaceChildren } from "../../comfy/shared/dom.js";
import { formatBytes } from "../../comfy/shared/format.js";
import { formatDate } from "../format.js";
import { t } from "../i18n.js";
import { invalidateTags } from "../tags.js";
import { imageGallery } from "../components/gallery.js";
import { tagEditor } from "../components/tag-editor.js";
import { describeError, toast, toastError } from "../components/toast.js";
import { fieldList, statusBadge, tagList } from "../components/widgets.js";

const SHA_RE = /^[0-9a-f]{64}$/;
const URL_RE = /^https?:\/\/\S+$/i;

/** meta.community_links may be a list of strings/objects or one string: -> list of URLs. */
function linksOf(meta) {
  const raw = meta && meta.community_links;
  if (!raw) return [];
  const items = Array.isArray(raw) ? raw : String(raw).split(/[\s,]+/);
  return items
    .map((item) => (item && typeof item === "object" ? item.url || item.href || "" : String(item || "")))
    .map((s) => s.trim())
    .filter(Boolean);
}

function promptsOf(meta) {
  const prompts = (meta && meta.prompts) || {};
  if (typeof prompts === "string") return { positive: prompts, negative: "" };
  return { positive: String(prompts.positive || ""), negative: String(prompts.negative || "") };
}

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

export function createDetails({ onSaved = () => {}, onClosed = () => {} } = {}) {
  const dialog = h("dialog", { class: "details", "aria-labelledby": "details-title" });
  document.body.append(dialog);

  let current = null; // the record shown
  let editing = false;
  let editor = null;
  let dirty = false;
  let fields = {};
  let revealed = new Set(); // NSFW images the user chose to see, while the panel is open
  let galleryPart = null;
  let afterDiscard = "close"; // what "Discard changes" does: close the panel or leave Edit

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
        onclick: () => (afterDiscard === "view" ? leaveEdit(true) : close(true)),
      },
      t("details.discard"),
    ),
    h("button", { type: "button", class: "btn", onclick: () => hideDiscard() }, t("details.keepEditing")),
  );

  function hideDiscard() {
    discardBar.hidden = true;
    if (fields.name && fields.name.isConnected) fields.name.focus();
  }

  function askDiscard(action) {
    afterDiscard = action;
    discardBar.hidden = false;
    discardBar.querySelector("button").focus();
  }

  function close(force = false) {
    if (editing && dirty && !force) {
      askDiscard("close");
      return;
    }
    dirty = false;
    editing = false;
    discardBar.hidden = true;
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener("cancel", (event) => {
    event.preventDefault(); // Escape: our close() decides (unsaved changes, open popups)
    if (editing && editor && editor.busy) return;
    if (!discardBar.hidden) {
      hideDiscard();
      return;
    }
    close();
  });
  dialog.addEventListener("close", () => {
    const sha = current && current.sha256;
    current = null;
    editing = false;
    revealed = new Set();
    onClosed(sha);
  });
  // A click on the backdrop (outside the panel) closes it.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close();
  });

  // ------------------------------------------------------------- edit mode
  function enterEdit() {
    if (!current) return;
    editing = true;
    dirty = false;
    render(current);
    fields.name.focus();
  }

  function leaveEdit(force = false) {
    if (dirty && !force) {
      askDiscard("view");
      return;
    }
    editing = false;
    dirty = false;
    discardBar.hidden = true;
    render(current);
    const edit = dialog.querySelector(".details-edit");
    if (edit) edit.focus();
  }

  // ------------------------------------------------------------- gallery
  function gallerySection(record, message = "", focus = null) {
    galleryPart = imageGallery(record, { onImages: imagesChanged, revealed, focus });
    galleryPart.setStatus(message);
    return galleryPart.el;
  }

  /** After an upload, delete (names null: re-read them) or reorder (the new names). */
  async function imagesChanged(names, message, focus) {
    if (!current) return;
    const sha = current.sha256;
    if (names === null) {
      bumpImageVersion(sha); // an upload may reuse a deleted seq: fetch tiers afresh
      try {
        names = await post("images/get_sample_imgs", { hash: sha });
      } catch (err) {
        toastError(err);
        return;
      }
    }
    if (!current || current.sha256 !== sha) return;
    current = { ...current, images: names, image_count: names.length };
    const old = dialog.querySelector(".details-gallery");
    const fresh = gallerySection(current, message, focus);
    if (old) old.replaceWith(fresh);
    // The library's card shows the first image: it may be new, moved, or gone.
    onSaved({ sha256: sha, image_count: names.length, cover_image: names[0] ?? null });
  }

  // ------------------------------------------------------------- view
  function view(record) {
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

  // ------------------------------------------------------------- form
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

  function labelled(id, label, control) {
    control.id = id;
    return h("div", { class: "form-row" }, h("label", { for: id }, label), control);
  }

  /** The edit form and its Save bar (outside the form, sticky at the panel's bottom). */
  function form(record) {
    const meta = record.meta || {};
    const prompts = promptsOf(meta);
    fields = {
      name: h("input", {
        type: "text",
        class: "input",
        value: record.name || "",
        maxlength: "255",
        required: true,
      }),
      type: h("input", {
        type: "text",
        class: "input",
        value: record.type || "",
        list: "details-types",
        maxlength: "64",
      }),
      base: h("input", {
        type: "text",
        class: "input",
        value: record.base || "",
        list: "details-bases",
        maxlength: "64",
      }),
      triggerWords: h("textarea", {
        class: "input",
        rows: "2",
        placeholder: t("details.triggerWordsPlaceholder"),
      }),
      weight: h("input", {
        type: "number",
        class: "input",
        min: "-10",
        max: "10",
        step: "0.05",
        value: record.preferred_weight ?? "",
        placeholder: "1",
      }),
      description: h("textarea", { class: "input", rows: "4" }),
      positive: h("textarea", { class: "input", rows: "3" }),
      negative: h("textarea", { class: "input", rows: "3" }),
      links: h("textarea", { class: "input", rows: "2", placeholder: t("details.linksPlaceholder") }),
    };
    fields.triggerWords.value = (record.trigger_words || []).join(", ");
    fields.description.value = String(meta.description || "");
    fields.positive.value = prompts.positive;
    fields.negative.value = prompts.negative;
    fields.links.value = linksOf(meta).join("\n");
    editor = tagEditor(record.tags || [], { onChange: () => (dirty = true) });
    const errorBox = h("div", { class: "form-error", role: "alert" });
    const saveButton = h(
      "button",
      { type: "submit", class: "btn btn-primary", form: "details-form" },
      t("common.save"),
    );
    const typeList = h("datalist", { id: "details-types" });
    const baseList = h("datalist", { id: "details-bases" });
    fillDatalists(typeList, baseList);

    const formEl = h(
      "form",
      { class: "details-form", id: "details-form", novalidate: true, "aria-label": t("details.editForm") },
      labelled("details-name", t("details.name"), fields.name),
      h(
        "div",
        { class: "form-grid" },
        labelled("details-type", t("details.type"), fields.type),
        labelled("details-base", t("details.base"), fields.base),
      ),
      h("div", { class: "form-row" }, h("span", { class: "label" }, t("details.tags")), editor.el),
      h(
        "div",
        { class: "form-grid" },
        labelled("details-trigger-words", t("details.triggerWords"), fields.triggerWords),
        labelled("details-weight", t("details.preferredWeight"), fields.weight),
      ),
      labelled("details-description", t("details.description"), fields.description),
      labelled("details-positive", t("details.positive"), fields.positive),
      labelled("details-negative", t("details.negative"), fields.negative),
      labelled("details-links", t("details.links"), fields.links),
      typeList,
      baseList,
    );
    const bar = h(
      "div",
      { class: "form-actions details-savebar", role: "group", "aria-label": t("details.saveBar") },
      errorBox,
      saveButton,
      h("button", { type: "button", class: "btn", onclick: () => leaveEdit() }, t("common.cancel")),
    );
    formEl.addEventListener("input", () => {
      dirty = true;
    });
    formEl.addEventListener("submit", async (event) => {
      event.preventDefault();
      errorBox.textContent = "";
      if (!fields.weight.checkValidity()) {
        errorBox.textContent = t("details.weightRange");
        fields.weight.focus();
        return;
      }
      const body = patchBody(record);
      if (body === null) {
        errorBox.textContent = t("details.nameRequired");
        fields.name.focus();
        return;
      }
      if (!Object.keys(body).length) {
        dirty = false;
        leaveEdit(); // nothing changed: nothing to send
        return;
      }
      saveButton.disabled = true;
      saveButton.textContent = t("common.saving");
      try {
        // The answer is the updated full record, as GET models/<sha> gives it.
        const saved = await patch(`models/${record.sha256}`, body);
        dirty = false;
        invalidateTags();
        toast(t("details.saved"), "success");
        editing = false;
        render(saved);
        onSaved(current);
        const edit = dialog.querySelector(".details-edit");
        if (edit) edit.focus();
      } catch (err) {
        errorBox.textContent = describeError(err);
        toastError(err, t("details.saveFailed"));
      } finally {
        saveButton.disabled = false;
        saveButton.textContent = t("common.save");
      }
    });
    return { formEl, bar };
  }

  async function fillDatalists(typeList, baseList) {
    const [types, bases] = await Promise.allSettled([getFacet("type"), getFacet("base")]);
    for (const [list, result] of [
      [typeList, types],
      [baseList, bases],
    ]) {
      const values = result.status === "fulfilled" ? result.value : [];
      replaceChildren(list, values.map((item) => h("option", { value: item.value })));
    }
  }

  /** The PATCH body: only what changed; null when the form is invalid. */
  function patchBody(record) {
    const name = fields.name.value.trim();
    if (!name) return null;
    const body = {};
    if (name !== (record.name || "")) body.name = name;
    const type = fields.type.value.trim();
    if (type && type !== (record.type || "")) body.type = type;
    const base = fields.base.value.trim();
    if (base !== (record.base || "")) body.base = base || null;
    const words = fields.triggerWords.value
      .split(/[,\n]/)
      .map((word) => word.trim())
      .filter(Boolean);
    if (words.join("\n") !== (record.trigger_words || []).join("\n")) body.trigger_words = words;
    const weightText = fields.weight.value.trim();
    const weight = weightText === "" ? null : Number(weightText);
    if (weight !== (record.preferred_weight ?? null)) body.preferred_weight = weight;

    const meta = record.meta || {};
    const metaChanges = {};
    const description = fields.description.value;
    if (description !== String(meta.description || "")) metaChanges.description = description;
    const prompts = promptsOf(meta);
    const positive = fields.positive.value;
    const negative = fields.negative.value;
    if (positive !== prompts.positive || negative !== prompts.negative) {
      const base = meta.prompts && typeof meta.prompts === "object" ? meta.prompts : {};
      metaChanges.prompts = { ...base, positive, negative };
    }
    const links = fields.links.value
      .split(/\s+/)
      .map((s) => s.trim())
      .filter(Boolean);
    if (links.join("\n") !== linksOf(meta).join("\n")) metaChanges.community_links = links;
    if (Object.keys(metaChanges).length) body.meta_json = metaChanges;

    const before = (record.tags || [])
      .map((tag) => tag.name.toLowerCase())
      .sort()
      .join("\n");
    const after = editor.value
      .map((tag) => tag.name.toLowerCase())
      .sort()
      .join("\n");
    if (before !== after) body.tags = { set: editor.value.map((tag) => tag.name) };
    return body;
  }

  // ------------------------------------------------------------- info
  function info(record) {
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
        [t("details.path"), h("code", { class: "path" }, record.path || "")],
        [t("details.size"), formatBytes(record.size_bytes)],
        [t("details.created"), formatDate(record.created_at)],
        [t("details.lastUsed"), formatDate(record.last_used_at)],
        [t("details.civitai"), civitaiRow(record)],
      ]),
    );
  }

  /** The Civitai page when known, and a button that looks the model up by its hash (an
   * explicit request: the hash goes to Civitai only when the user asks). In Edit mode it
   * waits: its answer would redraw the form over unsaved changes. */
  function civitaiRow(record) {
    const url = record.meta && record.meta.civitai && record.meta.civitai.url;
    const button = h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        disabled: editing,
        title: editing ? t("details.civitaiWhileEditing") : null,
        onclick: async () => {
          button.disabled = true;
          try {
            const answer = await post(`models/${record.sha256}/civitai`, {});
            const found = answer.civitai && answer.civitai.status === "found";
            toast(t(found ? "details.civitaiFound" : "details.civitaiNotFound"), found ? "success" : "info");
            if (answer.images && answer.images.length !== (current.images || []).length) {
              bumpImageVersion(answer.sha256);
            }
            render(answer);
            onSaved({ ...answer, cover_image: answer.images[0] ?? null });
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
    current = record;
    const title = h("h2", { id: "details-title", tabindex: "-1" }, record.name || record.sha256);
    const edit = editing
      ? null
      : h("button", { type: "button", class: "btn details-edit", onclick: () => enterEdit() }, t("details.edit"));
    const parts = editing ? form(record) : null;
    if (!editing) {
      editor = null;
      fields = {};
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
        h("div", { class: "details-left" }, gallerySection(record), info(record)),
        editing ? parts.formEl : view(record),
      ),
      editing ? parts.bar : null,
    );
    dialog.classList.toggle("editing", editing);
  }

  return {
    /** Open the panel for a model (fetches the full record), in view mode. */
    async open(sha256) {
      if (!SHA_RE.test(sha256)) return;
      dirty = false;
      editing = false;
      discardBar.hidden = true;
      if (!current || current.sha256 !== sha256) revealed = new Set();
      replaceChildren(
        dialog,
        h("header", { class: "details-header" }, h("h2", { id: "details-title", tabindex: "-1" }, t("common.loading"))),
      );
      if (!dialog.open) dialog.showModal();
      dialog.querySelector("#details-title").focus();
      try {
        const record = await get(`models/${sha256}`);
        render(record);
        dialog.querySelector("#details-title").focus();
      } catch (err) {
        replaceChildren(
          dialog,
          h(
            "header",
            { class: "details-header" },
            h("h2", { id: "details-title", tabindex: "-1" }, t("details.loadFailed")),
            closeButton(true),
          ),
          h("p", { class: "error-text details-error", role: "alert" }, describeError(err)),
        );
        dialog.querySelector("#details-title").focus();
      }
    },
    close,
    get openSha() {
      return current ? current.sha256 : null;
    },
  };
}
