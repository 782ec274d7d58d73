// Details panel: a modal dialog with the model's gallery (high tier on click, drag-and-drop
// upload, delete), its metadata form (name, type, base, tags, description, prompts,
// community links) saved with one PATCH, and copy buttons for the sha256 and AutoV2 hash.

import { bumpImageVersion, del, get, getFacet, imageUrl, patch, post, request, seqOf } from "../api.js";
import { copyText, h, replaceChildren } from "../dom.js";
import { formatBytes, formatDate } from "../format.js";
import { t } from "../i18n.js";
import { invalidateTags } from "../tags.js";
import { tagEditor } from "../components/tag-editor.js";
import { describeError, toast, toastError } from "../components/toast.js";
import { fieldList, statusBadge } from "../components/widgets.js";

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

export function createDetails({ onSaved = () => {}, onClosed = () => {} } = {}) {
  const dialog = h("dialog", { class: "details", "aria-labelledby": "details-title" });
  const lightbox = h("dialog", { class: "lightbox", "aria-label": t("details.imageViewer") });
  document.body.append(dialog, lightbox);

  let current = null; // the record shown
  let editor = null;
  let dirty = false;
  let fields = {};

  // ------------------------------------------------------------- closing
  const discardBar = h(
    "div",
    { class: "discard-bar", role: "alertdialog", "aria-label": t("details.unsaved"), hidden: true },
    h("span", {}, t("details.unsaved")),
    h(
      "button",
      { type: "button", class: "btn btn-danger", onclick: () => close(true) },
      t("details.discard"),
    ),
    h("button", { type: "button", class: "btn", onclick: () => hideDiscard() }, t("details.keepEditing")),
  );

  function hideDiscard() {
    discardBar.hidden = true;
    if (fields.name) fields.name.focus();
  }

  function close(force = false) {
    if (dirty && !force) {
      discardBar.hidden = false;
      discardBar.querySelector("button").focus();
      return;
    }
    dirty = false;
    discardBar.hidden = true;
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener("cancel", (event) => {
    event.preventDefault(); // Escape: our close() decides (unsaved changes, open popups)
    if (editor && editor.busy) return;
    if (!discardBar.hidden) {
      hideDiscard();
      return;
    }
    close();
  });
  dialog.addEventListener("close", () => {
    const sha = current && current.sha256;
    current = null;
    onClosed(sha);
  });
  // A click on the backdrop (outside the panel) closes it.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close();
  });

  lightbox.addEventListener("click", () => lightbox.close());
  lightbox.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      lightbox.close();
    }
  });

  function openLightbox(name) {
    const img = h("img", {
      src: imageUrl(name, "high"),
      alt: t("details.fullImage", { name: current ? current.name || "" : "" }),
    });
    replaceChildren(
      lightbox,
      img,
      h(
        "button",
        { type: "button", class: "btn lightbox-close", "aria-label": t("common.close"), autofocus: true },
        "×",
      ),
    );
    lightbox.showModal();
  }

  // ------------------------------------------------------------- gallery
  function gallery(record) {
    const names = record.images;
    const grid = h(
      "div",
      { class: "gallery", role: "list", "aria-label": t("details.images") },
      names.length
        ? names.map((name, i) => {
            const seq = seqOf(name);
            const deleteButton = h(
              "button",
              {
                type: "button",
                class: "btn btn-small btn-danger gallery-delete",
                "aria-label": t("details.deleteImage", { n: i + 1 }),
              },
              t("common.delete"),
            );
            let armed = false;
            deleteButton.addEventListener("click", async () => {
              if (!armed) {
                armed = true;
                deleteButton.textContent = t("details.confirmDelete");
                setTimeout(() => {
                  armed = false;
                  if (deleteButton.isConnected) deleteButton.textContent = t("common.delete");
                }, 4000);
                return;
              }
              deleteButton.disabled = true;
              try {
                await del(`images/${record.sha256}/${seq}`);
                toast(t("details.imageDeleted"), "success");
                await refreshImages();
              } catch (err) {
                deleteButton.disabled = false;
                toastError(err, t("details.deleteFailed"));
              }
            });
            return h(
              "figure",
              { class: "gallery-item", role: "listitem" },
              h(
                "button",
                {
                  type: "button",
                  class: "gallery-open",
                  "aria-label": t("details.openImage", { n: i + 1 }),
                  onclick: () => openLightbox(name),
                },
                h("img", {
                  src: imageUrl(name, "medium"),
                  alt: t("details.imageAlt", { n: i + 1 }),
                  loading: "lazy",
                }),
              ),
              deleteButton,
            );
          })
        : h("p", { class: "muted" }, t("details.noImages")),
    );

    const fileInput = h("input", {
      type: "file",
      accept: "image/*",
      multiple: true,
      class: "visually-hidden",
      tabindex: "-1",
      "aria-hidden": "true",
    });
    const status = h("p", { class: "muted upload-status", role: "status", "aria-live": "polite" });
    const drop = h(
      "div",
      {
        class: "dropzone",
        role: "button",
        tabindex: "0",
        "aria-label": t("details.uploadLabel"),
        onclick: () => fileInput.click(),
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            fileInput.click();
          }
        },
      },
      h("span", {}, t("details.dropHint")),
    );
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("dragging");
      upload([...(event.dataTransfer ? event.dataTransfer.files : [])], status);
    });
    fileInput.addEventListener("change", () => {
      upload([...fileInput.files], status);
      fileInput.value = "";
    });
    return h(
      "section",
      { class: "details-gallery", "aria-label": t("details.images") },
      grid,
      drop,
      fileInput,
      status,
    );
  }

  async function upload(files, status) {
    const sha = current && current.sha256;
    if (!sha || !files.length) return;
    let done = 0;
    for (const file of files) {
      status.textContent = t("details.uploading", { name: file.name, n: done + 1, total: files.length });
      try {
        await request("POST", `images/${sha}`, {
          body: file,
          headers: { "Content-Type": file.type || "application/octet-stream" },
        });
        done += 1;
      } catch (err) {
        toastError(err, t("details.uploadFailed", { name: file.name }));
      }
    }
    status.textContent = done ? t("details.uploaded", { n: done }) : "";
    if (done) await refreshImages(status.textContent);
  }

  /** Re-read the image list and redraw the gallery (keeping a status message). */
  async function refreshImages(message = "") {
    if (!current) return;
    bumpImageVersion(current.sha256);
    let names;
    try {
      names = await post("images/get_sample_imgs", { hash: current.sha256 });
    } catch (err) {
      toastError(err);
      return;
    }
    current = { ...current, images: names, image_count: names.length };
    const old = dialog.querySelector(".details-gallery");
    const fresh = gallery(current);
    fresh.querySelector(".upload-status").textContent = message;
    if (old) old.replaceWith(fresh);
    // The library's card shows the first image: it may be new, or gone.
    onSaved({ sha256: current.sha256, image_count: names.length, cover_image: names[0] ?? null });
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
      description: h("textarea", { class: "input", rows: "4" }),
      positive: h("textarea", { class: "input", rows: "3" }),
      negative: h("textarea", { class: "input", rows: "3" }),
      links: h("textarea", { class: "input", rows: "2", placeholder: t("details.linksPlaceholder") }),
    };
    fields.description.value = String(meta.description || "");
    fields.positive.value = prompts.positive;
    fields.negative.value = prompts.negative;
    fields.links.value = linksOf(meta).join("\n");
    editor = tagEditor(record.tags || [], { onChange: () => (dirty = true) });
    const errorBox = h("div", { class: "form-error", role: "alert" });
    const saveButton = h("button", { type: "submit", class: "btn btn-primary" }, t("common.save"));
    const typeList = h("datalist", { id: "details-types" });
    const baseList = h("datalist", { id: "details-bases" });
    fillDatalists(typeList, baseList);

    const links = linksOf(meta);
    const formEl = h(
      "form",
      { class: "details-form", novalidate: true, "aria-label": t("details.editForm") },
      labelled("details-name", t("details.name"), fields.name),
      h(
        "div",
        { class: "form-grid" },
        labelled("details-type", t("details.type"), fields.type),
        labelled("details-base", t("details.base"), fields.base),
      ),
      h("div", { class: "form-row" }, h("span", { class: "label" }, t("details.tags")), editor.el),
      labelled("details-description", t("details.description"), fields.description),
      labelled("details-positive", t("details.positive"), fields.positive),
      labelled("details-negative", t("details.negative"), fields.negative),
      labelled("details-links", t("details.links"), fields.links),
      links.length
        ? h(
            "ul",
            { class: "links", "aria-label": t("details.links") },
            links.map((url) => h("li", {}, externalLink(url))),
          )
        : null,
      typeList,
      baseList,
      errorBox,
      h(
        "div",
        { class: "form-actions" },
        saveButton,
        h("button", { type: "button", class: "btn", onclick: () => close() }, t("common.close")),
      ),
    );
    formEl.addEventListener("input", () => {
      dirty = true;
    });
    formEl.addEventListener("submit", async (event) => {
      event.preventDefault();
      errorBox.textContent = "";
      const body = patchBody(record);
      if (body === null) {
        errorBox.textContent = t("details.nameRequired");
        fields.name.focus();
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
        render(saved);
        onSaved(current);
      } catch (err) {
        errorBox.textContent = describeError(err);
        toastError(err, t("details.saveFailed"));
      } finally {
        saveButton.disabled = false;
        saveButton.textContent = t("common.save");
      }
    });
    return formEl;
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
   * explicit request: the hash goes to Civitai only when the user asks). */
  function civitaiRow(record) {
    const url = record.meta && record.meta.civitai && record.meta.civitai.url;
    const button = h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        onclick: async () => {
          button.disabled = true;
          try {
            const answer = await post(`models/${record.sha256}/civitai`, {});
            const found = answer.civitai && answer.civitai.status === "found";
            toast(t(found ? "details.civitaiFound" : "details.civitaiNotFound"), found ? "success" : "info");
            render(answer);
            onSaved({ sha256: answer.sha256, image_count: answer.image_count, cover_image: answer.images[0] ?? null });
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

  function render(record) {
    current = record;
    const title = h("h2", { id: "details-title" }, record.name || record.sha256);
    replaceChildren(
      dialog,
      h(
        "header",
        { class: "details-header" },
        title,
        record.missing ? statusBadge("missing") : null,
        h(
          "button",
          { type: "button", class: "btn-icon", "aria-label": t("common.close"), onclick: () => close() },
          "×",
        ),
      ),
      discardBar,
      h(
        "div",
        { class: "details-body" },
        h("div", { class: "details-left" }, gallery(record), info(record)),
        form(record),
      ),
    );
  }

  return {
    /** Open the panel for a model (fetches the full record). */
    async open(sha256) {
      if (!SHA_RE.test(sha256)) return;
      dirty = false;
      discardBar.hidden = true;
      replaceChildren(
        dialog,
        h("header", { class: "details-header" }, h("h2", { id: "details-title" }, t("common.loading"))),
      );
      if (!dialog.open) dialog.showModal();
      try {
        const record = await get(`models/${sha256}`);
        render(record);
        if (fields.name) fields.name.focus();
      } catch (err) {
        replaceChildren(
          dialog,
          h(
            "header",
            { class: "details-header" },
            h("h2", { id: "details-title" }, t("details.loadFailed")),
            h(
              "button",
              {
                type: "button",
                class: "btn-icon",
                "aria-label": t("common.close"),
                onclick: () => close(true),
              },
              "×",
            ),
          ),
          h("p", { class: "error-text", role: "alert" }, describeError(err)),
        );
      }
    },
    close,
    get openSha() {
      return current ? current.sha256 : null;
    },
  };
}
