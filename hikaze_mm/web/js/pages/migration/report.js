// The report of a Stage 1 import: its counters, duration, warnings and per-item errors.

import { h } from "../../../comfy/shared/dom.js";
import { formatDuration, formatNumber } from "../../format.js";
import { t } from "../../i18n.js";

// The counters of a report, in display order.
const REPORT_COUNTS = [
  "tags",
  "tags_created",
  "tags_reused",
  "active_models",
  "pending_models",
  "merged_duplicates",
  "merged_into_existing",
  "already_imported",
  "links",
  "dangling_links",
  "images_encoded",
  "images_copied",
  "images_skipped",
  "images_recovered_by_name",
  "images_unreferenced",
  "image_errors",
  "model_errors",
  "meta_errors",
];
const SHOWN_ERRORS = 500;

/** The nodes of a report (the legacy_import.last_report of GET migration/status). */
export function reportView(report) {
  const { errors, warnings } = report;
  return [
    h("h3", {}, t("migration.stage1.report")),
    h(
      "table",
      { class: "table report-table", "data-testid": "stage1-report" },
      h(
        "tbody",
        {},
        REPORT_COUNTS.map((key) =>
          h(
            "tr",
            { dataset: { key } },
            h("th", { scope: "row" }, t(`report.${key}`)),
            h("td", {}, formatNumber(report[key])),
          ),
        ),
        h(
          "tr",
          {},
          h("th", { scope: "row" }, t("report.seconds")),
          h("td", {}, formatDuration(report.seconds)),
        ),
      ),
    ),
    warnings.map((w) => h("p", { class: "warning-text" }, w)),
    errors.length
      ? [
          h("h4", {}, t("migration.stage1.errors", { n: errors.length + report.errors_omitted })),
          h(
            "ul",
            { class: "errors" },
            errors
              .slice(0, SHOWN_ERRORS)
              .map((e) =>
                h(
                  "li",
                  {},
                  h("span", { class: "badge" }, e.kind),
                  e.legacy_id !== null ? h("span", { class: "badge" }, `#${e.legacy_id}`) : null,
                  e.path ? h("code", { class: "path" }, e.path) : null,
                  h("span", { class: "reason" }, e.reason),
                ),
              ),
          ),
        ]
      : h("p", { class: "muted" }, t("migration.stage1.noErrors")),
  ];
}
