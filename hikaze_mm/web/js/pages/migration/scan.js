// Scan panel: the "Scan now" button (optionally hashing new files at once) and the scan's
// live progress, every count of its report (with a link to the Duplicates page when it
// found copies) and its problems. Reads GET scan/status.

import { post } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatDuration, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { describeError, toast, toastError } from "../../components/toast.js";
import { fieldList, panel, progressBar } from "../../components/widgets.js";

const SHOWN_ENTRIES = 200;

// The counts of a scan report (ScanCounts in library/scanner.py), in display order.
const COUNT_ORDER = [
  "files_seen",
  "unchanged",
  "new",
  "pending",
  "moved",
  "renamed",
  "restored",
  "missing",
  "duplicates",
  "to_hash",
  "hashed",
  "promoted",
  "conflicts",
  "pending_removed",
  "deferred",
  "sidecars",
  "errors",
];

/** A folded list of a report's entries ("relinked", "missing"); null when empty. */
function pathList(kind, entries, row) {
  if (!entries.length) return null;
  return h(
    "details",
    { class: "scan-list", dataset: { list: kind } },
    h("summary", {}, t(`migration.scan.list.${kind}`, { n: entries.length })),
    h(
      "ul",
      {},
      entries.slice(0, SHOWN_ENTRIES).map((entry) => h("li", {}, row(entry))),
    ),
  );
}

/** The report's relinked and missing files, as folded lists. */
function reportLists(report) {
  return [
    pathList("relinked", report.relinked || [], (r) => [
      h("span", { class: "badge" }, t(`migration.scan.count.${r.kind}`, { _: r.kind })),
      h("code", { class: "path" }, r.from),
      h("span", { "aria-hidden": "true" }, "→"),
      h("span", { class: "visually-hidden" }, t("migration.scan.to")),
      h("code", { class: "path" }, r.to),
    ]),
    pathList("missing", report.missing || [], (m) => [h("code", { class: "path" }, m.path)]),
  ];
}

/** The scan's problems (the first 50): a heading and a list. */
function problemList(problems) {
  return [
    h("h3", {}, t("migration.scan.problems", { n: problems.length })),
    h(
      "ul",
      { class: "errors" },
      problems
        .slice(0, 50)
        .map((e) =>
          h(
            "li",
            {},
            h("code", { class: "path" }, e.path),
            h("span", { class: "reason" }, [e.kind, e.detail].filter(Boolean).join(": ")),
          ),
        ),
    ),
  ];
}

/**
 * The scan panel. `el` is its section; `render(status)` shows GET scan/status;
 * `unavailable(err)` a failed poll.
 */
export function createScan({ pollSoon }) {
  const scanButton = h("button", { type: "button", class: "btn btn-primary" }, t("migration.scan.run"));
  const immediate = h("input", { type: "checkbox", id: "scan-immediate", class: "switch" });
  const bar = progressBar(t("migration.scan.progress"));
  bar.el.id = "scan-progress";
  const fields = h("div", { class: "scan-fields" });

  const el = panel(
    t("migration.scan.title"),
    "scan-title",
    h("p", { class: "muted" }, t("migration.scan.intro")),
    h(
      "div",
      { class: "toolbar" },
      scanButton,
      h(
        "label",
        { class: "toggle", for: "scan-immediate" },
        immediate,
        h("span", {}, t("migration.scan.immediate")),
      ),
    ),
    bar.el,
    fields,
  );

  // The status last shown: an unchanged one is not redrawn (a focused link keeps its focus).
  let shown = "";
  function render(data) {
    const key = JSON.stringify(data);
    if (key === shown) return;
    shown = key;
    const { running, phase } = data;
    const report = data.last_report;
    scanButton.disabled = running;
    // While running: the live counts; afterwards: the last report's.
    const counts = !running && report ? report.counts : data.counts;
    let percent = 0;
    if (running)
      percent = null; // the number of files is not known before the walk ends
    else if (report || phase === "done") percent = 100;
    const caption = running
      ? t("migration.scan.running", {
          phase: t(`migration.scan.phase.${phase}`, { _: phase }),
          n: counts.files_seen,
        })
      : report
        ? t("migration.scan.finished", { n: counts.files_seen })
        : "";
    bar.set(percent, caption);
    if (!running && !report) {
      // No scan since the manager started: no counts to show (zeros would read as a result).
      replaceChildren(
        fields,
        h("p", { class: "muted scan-none" }, t("migration.scan.none")),
        data.error ? h("p", { class: "error-text", role: "alert" }, data.error) : null,
      );
      return;
    }
    // Every count the scan reports, in a fixed order; a count this page does not know yet
    // comes last, under its own key.
    const keys = [...COUNT_ORDER, ...Object.keys(counts).filter((k) => !COUNT_ORDER.includes(k))];
    const rows = keys
      .filter((key) => key in counts)
      .map((key) => [
        t(`migration.scan.count.${key}`, { _: key }),
        h("span", { "data-testid": `scan-${key}` }, formatNumber(counts[key])),
      ]);
    if (!running && report && Number.isFinite(report.duration_ms))
      rows.push([
        t("migration.scan.duration"),
        h("span", { "data-testid": "scan-duration" }, formatDuration(report.duration_ms / 1000)),
      ]);
    replaceChildren(
      fields,
      fieldList(rows, "fields fields-inline scan-counts"),
      counts.duplicates > 0
        ? h(
            "p",
            { class: "scan-duplicates" },
            h("a", { href: "#/duplicates" }, t("migration.scan.viewDuplicates", { n: counts.duplicates })),
          )
        : null,
      running && data.current
        ? h("p", { class: "muted small" }, h("code", { class: "path" }, data.current))
        : null,
      data.error ? h("p", { class: "error-text", role: "alert" }, data.error) : null,
    );
    // What the last scan relinked and flagged missing (capped lists), folded.
    if (!running && report) fields.append(...reportLists(report));
    const problems = !running && report ? report.problems : data.problems;
    if (problems.length) fields.append(...problemList(problems));
  }

  function unavailable(err) {
    shown = "";
    scanButton.disabled = true;
    replaceChildren(
      fields,
      h(
        "p",
        { class: "error-text", role: "alert" },
        t("migration.unavailable", { error: describeError(err) }),
      ),
    );
  }

  scanButton.addEventListener("click", async () => {
    scanButton.disabled = true;
    try {
      await post("scan", { immediate_hashing: immediate.checked });
      toast(t("migration.scan.started"), "success");
    } catch (err) {
      toastError(err, t("migration.scan.failed"));
    }
    shown = ""; // the next status redraws the panel (and the button), changed or not
    pollSoon();
  });

  return { el, render, unavailable };
}
