// Duplicates page: models found at several paths (GET duplicates, the largest waste
// first), with the total space the extra copies take. Each extra copy (every path but the
// primary one, which the library uses) has a Delete button; a dialog naming the file asks
// for confirmation, then DELETE models/<sha256>/files?path=...&confirm=true deletes that
// file and the list is loaded again.

import { del, get } from "../api.js";
import { h, replaceChildren } from "../../comfy/shared/dom.js";
import { formatBytes } from "../../comfy/shared/format.js";
import { formatNumber } from "../format.js";
import { t } from "../i18n.js";
import { describeError, toast, toastError } from "../components/toast.js";
import { fieldList, loadFailed } from "../components/widgets.js";

const SHORT_HASH = 10;

/** One model's copies: the primary path, then each extra copy with a Delete button (`ask`). */
function groupView(group, ask) {
  const [primary, ...copies] = group.paths;
  const titleId = `dup-${group.sha256}`;
  return h(
    "article",
    { class: "dup-group", "aria-labelledby": titleId, dataset: { sha256: group.sha256 } },
    h(
      "div",
      { class: "dup-head" },
      h("h2", { id: titleId }, h("a", { href: `#/library/${group.sha256}` }, group.name || group.sha256)),
      h("code", { class: "hash", title: group.sha256 }, group.sha256.slice(0, SHORT_HASH)),
    ),
    fieldList(
      [
        [t("duplicates.size"), formatBytes(group.size_bytes)],
        [t("duplicates.copies"), formatNumber(group.paths.length)],
        [
          t("duplicates.wasted"),
          h("span", { "data-testid": "dup-wasted" }, formatBytes(group.wasted_bytes)),
        ],
      ],
      "fields fields-inline dup-fields",
    ),
    h(
      "ul",
      { class: "dup-paths" },
      h(
        "li",
        { class: "dup-path dup-primary" },
        h("code", { class: "path" }, primary),
        h("span", { class: "badge", title: t("duplicates.primaryHint") }, t("duplicates.primary")),
      ),
      copies.map((path) =>
        h(
          "li",
          { class: "dup-path" },
          h("code", { class: "path" }, path),
          h(
            "button",
            {
              type: "button",
              class: "btn btn-small btn-danger",
              "aria-label": t("duplicates.deleteCopy", { path }),
              onclick: () => ask(group, path),
            },
            t("common.delete"),
          ),
        ),
      ),
    ),
  );
}

export function mountDuplicates(root) {
  let stopped = false;
  const heading = h("h1", { id: "duplicates-title", tabindex: "-1" }, t("nav.duplicates"));
  const summary = h("div", { class: "dup-summary", "aria-live": "polite" });
  const list = h("div", { class: "dup-list", "aria-busy": "true" });
  const refreshButton = h(
    "button",
    { type: "button", class: "btn", onclick: () => load() },
    t("common.refresh"),
  );

  // The confirmation dialog, filled for the copy about to be deleted.
  const dialogText = h("p", {});
  const dialogPath = h("code", { class: "path dup-dialog-path" });
  const confirmButton = h("button", { type: "button", class: "btn btn-danger" }, t("common.delete"));
  const cancelButton = h("button", { type: "button", class: "btn" }, t("common.cancel"));
  const dialog = h(
    "dialog",
    {
      class: "dup-dialog",
      "aria-labelledby": "dup-dialog-title",
      "aria-describedby": "dup-dialog-text",
    },
    h("h2", { id: "dup-dialog-title" }, t("duplicates.confirmTitle")),
    h("div", { id: "dup-dialog-text" }, dialogText, dialogPath),
    h("div", { class: "form-actions" }, cancelButton, confirmButton),
  );
  let pending = null; // {group, path} of the copy the dialog asks about

  root.append(
    h(
      "section",
      { class: "page page-duplicates", "aria-labelledby": "duplicates-title" },
      heading,
      h("p", { class: "muted" }, t("duplicates.intro")),
      h("div", { class: "toolbar" }, summary, h("span", { class: "spacer" }), refreshButton),
      list,
      dialog,
    ),
  );

  function show(groups) {
    const copies = groups.reduce((sum, g) => sum + g.paths.length - 1, 0);
    const wasted = groups.reduce((sum, g) => sum + (g.wasted_bytes || 0), 0);
    replaceChildren(
      summary,
      groups.length
        ? fieldList(
            [
              [
                t("duplicates.models"),
                h("span", { "data-testid": "dup-models" }, formatNumber(groups.length)),
              ],
              [t("duplicates.extraCopies"), h("span", { "data-testid": "dup-copies" }, formatNumber(copies))],
              [
                t("duplicates.totalWasted"),
                h("span", { "data-testid": "dup-total-wasted" }, formatBytes(wasted)),
              ],
            ],
            "fields fields-inline",
          )
        : null,
    );
    replaceChildren(
      list,
      groups.length ? groups.map((group) => groupView(group, ask)) : h("p", { class: "list-message dup-empty" }, t("duplicates.none")),
    );
  }

  async function load() {
    list.setAttribute("aria-busy", "true");
    try {
      const groups = await get("duplicates");
      if (stopped) return;
      show(groups);
    } catch (err) {
      if (stopped) return;
      replaceChildren(summary);
      replaceChildren(list, loadFailed(t("duplicates.loadFailed", { error: describeError(err) }), load));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  function ask(group, path) {
    pending = { group, path };
    dialogText.textContent = t("duplicates.confirmText", { name: group.name || group.sha256 });
    dialogPath.textContent = path;
    confirmButton.disabled = false;
    dialog.showModal();
    cancelButton.focus();
  }

  cancelButton.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    pending = null;
  });
  confirmButton.addEventListener("click", async () => {
    if (!pending) return;
    const { group, path } = pending;
    confirmButton.disabled = true;
    try {
      const answer = await del(`models/${group.sha256}/files`, { path, confirm: true });
      toast(t(answer.file_deleted ? "duplicates.deleted" : "duplicates.forgotten", { path }), "success");
    } catch (err) {
      toastError(err, t("duplicates.deleteFailed"));
    }
    dialog.close();
    if (stopped) return;
    await load();
    heading.focus(); // the button that opened the dialog is gone
  });

  load();
  return {
    unmount() {
      stopped = true;
      if (dialog.open) dialog.close();
    },
  };
}
