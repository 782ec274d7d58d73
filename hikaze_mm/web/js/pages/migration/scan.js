// Scan panel: the "Scan now" button (optionally hashing new files at once) and the scan's
// live progress, counts and problems. Reads GET scan/status.

import { post } from "../../api.js";
import { h, replaceChildren } from "../../dom.js";
import { formatNumber } from "../../format.js";
import { t } from "../../i18n.js";
import { describeError, toast, toastError } from "../../components/toast.js";
import { fieldList, panel, progressBar } from "../../components/widgets.js";

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

  function render(data) {
    const { running, phase } = data;
    const report = data.last_report;
    scanButton.disabled = running;
    // While running: the live counts; afterwards: the last report's (or the idle zeros).
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
    const rows = [
      [t("migration.scan.seen"), counts.files_seen],
      [t("migration.scan.unchanged"), counts.unchanged],
      [t("migration.scan.new"), counts.new],
      [t("migration.scan.moved"), counts.moved + counts.renamed],
      [t("migration.scan.missing"), counts.missing],
      [t("migration.scan.returned"), counts.restored],
      [t("migration.scan.errors"), counts.errors],
    ];
    replaceChildren(
      fields,
      fieldList(
        rows.map(([k, v]) => [k, h("span", { "data-testid": `scan-${k}` }, formatNumber(v))]),
        "fields fields-inline",
      ),
      running && data.current
        ? h("p", { class: "muted small" }, h("code", { class: "path" }, data.current))
        : null,
      data.error ? h("p", { class: "error-text", role: "alert" }, data.error) : null,
    );
    const problems = !running && report ? report.problems : data.problems;
    if (problems.length) {
      fields.append(
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
      );
    }
  }

  function unavailable(err) {
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
    pollSoon();
  });

  return { el, render, unavailable };
}
