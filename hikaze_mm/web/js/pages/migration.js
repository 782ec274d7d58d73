// Migration and scan: Stage 1 (legacy DB import with its report), Stage 2 (background
// hashing with start / pause / resume, a live progress bar with items, bytes, current
// file, speed and ETA, and the error list), and the directory scan with live progress.

import { get, post } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { formatBytes, formatDuration, formatNumber, formatSpeed } from "../format.js";
import { t } from "../i18n.js";
import { describeError, toast, toastError } from "../components/toast.js";
import { fieldList, progressBar, statusBadge } from "../components/widgets.js";

const FAST_POLL_MS = 500;
// The counters of a Stage 1 report, in display order.
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
  "image_errors",
  "model_errors",
  "meta_errors",
];
const PAUSED_POLL_MS = 1500;
const SLOW_POLL_MS = 4000;

const num = (...values) => {
  for (const v of values)
    if (v !== null && v !== undefined && v !== "" && Number.isFinite(Number(v))) return Number(v);
  return null;
};

/** Stage 2 status as the page needs it, from GET migration/status. */
function normalizeStage2(data) {
  const s = data || {};
  const stats = s.stats || {};
  const current = s.current_item || {};
  const status = String(s.status || "IDLE").toUpperCase();
  const total = num(stats.total_items);
  const processed = num(stats.processed_items);
  let progress = num(s.progress);
  if (progress === null && total) progress = (100 * (processed || 0)) / total;
  const pending = s.pending || {};
  return {
    status,
    phase: s.phase || null,
    policy: s.policy || null,
    progress,
    total,
    processed,
    bytesTotal: num(stats.total_bytes),
    bytesDone: num(stats.done_bytes),
    bytesRead: num(stats.bytes_read, stats.done_bytes),
    currentFile: s.current_file || current.path || null,
    currentDone: num(current.bytes_done),
    currentTotal: num(current.bytes_total),
    counts: {
      promoted: num(stats.promoted),
      merged: num(stats.merged),
      overridden: num(stats.overridden),
      deleted: num(stats.deleted),
      conflicts: num(stats.conflicts),
      errors: num(stats.errors),
    },
    pendingErrors: num(pending.error) || 0,
    lastError: s.error || null,
    stage1: s.legacy_import || null,
  };
}

/** Estimates bytes/s from successive samples when the server does not say. */
class SpeedMeter {
  constructor() {
    this.samples = [];
  }

  add(bytes) {
    if (bytes === null) return null;
    const now = performance.now();
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    const dt = (now - t0) / 1000;
    return dt > 0.4 && bytes >= b0 ? (bytes - b0) / dt : null;
  }

  reset() {
    this.samples = [];
  }
}

/** What tells one Stage 1 report from another. */
const reportKey = (report) => `${report.started_at}|${report.legacy_db_path}`;

