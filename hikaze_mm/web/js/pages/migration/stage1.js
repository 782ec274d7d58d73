// Stage 1 panel: the legacy database import form, the import's progress and its report.
//
// Both ways to run it answer at once and leave the import running on the server: "Run
// import" (POST migration/migrate_legacy_db, 202 with the import's status) and, with "Then
// hash and promote" checked, the full flow (POST migration/start with the legacy paths:
// the worker runs Stage 1, then Stage 2). Either way the page's polls of GET
// migration/status bring legacy_import here (render), which shows the progress while it
// runs, then the error or the report of the run that ended.

import { post } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { describeError, toast, toastError } from "../../components/toast.js";
import { panel, progressBar } from "../../components/widgets.js";
import { reportView } from "./report.js";

/** What tells one finished import (its error or its report) from another. */
const outcomeKey = (legacy) =>
  JSON.stringify([legacy.finished_at, legacy.error, legacy.last_report && legacy.last_report.started_at]);

/**
 * The Stage 1 panel. `el` is its section; `render(legacy)` shows the legacy_import of a
 * migration status; `onStage2(status)` gets the migration status that the full flow's
 * start answers.
 */
export function createStage1({ pollSoon, onStage2 }) {
  const dbPath = h("input", {
    type: "text",
    class: "input",
    id: "legacy-db",
    required: true,
    placeholder: "/path/to/hikaze_mm.sqlite3",
    autocomplete: "off",
  });
  const imagesDir = h("input", {
    type: "text",
    class: "input",
    id: "legacy-images",
    placeholder: "/path/to/images",
    autocomplete: "off",
  });
  // Checked: the whole flow (Stage 1, then Stage 2 in the background).
  const thenStage2 = h("input", { type: "checkbox", id: "legacy-then-stage2", class: "switch" });
  const runButton = h("button", { type: "submit", class: "btn btn-primary" }, t("migration.stage1.run"));
  const bar = progressBar(t("migration.stage1.progress"));
  bar.el.id = "stage1-progress";
  bar.el.hidden = true;
  const formError = h("div", { class: "form-error", role: "alert" });
  const report = h("div", { class: "report", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "stage1-form", novalidate: true },
    h("div", { class: "form-row" }, h("label", { for: "legacy-db" }, t("migration.stage1.dbPath")), dbPath),
    h(
      "div",
      { class: "form-row" },
      h("label", { for: "legacy-images" }, t("migration.stage1.imagesDir")),
      imagesDir,
    ),
    h(
      "label",
      { class: "toggle", for: "legacy-then-stage2" },
      thenStage2,
      h("span", {}, t("migration.stage1.thenStage2")),
    ),
    h("div", { class: "form-actions" }, runButton),
    formError,
  );
  const el = panel(
    t("migration.stage1.title"),
    "stage1-title",
    h("p", { class: "muted" }, t("migration.stage1.intro")),
    form,
    bar.el,
    report,
  );

  let submitting = false;
  let running = false;
  // A run started here (or seen running): its end is announced, its error shown.
  let watching = false;
  // The outcome last seen, and the report on display (a run's report is shown once).
  let seenOutcome = null;
  let shownReport = null;

  function setBusy() {
    const busy = submitting || running;
    runButton.disabled = busy;
    runButton.textContent = t(busy ? "migration.stage1.running" : "migration.stage1.run");
  }

  function showReport(last) {
    shownReport = last.started_at;
    replaceChildren(report, reportView(last));
  }

  function render(legacy) {
    running = legacy.running;
    setBusy();
    if (running) {
      watching = true;
      const { phase, done, total } = legacy.progress;
      const count = total ? ` ${formatNumber(done)} / ${formatNumber(total)}` : "";
      bar.el.hidden = false;
      bar.set(
        total ? (100 * done) / total : null,
        `${t(`migration.stage1.phase.${phase}`, { _: phase })}${count}`,
      );
      return;
    }
    const outcome = outcomeKey(legacy);
    if (outcome === seenOutcome) return;
    seenOutcome = outcome;
    const last = legacy.last_report;
    if (!watching) {
      // Not a run of this page's: the last report the server kept, unless already shown.
      bar.el.hidden = true;
      if (last && last.started_at !== shownReport) showReport(last);
      return;
    }
    watching = false;
    if (legacy.error) {
      bar.el.hidden = true;
      formError.textContent = legacy.error;
      toastError(legacy.error, t("migration.stage1.failed"));
    } else {
      bar.set(100, t("migration.stage1.done"));
      formError.textContent = "";
      showReport(last);
      toast(t("migration.stage1.done"), "success");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    const legacyDb = dbPath.value.trim();
    if (!legacyDb) {
      formError.textContent = t("migration.stage1.dbRequired");
      dbPath.focus();
      return;
    }
    const body = { legacy_db_path: legacyDb, legacy_images_dir: imagesDir.value.trim() || null };
    report.replaceChildren();
    submitting = true;
    setBusy();
    bar.el.hidden = false;
    bar.set(null, t("migration.stage1.running"));
    watching = true;
    try {
      if (thenStage2.checked) {
        // Stage 2's status: the worker runs Stage 1 first, which the polls then show.
        onStage2(await post("migration/start", body));
        toast(t("migration.stage2.done.start"), "success");
      } else {
        render((await post("migration/migrate_legacy_db", body)).legacy_import);
      }
    } catch (err) {
      watching = false;
      bar.el.hidden = true;
      formError.textContent = describeError(err);
      toastError(err, t("migration.stage1.failed"));
    } finally {
      submitting = false;
      setBusy();
      pollSoon();
    }
  });

  return { el, render };
}
