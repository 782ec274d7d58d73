// Bulk actions of the Library: a selection of models (checkbox per card, Shift-click for a
// range, "Select all" of the whole filtered set), and a bar that adds or removes tags,
// fetches from Civitai or deletes the selection, each ending with one summary toast, or
// moves it to its template folder (components/move-dialog.js: the result per model).

import { get, post } from "../api.js";
import { h } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";
import { confirmDelete } from "./card-actions.js";
import { openMoveDialog } from "./move-dialog.js";
import { toast, toastError } from "./toast.js";

const PAGE = 500;
const POLL_MS = 500;
// What one request may carry: bulk edits take 5,000 models, a Civitai job 1,000.
const BULK_MAX = 5000;
const CIVITAI_MAX = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The sha256s of `count` models of a query (the listing's params) from index `from` on,
 * all of them by default, asked by pages of 500. */
export async function listShas(params, from = 0, count = Infinity) {
  const found = [];
  for (let offset = from; found.length < count; offset += PAGE) {
    const limit = Math.min(PAGE, count - found.length);
    const data = await get("models", { ...params, offset, limit });
    found.push(...data.items.map((item) => item.sha256));
    if (data.items.length < limit || offset + data.items.length >= data.total) break;
  }
  return found;
}

/** `items` in consecutive batches of at most `size`. */
function batches(items, size) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Ask for tag names to add or remove (comma-separated, suggestions from `tagNames`). */
function askTags(mode, count, tagNames) {
  return new Promise((resolve) => {
    const input = h("input", {
      type: "text",
      id: "bulk-tags-input",
      class: "input",
      list: "bulk-tags-list",
      autocomplete: "off",
      required: true,
    });
    const apply = h("button", { type: "submit", class: "btn btn-primary", value: "apply" }, t(`library.bulk.${mode}`));
    let answer = null;
    const dialog = h(
      "dialog",
      { class: "confirm-dialog", "aria-labelledby": "bulk-tags-title" },
      h(
        "form",
        {
          method: "dialog",
          onsubmit: (event) => {
            if (event.submitter !== apply) return;
            const names = input.value
              .split(",")
              .map((name) => name.trim())
              .filter(Boolean);
            if (!names.length) {
              event.preventDefault();
              return;
            }
            answer = [...new Set(names)];
          },
        },
        h("h2", { id: "bulk-tags-title" }, t(`library.bulk.${mode}Title`, { n: count })),
        h("label", { class: "filter-label", for: "bulk-tags-input" }, t("library.bulk.tagNames")),
        input,
        h(
          "datalist",
          { id: "bulk-tags-list" },
          tagNames.map((name) => h("option", { value: name })),
        ),
        h(
          "div",
          { class: "form-actions" },
          h("button", { type: "submit", class: "btn", value: "cancel", formnovalidate: true }, t("common.cancel")),
          apply,
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}

/** Add or remove tags on the selection, in batches; one summary toast. */
async function bulkTags(selected, hooks, mode) {
  const names = await askTags(mode, selected.size, hooks.tagNames());
  if (!names) return;
  try {
    const result = { updated: 0, not_found: [] };
    for (const shas of batches([...selected], BULK_MAX)) {
      const answer = await post("models/bulk/tags", { sha256s: shas, [mode]: names });
      result.updated += answer.updated;
      result.not_found.push(...(answer.not_found || []));
    }
    const missing = result.not_found.length;
    toast(
      t(`library.bulk.${mode}Done`, { n: result.updated, tags: names.join(", ") }) +
        (missing ? ` ${t("library.bulk.notFound", { n: missing })}` : ""),
      "success",
      { timeout: 8000 },
    );
    hooks.afterChange("tags");
  } catch (err) {
    toastError(err, t("library.bulk.tagsFailed"));
  }
}

/** Look the selection up on Civitai, one job per batch; one summary toast. */
async function bulkCivitai(selected, hooks) {
  const shas = [...selected];
  const note = toast(t("library.bulk.civitaiRunning", { n: shas.length }), "info", { timeout: 600000 });
  try {
    // One job at a time: each batch is looked up before the next starts.
    const c = { found: 0, not_found: 0, failed: 0, images: 0 };
    let status;
    for (const batch of batches(shas, CIVITAI_MAX)) {
      await post("civitai/fetch", { sha256s: batch });
      do {
        await sleep(POLL_MS);
        status = await get("civitai/status");
      } while (status.running);
      for (const key of Object.keys(c)) c[key] += (status.counts || {})[key] || 0;
      if (status.error) break;
    }
    note.remove();
    const text = t("library.bulk.civitaiDone", {
      found: c.found || 0,
      not_found: c.not_found || 0,
      failed: c.failed || 0,
      images: c.images || 0,
    });
    toast(status.error ? `${text} ${status.error}` : text, c.failed || status.error ? "error" : "success", {
      timeout: 8000,
    });
    hooks.afterChange("civitai");
  } catch (err) {
    note.remove();
    toastError(err, t("library.bulk.civitaiFailed"));
  }
}

/** Delete the selection (after a confirmation); true when the request went through. */
async function bulkDelete(selected, hooks) {
  const choice = await confirmDelete({ count: selected.size });
  if (!choice) return false;
  try {
    const result = { deleted: 0, files_deleted: 0, failed: [] };
    for (const shas of batches([...selected], BULK_MAX)) {
      const answer = await post("models/bulk/delete", { sha256s: shas, delete_file: choice.deleteFile });
      result.deleted += answer.deleted;
      result.files_deleted += answer.files_deleted;
      result.failed.push(...(answer.failed || []));
    }
    const failed = result.failed;
    let text = choice.deleteFile
      ? t("library.bulk.deletedFiles", { n: result.deleted, files: result.files_deleted })
      : t("library.bulk.deleted", { n: result.deleted });
    if (failed.length) {
      const first = failed[0];
      text += ` ${t("library.bulk.deleteFailedSome", { n: failed.length, error: first.detail || first.error })}`;
    }
    toast(text, failed.length ? "error" : "success", { timeout: 8000 });
    return true;
  } catch (err) {
    toastError(err, t("library.bulk.deleteFailed"));
    return false;
  }
}


/**
 * The selection and its bar. hooks: {params() (the current query), total() (its count),
 * shasBetween(a, b) (the sha256s of items a..b of the query, a promise), tagNames(),
 * onSelectionChange(selected Set),
 * afterChange(kind) (reload the list, and the facets when tags changed)}.
 */
export function createBulk(hooks) {
  const selected = new Set();
  let anchor = null; // {sha, index} of the last card clicked
  let busy = false;

  const countText = h("span", { class: "bulk-count", role: "status" });
  const selectAll = h("button", { type: "button", class: "btn btn-small" });
  const clear = h("button", { type: "button", class: "btn btn-small" }, t("library.bulk.clear"));
  const actions = [
    ["add", () => bulkTags(selected, hooks, "add")],
    ["remove", () => bulkTags(selected, hooks, "remove")],
    ["civitai", () => bulkCivitai(selected, hooks)],
    [
      "move",
      async () => {
        if (await openMoveDialog([...selected])) hooks.afterChange("move");
      },
    ],
    [
      "delete",
      async () => {
        if (!(await bulkDelete(selected, hooks))) return;
        clearSelection();
        hooks.afterChange("delete");
      },
    ],
  ].map(([key, run]) =>
    h(
      "button",
      {
        type: "button",
        class: ["btn", "btn-small", key === "delete" ? "btn-danger" : ""],
        dataset: { bulk: key },
        onclick: async () => {
          if (busy) return;
          busy = true;
          bar.setAttribute("aria-busy", "true");
          try {
            await run();
          } finally {
            busy = false;
            bar.removeAttribute("aria-busy");
          }
        },
      },
      t(`library.bulk.${key}Action`),
    ),
  );
  const bar = h(
    "div",
    { class: "bulk-bar", role: "region", "aria-label": t("library.bulk.label"), hidden: true },
    countText,
    selectAll,
    clear,
    h("span", { class: "spacer" }),
    actions,
  );

  function render() {
    bar.hidden = selected.size === 0;
    countText.textContent = t("library.bulk.count", { n: selected.size });
    const total = hooks.total();
    selectAll.hidden = selected.size >= total;
    selectAll.textContent = t("library.bulk.selectAll", { n: total });
    hooks.onSelectionChange(selected);
  }

  /** A card's checkbox was clicked (shift: select the range from the last one clicked;
   * `index`: the card's place in the filtered set, the range may span cards not rendered). */
  async function toggle(sha, { shift = false, on = !selected.has(sha), index = null } = {}) {
    const from = anchor;
    anchor = index === null ? null : { sha, index };
    if (shift && from && index !== null) {
      const [a, b] = [from.index, index].sort((x, y) => x - y);
      let range;
      try {
        range = await hooks.shasBetween(a, b);
      } catch (err) {
        toastError(err, t("library.bulk.selectFailed"));
        return;
      }
      for (const item of range) {
        if (on) selected.add(item);
        else selected.delete(item);
      }
    } else if (on) {
      selected.add(sha);
    } else {
      selected.delete(sha);
    }
    render();
  }

  function clearSelection() {
    selected.clear();
    anchor = null;
    render();
  }

  selectAll.addEventListener("click", async () => {
    selectAll.disabled = true;
    try {
      for (const sha of await listShas(hooks.params())) selected.add(sha);
      render();
    } catch (err) {
      toastError(err, t("library.bulk.selectFailed"));
    } finally {
      selectAll.disabled = false;
    }
  });
  clear.addEventListener("click", clearSelection);

  return {
    bar,
    selected,
    toggle,
    clear: clearSelection,
    render,
    /** The list was loaded again: indexes changed, a Shift-click starts a new range. */
    resetAnchor() {
      anchor = null;
    },
    /** The list changed under the selection (a model deleted from its card). */
    forget(sha) {
      if (selected.delete(sha)) render();
    },
  };
}