function card(title, id, ...children) {
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export function mountMigration(root, { refreshCounts = () => {} } = {}) {
  let timer = null;
  let stopped = false;
  let stage1Running = false;
  let scanRunning = false;
  const meter = new SpeedMeter();

  // ------------------------------------------------------------- Stage 1
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
  // Checked: the whole flow in one call (Stage 1, then Stage 2 in the background).
  const thenStage2 = h("input", { type: "checkbox", id: "legacy-then-stage2", class: "switch" });
  const runButton = h("button", { type: "submit", class: "btn btn-primary" }, t("migration.stage1.run"));
  const stage1Progress = progressBar(t("migration.stage1.progress"));
  stage1Progress.el.hidden = true;
  const stage1Error = h("div", { class: "form-error", role: "alert" });
  const report = h("div", { class: "report", "aria-live": "polite" });
  const stage1Form = h(
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
    stage1Error,
  );

  // ------------------------------------------------------------- Stage 2
  const badge = h("span", { class: "status-slot" });
  // What the worker does with a pending model whose content is already in the library.
  const policySelect = h(
    "select",
    { class: "input", "aria-label": t("migration.stage2.policyLabel") },
    ["merge", "skip", "override", "delete"].map((p) =>
      h("option", { value: p }, t(`migration.stage2.policy.${p}`)),
    ),
  );
  const startButton = h("button", { type: "button", class: "btn btn-primary" }, t("migration.stage2.start"));
  const pauseButton = h("button", { type: "button", class: "btn" }, t("migration.stage2.pause"));
  const resumeButton = h("button", { type: "button", class: "btn" }, t("migration.stage2.resume"));
  const itemsBar = progressBar(t("migration.stage2.progress"));
  itemsBar.el.id = "stage2-progress";
  const fileBar = progressBar(t("migration.stage2.fileProgress"));
  fileBar.el.classList.add("progress-thin");
  const stage2Fields = h("div", { class: "stage2-fields" });
  const errorList = h("div", { class: "error-list" });

  // ------------------------------------------------------------- Scan
  const scanButton = h("button", { type: "button", class: "btn btn-primary" }, t("migration.scan.run"));
  const scanImmediate = h("input", { type: "checkbox", id: "scan-immediate", class: "switch" });
  const scanBar = progressBar(t("migration.scan.progress"));
  scanBar.el.id = "scan-progress";
  const scanFields = h("div", { class: "scan-fields" });

  root.append(
    h(
      "section",
      { class: "page page-migration", "aria-labelledby": "migration-title" },
      h("h1", { id: "migration-title" }, t("nav.migration")),
      h(
        "div",
        { class: "panels" },
        card(
          t("migration.stage2.title"),
          "stage2-title",
          h("p", { class: "muted" }, t("migration.stage2.intro")),
          h(
            "div",
            { class: "toolbar" },
            badge,
            h("span", { class: "spacer" }),
            h("label", { class: "inline-label" }, t("migration.stage2.policy"), policySelect),
            startButton,
            pauseButton,
            resumeButton,
          ),
          itemsBar.el,
          fileBar.el,
          stage2Fields,
          errorList,
        ),
        card(
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
              scanImmediate,
              h("span", {}, t("migration.scan.immediate")),
            ),
          ),
          scanBar.el,
          scanFields,
        ),
        card(
          t("migration.stage1.title"),
          "stage1-title",
          h("p", { class: "muted" }, t("migration.stage1.intro")),
          stage1Form,
          stage1Progress.el,
          report,
        ),
      ),
    ),
  );

  // ------------------------------------------------------------- rendering
  function renderStage2(st) {
    replaceChildren(badge, statusBadge(st.status.toLowerCase()));
    const running = st.status === "RUNNING";
    const paused = st.status === "PAUSED";
    startButton.disabled = running || paused;
    policySelect.disabled = running || paused;
    if ((running || paused) && st.policy) policySelect.value = st.policy;
    pauseButton.disabled = !running;
    resumeButton.disabled = !paused;

    const measured = running ? meter.add(st.bytesRead) : null;
    if (!running) meter.reset();
    const eta =
      measured && st.bytesTotal !== null && st.bytesDone !== null
        ? (st.bytesTotal - st.bytesDone) / measured
        : null;

    const parts = [];
    if (st.total !== null)
      parts.push(
        t("migration.stage2.items", { done: formatNumber(st.processed || 0), total: formatNumber(st.total) }),
      );
    if (st.bytesTotal)
      parts.push(
        t("migration.stage2.bytes", {
          done: formatBytes(st.bytesDone || 0),
          total: formatBytes(st.bytesTotal),
        }),
      );
    const percent = st.progress ?? (st.status === "COMPLETED" ? 100 : 0);
    itemsBar.set(
      percent,
      `${percent.toFixed(percent >= 100 || percent === 0 ? 0 : 1)}%${parts.length ? ` · ${parts.join(" · ")}` : ""}`,
    );

    const fileKnown = st.currentFile && (running || paused);
    fileBar.el.hidden = !fileKnown || !st.currentTotal;
    if (fileKnown && st.currentTotal) {
      fileBar.set(
        (100 * (st.currentDone || 0)) / st.currentTotal,
        `${formatBytes(st.currentDone || 0)} / ${formatBytes(st.currentTotal)}`,
      );
    }
    replaceChildren(
      stage2Fields,
      fieldList(
        [
          [
            t("migration.stage2.currentFile"),
            fileKnown
              ? h(
                  "code",
                  { class: "path", "data-testid": "current-file", title: st.currentFile },
                  st.currentFile,
                )
              : null,
          ],
        ],
        "fields current-file",
      ),
      fieldList(
        [
          [t("migration.stage2.speed"), running ? formatSpeed(measured) : null],
          [t("migration.stage2.eta"), running && eta !== null ? formatDuration(eta) : null],
          [
            t("migration.stage2.promoted"),
            st.counts.promoted !== null ? formatNumber(st.counts.promoted) : null,
          ],
          [t("migration.stage2.merged"), st.counts.merged !== null ? formatNumber(st.counts.merged) : null],

          [
            t("migration.stage2.conflicts"),
            st.counts.conflicts !== null ? formatNumber(st.counts.conflicts) : null,
          ],
          [t("migration.stage2.errors"), st.counts.errors !== null ? formatNumber(st.counts.errors) : null],
          // Override and delete happen only with those policies: shown when they did.
          st.counts.overridden
            ? [t("migration.stage2.overridden"), formatNumber(st.counts.overridden)]
            : null,
          st.counts.deleted ? [t("migration.stage2.deleted"), formatNumber(st.counts.deleted)] : null,
        ].filter(Boolean),
        "fields fields-inline",
      ),
    );
    if (st.lastError && st.status === "ERROR")
      stage2Fields.append(h("p", { class: "error-text", role: "alert" }, st.lastError));
  }

  let lastErrorKey = "";
  let lastErrorCount = -1;
  async function renderErrors(st) {
    // The pending items in status "error", each with its reason (fetched when the count changes).
    if (st.pendingErrors === lastErrorCount) return;
    lastErrorCount = st.pendingErrors;
    let errors = [];
    if (st.pendingErrors > 0) {
      try {
        const data = await get("migration/pending", { status: "error", limit: 50 });
        errors = data.items;
      } catch {
        errors = [];
      }
    }
    const key = JSON.stringify(errors.map((e) => [e.id, e.path, e.error || e.reason]));
    if (key === lastErrorKey) return;
    lastErrorKey = key;
    replaceChildren(
      errorList,
      errors.length
        ? [
            h("h3", {}, t("migration.stage2.errorList", { n: errors.length })),
            h(
              "ul",
              { class: "errors" },
              errors.map((e) =>
                h(
                  "li",
                  {},
                  h("code", { class: "path" }, e.path || (e.id !== undefined ? `#${e.id}` : "")),
                  h("span", { class: "reason" }, e.error || e.reason || e.detail || ""),
                ),
              ),
            ),
          ]
        : [],
    );
  }

  function renderStage1Progress(s1) {
    // Live progress of a running import (this page's or another client's).
    if (!s1 || !s1.running) return;
    stage1Progress.el.hidden = false;
    const p = s1.progress || {};
    const total = num(p.total);
    const done = num(p.done) || 0;
    const phase = p.phase ? t(`migration.stage1.phase.${p.phase}`, { _: p.phase }) : "";
    stage1Progress.set(
      total ? (100 * done) / total : null,
      `${phase}${total ? ` ${formatNumber(done)} / ${formatNumber(total)}` : ""}`,
    );
  }

  // The last Stage 1 report the server kept: shown on arrival, and when a full-flow run
  // started here (Stage 1 then Stage 2 in the worker) has produced a new one.
  let awaitingReport = false;
  let shownReport = null;
  let lastStage1Error = null;
  let errorAtSubmit = null;
  function showLastReport(s1) {
    if (!s1) return;
    lastStage1Error = s1.error || null;
    if (s1.running || stage1Running) return;
    if (awaitingReport && s1.error && s1.error !== errorAtSubmit) {
      awaitingReport = false;
      stage1Progress.el.hidden = true;
      stage1Error.textContent = s1.error;
      return;
    }
    const last = s1.last_report;
    if (!last || typeof last !== "object") return;
    const key = reportKey(last);
    if (key === shownReport) return;
    renderReport(last);
    if (awaitingReport) stage1Progress.set(100, t("migration.stage1.done"));
    else stage1Progress.el.hidden = true;
    shownReport = key;
    awaitingReport = false;
  }

  function renderReport(rep) {
    const counts = REPORT_COUNTS.filter((key) => typeof rep[key] === "number");
    const { errors, warnings } = rep;
    replaceChildren(
      report,
      h("h3", {}, t("migration.stage1.report")),
      h(
        "table",
        { class: "table report-table", "data-testid": "stage1-report" },
        h(
          "tbody",
          {},
          counts.map((key) =>
            h(
              "tr",
              { dataset: { key } },
              h("th", { scope: "row" }, t(`report.${key}`, { _: key.replace(/_/g, " ") })),
              h("td", {}, formatNumber(rep[key])),
            ),
          ),
          typeof rep.seconds === "number"
            ? h(
                "tr",
                {},
                h("th", { scope: "row" }, t("report.seconds")),
                h("td", {}, formatDuration(rep.seconds)),
              )
            : null,
        ),
      ),
      warnings.map((w) => h("p", { class: "warning-text" }, String(w))),
      errors.length
        ? [
            h("h4", {}, t("migration.stage1.errors", { n: errors.length + (rep.errors_omitted || 0) })),
            h(
              "ul",
              { class: "errors" },
              errors
                .slice(0, 500)
                .map((e) =>
                  h(
                    "li",
                    {},
                    e.kind ? h("span", { class: "badge" }, e.kind) : null,
                    e.legacy_id !== undefined && e.legacy_id !== null
                      ? h("span", { class: "badge" }, `#${e.legacy_id}`)
                      : null,
                    e.path ? h("code", { class: "path" }, e.path) : null,
                    h("span", { class: "reason" }, e.reason || e.error || ""),
                  ),
                ),
            ),
          ]
        : h("p", { class: "muted" }, t("migration.stage1.noErrors")),
    );
  }

  function renderScan(s) {
    const data = s || {};
    const report = data.last_report || null;
    scanRunning = Boolean(data.running);
    scanButton.disabled = scanRunning;
    // While running: the live counts; afterwards: the last report's (or the idle zeros).
    const counts = (scanRunning ? data.counts : report && report.counts) || data.counts || {};
    const phase = String(data.phase || (report ? "done" : "idle"));
    let percent = 0;
    if (scanRunning)
      percent = null; // the number of files is not known before the walk ends
    else if (report || phase === "done") percent = 100;
    const caption = scanRunning
      ? t("migration.scan.running", {
          phase: t(`migration.scan.phase.${phase}`, { _: phase }),
          n: formatNumber(counts.files_seen || 0),
        })
      : report
        ? t("migration.scan.finished", { n: formatNumber(counts.files_seen || 0) })
        : "";
    scanBar.set(percent, caption);
    const moved =
      num(counts.moved) === null && num(counts.renamed) === null
        ? null
        : (num(counts.moved) || 0) + (num(counts.renamed) || 0);
    const rows = [
      [t("migration.scan.seen"), num(counts.files_seen)],
      [t("migration.scan.unchanged"), num(counts.unchanged)],
      [t("migration.scan.new"), num(counts.new)],
      [t("migration.scan.moved"), moved],
      [t("migration.scan.missing"), num(counts.missing)],
      [t("migration.scan.returned"), num(counts.restored)],
      [t("migration.scan.errors"), num(counts.errors)],
    ].filter(([, v]) => v !== null);
    replaceChildren(
      scanFields,
      rows.length
        ? fieldList(
            rows.map(([k, v]) => [k, h("span", { "data-testid": `scan-${k}` }, formatNumber(v))]),
            "fields fields-inline",
          )
        : null,
      scanRunning && data.current
        ? h("p", { class: "muted small" }, h("code", { class: "path" }, data.current))
        : null,
      data.error ? h("p", { class: "error-text", role: "alert" }, data.error) : null,
    );
    const problems = !scanRunning && report ? report.problems : data.problems;
    if (problems.length) {
      scanFields.append(
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
                h("code", { class: "path" }, e.path || ""),
                h("span", { class: "reason" }, [e.kind, e.detail].filter(Boolean).join(": ")),
              ),
            ),
        ),
      );
    }
  }

  // ------------------------------------------------------------- polling
  let stage2Unavailable = false;
  let lastOutcome = null;
  let scanUnavailable = false;
  async function poll() {
    if (stopped) return;
    let busy = stage1Running;
    let paused = false;
    if (!document.hidden) {
      const [mig, scan] = await Promise.allSettled([get("migration/status"), get("scan/status")]);
      if (stopped) return;
      const st = mig.status === "fulfilled" ? normalizeStage2(mig.value) : null;
      if (st) {
        stage2Unavailable = false;
        renderStage2(st);
        renderErrors(st);
        renderStage1Progress(st.stage1);
        showLastReport(st.stage1);
        busy = busy || st.status === "RUNNING" || Boolean(st.stage1 && st.stage1.running);
        paused = st.status === "PAUSED";
      } else if (!stage2Unavailable) {
        stage2Unavailable = true;
        replaceChildren(
          stage2Fields,
          h(
            "p",
            { class: "error-text", role: "alert" },
            t("migration.unavailable", { error: describeError(mig.reason) }),
          ),
        );
        for (const b of [startButton, pauseButton, resumeButton]) b.disabled = true;
      }
      if (scan.status === "fulfilled") {
        scanUnavailable = false;
        renderScan(scan.value);
        busy = busy || scanRunning;
      } else if (!scanUnavailable) {
        scanUnavailable = true;
        scanButton.disabled = true;
        replaceChildren(
          scanFields,
          h(
            "p",
            { class: "error-text", role: "alert" },
            t("migration.unavailable", { error: describeError(scan.reason) }),
          ),
        );
      }
      // The header's counters follow what finished (a scan, promoted items).
      const report = scan.status === "fulfilled" ? scan.value.last_report : null;
      const outcome = `${report ? report.finished_at : ""}|${st ? `${st.status}:${st.processed}` : ""}`;
      if (lastOutcome !== null && outcome !== lastOutcome) refreshCounts();
      lastOutcome = outcome;
    }
    clearTimeout(timer);
    timer = setTimeout(poll, busy ? FAST_POLL_MS : paused ? PAUSED_POLL_MS : SLOW_POLL_MS);
  }

  function pollSoon() {
    clearTimeout(timer);
    timer = setTimeout(poll, 50);
  }

  // ------------------------------------------------------------- actions
  async function control(action, button) {
    button.disabled = true;
    try {
      const body = action === "start" ? { conflict_policy: policySelect.value } : {};
      const status = await post(`migration/${action}`, body);
      // The answer is the new status: show it at once (the next poll refines it).
      if (status && status.status) renderStage2(normalizeStage2(status));
      toast(t(`migration.stage2.done.${action}`), "success");
    } catch (err) {
      toastError(err, t("migration.stage2.failed", { action: t(`migration.stage2.${action}`) }));
    }
    pollSoon();
    refreshCounts();
  }
  startButton.addEventListener("click", () => control("start", startButton));
  pauseButton.addEventListener("click", () => control("pause", pauseButton));
  resumeButton.addEventListener("click", () => control("resume", resumeButton));

  scanButton.addEventListener("click", async () => {
    scanButton.disabled = true;
    try {
      await post("scan", { immediate_hashing: scanImmediate.checked });
      toast(t("migration.scan.started"), "success");
    } catch (err) {
      toastError(err, t("migration.scan.failed"));
    }
    pollSoon();
  });

  stage1Form.addEventListener("submit", async (event) => {
    event.preventDefault();
    stage1Error.textContent = "";
    const legacyDb = dbPath.value.trim();
    if (!legacyDb) {
      stage1Error.textContent = t("migration.stage1.dbRequired");
      dbPath.focus();
      return;
    }
    const body = { legacy_db_path: legacyDb, legacy_images_dir: imagesDir.value.trim() || null };
    report.replaceChildren();
    if (thenStage2.checked) {
      // The worker runs Stage 1 then Stage 2; the polls show both and then the report.
      runButton.disabled = true;
      try {
        const status = await post("migration/start", body);
        if (status && status.status) renderStage2(normalizeStage2(status));
        awaitingReport = true;
        errorAtSubmit = lastStage1Error;
        stage1Progress.el.hidden = false;
        stage1Progress.set(null, t("migration.stage1.running"));
        toast(t("migration.stage2.done.start"), "success");
      } catch (err) {
        stage1Error.textContent = describeError(err);
        toastError(err, t("migration.stage1.failed"));
      } finally {
        runButton.disabled = false;
        pollSoon();
      }
      return;
    }
    runButton.disabled = true;
    runButton.textContent = t("migration.stage1.running");
    stage1Running = true;
    stage1Progress.el.hidden = false;
    stage1Progress.set(null, t("migration.stage1.running"));
    pollSoon();
    try {
      const result = await post("migration/migrate_legacy_db", body);
      stage1Progress.set(100, t("migration.stage1.done"));
      renderReport(result);
      shownReport = reportKey(result);
      toast(t("migration.stage1.done"), "success");
    } catch (err) {
      stage1Progress.el.hidden = true;
      stage1Error.textContent = describeError(err);
      toastError(err, t("migration.stage1.failed"));
    } finally {
      stage1Running = false;
      runButton.disabled = false;
      runButton.textContent = t("migration.stage1.run");
      refreshCounts();
    }
  });

  poll();
  return {
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
