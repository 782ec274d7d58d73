// Stage 2 panel: background hashing and promotion of the pending models, with start /
// pause / resume, the conflict policy, a live progress bar (percent) with the models and
// bytes done, the current file, the speed and time left (migration/rate.js), and the list
// of pending items in error. Reads GET migration/status.

import { get, post } from "../../api.js";
import { h, replaceChildren } from "../../../comfy/shared/dom.js";
import { formatBytes } from "../../../comfy/shared/format.js";
import { formatDuration, formatNumber, formatSpeed } from "../../format.js";
import { t } from "../../i18n.js";
import { describeError, toast, toastError } from "../../components/toast.js";
import { fieldList, panel, progressBar, statusBadge } from "../../components/widgets.js";
import { RateWindow, sampleOf } from "./rate.js";

const POLICIES = ["merge", "skip", "override", "delete"];

/** Speed and time left while Stage 2 hashes ("measuring" until the window has enough). */
function speedAndEta(rates, st, running) {
  // Speed and time left from the last seconds of this run, while it hashes (not while
  // the full flow runs Stage 1 first, nor paused).
  const hashing = running && st.phase !== "legacy_import";
  if (hashing) rates.add(sampleOf(st, Date.now()));
  else rates.reset();
  const estimate = rates.estimate();
  const measuring = t("migration.stage2.measuring");
  let speed = null;
  let eta = null;
  if (hashing && estimate.basis === null) {
    speed = measuring;
    eta = measuring;
  } else if (hashing) {
    speed = formatSpeed(estimate.bytesPerSecond);
    eta = formatDuration(estimate.secondsLeft);
  }
  return { speed, eta };
}

/** The models and data done, the speed and the time left. */
function rateList(stats, speed, eta) {
  const value = (testid, text) => h("span", { "data-testid": testid }, text ?? "—");
  return fieldList(
    [
      [
        t("migration.stage2.models"),
        value(
          "stage2-items",
          t("migration.stage2.itemsOf", {
            done: stats.processed_items,
            total: stats.total_items,
            n: stats.total_items,
          }),
        ),
      ],
      [
        t("migration.stage2.data"),
        value(
          "stage2-bytes",
          t("migration.stage2.bytesOf", {
            done: formatBytes(stats.done_bytes),
            total: formatBytes(stats.total_bytes),
          }),
        ),
      ],
      [t("migration.stage2.speed"), value("stage2-speed", speed)],
      [t("migration.stage2.eta"), value("stage2-eta", eta)],
    ],
    "fields fields-inline",
  );
}

/** The file being hashed, and the counts of what Stage 2 did. */
function fileAndCounts(st, current) {
  const { stats } = st;
  return [
    fieldList(
      [
        [
          t("migration.stage2.currentFile"),
          current
            ? h(
                "code",
                { class: "path", "data-testid": "current-file", title: st.current_file },
                st.current_file,
              )
            : null,
        ],
      ],
      "fields current-file",
    ),
    fieldList(
      [
        [t("migration.stage2.promoted"), formatNumber(stats.promoted)],
        [t("migration.stage2.merged"), formatNumber(stats.merged)],
        [t("migration.stage2.conflicts"), formatNumber(stats.conflicts)],
        [t("migration.stage2.errors"), formatNumber(stats.errors)],
        // Override and delete happen only with those policies: shown when they did.
        stats.overridden ? [t("migration.stage2.overridden"), formatNumber(stats.overridden)] : null,
        stats.deleted ? [t("migration.stage2.deleted"), formatNumber(stats.deleted)] : null,
      ].filter(Boolean),
      "fields fields-inline",
    ),
  ];
}

/**
 * The Stage 2 panel. `el` is its section; `render(status)` shows a migration status
 * (GET migration/status, or the answer of start / pause / resume); `showErrors(n)` the
 * pending items in error when their number changes; `unavailable(err)` a failed poll.
 */
