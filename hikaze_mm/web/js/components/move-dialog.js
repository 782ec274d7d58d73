// "Move to template folder": a dialog for one model or a selection. It first shows where
// each model would go (a dry run of POST /api/models/move with the server's template,
// HIKAZE_DOWNLOAD_TEMPLATE, or the one typed), then moves them and shows each model's
// result: moved, already in place, or failed with the reason.

import { post } from "../api.js";
import { h, replaceChildren } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";
import { describeError } from "./toast.js";

const BULK_MAX = 5000; // models per request
const SHOWN = 300; // result rows drawn; the counts cover the rest

const fileName = (path) => (path ? String(path).split(/[\\/]/).pop() : "");

/** POST the move in batches; one summary {counts, results} for all of them. */
async function moveAll(shas, template, dryRun) {
  const total = { counts: { moved: 0, unchanged: 0, planned: 0, failed: 0 }, results: [] };
  for (let i = 0; i < shas.length; i += BULK_MAX) {
    const body = { sha256s: shas.slice(i, i + BULK_MAX), dry_run: dryRun };
    if (template) body.template = template;
    const answer = await post("models/move", body);
    for (const key of Object.keys(total.counts)) total.counts[key] += answer.counts[key] || 0;
    total.results.push(...answer.results);
  }
  return total;
}

function resultRow(result) {
  const status = result.status;
  return h(
    "li",
    { class: ["move-result", `move-${status}`], dataset: { sha: result.sha256, status } },
    h("span", { class: "badge move-status" }, t(`library.move.status.${status}`)),
    h("span", { class: "move-name" }, fileName(result.from) || result.sha256.slice(0, 10)),
    result.to && status !== "failed" ? h("code", { class: "move-to" }, result.to) : null,
    result.error ? h("span", { class: "move-error" }, result.error) : null,
  );
}

function renderResults(list, summary, dryRun) {
  const rows = summary.results.slice(0, SHOWN).map(resultRow);
  const more = summary.results.length - rows.length;
  replaceChildren(list, rows, more > 0 ? h("li", { class: "move-more" }, t("library.move.more", { n: more })) : null);
  const c = summary.counts;
  return dryRun
    ? t("library.move.planned", { n: c.planned, unchanged: c.unchanged, failed: c.failed })
    : t("library.move.done", { n: c.moved, unchanged: c.unchanged, failed: c.failed });
}

/**
 * Open the dialog for `shas`; resolves, once closed, with the summary of the move (null
 * when nothing was moved), so the caller reloads what shows the models' paths.
 */
export function openMoveDialog(shas) {
  return new Promise((resolve) => {
    let moved = null;
    const input = h("input", {
      type: "text",
      id: "move-template",
      class: "input",
      autocomplete: "off",
      placeholder: t("library.move.templatePlaceholder"),
    });
    const status = h("p", { class: "move-summary", role: "status" });
    const problem = h("p", { class: "error-text", role: "alert", hidden: true });
    const list = h("ul", { class: "move-results", "aria-label": t("library.move.results") });
    const preview = h("button", { type: "button", class: "btn", dataset: { move: "preview" } }, t("library.move.preview"));
    const go = h("button", { type: "button", class: "btn btn-primary", dataset: { move: "go" } }, t("library.move.go"));
    const close = h("button", { type: "button", class: "btn", dataset: { move: "close" } }, t("common.close"));

    async function run(dryRun) {
      for (const button of [preview, go]) button.disabled = true;
      problem.hidden = true;
      status.textContent = t(dryRun ? "library.move.planning" : "library.move.moving");
      try {
        const summary = await moveAll(shas, input.value.trim(), dryRun);
        status.textContent = renderResults(list, summary, dryRun);
        if (!dryRun && summary.counts.moved) moved = summary;
        preview.disabled = !dryRun;
        go.disabled = !dryRun || summary.counts.planned === 0;
      } catch (err) {
        status.textContent = "";
        replaceChildren(list);
        problem.textContent = describeError(err);
        problem.hidden = false;
        preview.disabled = false;
      }
    }

    preview.addEventListener("click", () => run(true));
    go.addEventListener("click", () => run(false));
    close.addEventListener("click", () => dialog.close());
    input.addEventListener("input", () => {
      go.disabled = true; // a new template: preview it first
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        run(true);
      }
    });
    const dialog = h(
      "dialog",
      { class: "confirm-dialog move-dialog", "aria-labelledby": "move-title" },
      h("h2", { id: "move-title" }, t("library.move.title", { n: shas.length })),
      h("label", { class: "filter-label", for: "move-template" }, t("library.move.template")),
      input,
      h("p", { class: "hint" }, t("library.move.hint")),
      problem,
      status,
      list,
      h("div", { class: "form-actions" }, close, preview, go),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(moved);
    });
    document.body.append(dialog);
    dialog.showModal();
    run(true);
  });
}