export function createStage2({ pollSoon, refreshCounts }) {
  const rates = new RateWindow();
  const badge = h("span", { class: "status-slot" });
  // What the worker does with a pending model whose content is already in the library.
  const policySelect = h(
    "select",
    { class: "input", "aria-label": t("migration.stage2.policyLabel") },
    POLICIES.map((p) => h("option", { value: p }, t(`migration.stage2.policy.${p}`))),
  );
  const startButton = h("button", { type: "button", class: "btn btn-primary" }, t("migration.stage2.start"));
  const pauseButton = h("button", { type: "button", class: "btn" }, t("migration.stage2.pause"));
  const resumeButton = h("button", { type: "button", class: "btn" }, t("migration.stage2.resume"));
  const itemsBar = progressBar(t("migration.stage2.progress"));
  itemsBar.el.id = "stage2-progress";
  const fileBar = progressBar(t("migration.stage2.fileProgress"));
  fileBar.el.classList.add("progress-thin");
  const rateFields = h("div", { class: "stage2-rate" });
  const fields = h("div", { class: "stage2-fields" });
  const errorList = h("div", { class: "error-list" });

  const el = panel(
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
    rateFields,
    fileBar.el,
    fields,
    errorList,
  );

  function render(st) {
    const { stats } = st;
    replaceChildren(badge, statusBadge(st.status.toLowerCase()));
    const running = st.status === "RUNNING";
    const paused = st.status === "PAUSED";
    startButton.disabled = running || paused;
    policySelect.disabled = running || paused;
    if (running || paused) policySelect.value = st.policy;
    pauseButton.disabled = !running;
    resumeButton.disabled = !paused;

    const { speed, eta } = speedAndEta(rates, st, running);

    const percent = st.progress;
    itemsBar.set(
      percent,
      t("migration.stage2.percent", {
        percent: percent.toFixed(percent >= 100 || percent === 0 ? 0 : 1),
      }),
    );
    replaceChildren(rateFields, rateList(stats, speed, eta));

    // current_item is the item of current_file (both null when nothing is being hashed).
    const current = running || paused ? st.current_item : null;
    fileBar.el.hidden = !current || !current.bytes_total;
    if (current && current.bytes_total) {
      fileBar.set(
        (100 * current.bytes_done) / current.bytes_total,
        t("migration.stage2.bytesOf", {
          done: formatBytes(current.bytes_done),
          total: formatBytes(current.bytes_total),
        }),
      );
    }
    replaceChildren(fields, ...fileAndCounts(st, current));
    if (st.error && st.status === "ERROR")
      fields.append(h("p", { class: "error-text", role: "alert" }, st.error));
  }

  // The pending items in status "error", each with its reason (fetched when the count changes).
  let shownErrorCount = -1;
  let shownErrorsKey = "";
  async function showErrors(count) {
    if (count === shownErrorCount) return;
    shownErrorCount = count;
    let errors = [];
    if (count > 0) {
      try {
        errors = (await get("migration/pending", { status: "error", limit: 50 })).items;
      } catch {
        errors = [];
      }
    }
    const key = JSON.stringify(errors.map((e) => [e.id, e.path, e.error]));
    if (key === shownErrorsKey) return;
    shownErrorsKey = key;
    replaceChildren(
      errorList,
      errors.length
        ? [
            h("h3", {}, t("migration.stage2.errorList", { n: errors.length })),
            h(
              "ul",
              { class: "errors" },
              errors.map((e) =>
                h("li", {}, h("code", { class: "path" }, e.path), h("span", { class: "reason" }, e.error)),
              ),
            ),
          ]
        : [],
    );
  }

  function unavailable(err) {
    replaceChildren(
      fields,
      h(
        "p",
        { class: "error-text", role: "alert" },
        t("migration.unavailable", { error: describeError(err) }),
      ),
    );
    for (const b of [startButton, pauseButton, resumeButton]) b.disabled = true;
  }

  async function control(action, button) {
    button.disabled = true;
    try {
      const body = action === "start" ? { conf_strategy: policySelect.value } : {};
      // The answer is the new status: show it at once (the next poll refines it).
      render(await post(`migration/${action}`, body));
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

  return { el, render, showErrors, unavailable };
}
