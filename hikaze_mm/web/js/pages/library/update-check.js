// The Library's "Check for updates" (in the Filters panel, beside the "Update available"
// filter): POST updates/check starts the check (409 while one runs: then that one is
// followed), GET updates/status is polled until it ends, with its progress; then a toast
// says how many models have an update (or the check's error, e.g. Civitai unreachable) and
// the listing is loaded again, so the cards' badges appear.

import { get, post } from "../../api.js";
import { h } from "../../../comfy/shared/dom.js";
import { t } from "../../i18n.js";
import { describeError, toast } from "../../components/toast.js";

const POLL_MS = 400;

/** The check's error: the report's (Civitai unreachable, ...) or the job's own. */
function checkError(status) {
  const report = status.last_report;
  return (report && report.error) || status.error || null;
}

/** The elements and the check; `afterCheck` runs when a check ended (the listing reloads). */
export function createUpdateCheck({ afterCheck }) {
  const button = h("button", { type: "button", class: "btn update-check-button" }, t("library.updates.check"));
  const bar = h("progress", { class: "update-check-progress", "aria-label": t("library.updates.progress"), hidden: true });
  const text = h("span", { class: "update-check-text", role: "status", "aria-live": "polite" });
  const el = h("div", { class: "update-check", "data-testid": "update-check" }, button, bar, text);
  let timer = null;
  let alive = true;

  function showProgress(status) {
    const { done = 0, total = 0 } = status.progress || {};
    bar.hidden = false;
    bar.max = Math.max(total, 1);
    if (total) bar.value = done;
    else bar.removeAttribute("value"); // counting the models: indeterminate
    text.textContent = total ? t("library.updates.running", { done, n: total }) : t("library.updates.starting");
  }

  function finish(message, failed) {
    timer = null;
    bar.hidden = true;
    button.disabled = false;
    el.removeAttribute("aria-busy");
    text.textContent = message;
    text.classList.toggle("error-text", failed);
    toast(message, failed ? "error" : "success");
  }

  function ended(status) {
    const error = checkError(status);
    if (error) {
      finish(t("library.updates.failed", { error }), true);
      return;
    }
    const report = status.last_report || {};
    const n = report.counts ? report.counts.updates : 0;
    finish(n ? t("library.updates.found", { n }) : t("library.updates.none"), false);
    afterCheck();
  }

  async function poll() {
    if (!alive) return;
    let status;
    try {
      status = await get("updates/status");
    } catch (err) {
      finish(t("library.updates.failed", { error: describeError(err) }), true);
      return;
    }
    if (!alive) return;
    if (status.running) {
      showProgress(status);
      timer = setTimeout(poll, POLL_MS);
    } else {
      ended(status);
    }
  }

  async function start() {
    button.disabled = true;
    el.setAttribute("aria-busy", "true");
    text.classList.remove("error-text");
    showProgress({});
    try {
      showProgress(await post("updates/check", {}));
    } catch (err) {
      if (err && err.status !== 409) {
        finish(t("library.updates.failed", { error: describeError(err) }), true);
        return;
      }
      text.textContent = t("library.updates.following"); // another check runs: follow it
    }
    timer = setTimeout(poll, POLL_MS);
  }

  button.addEventListener("click", start);

  return {
    el,
    destroy() {
      alive = false;
      if (timer !== null) clearTimeout(timer);
    },
  };
}
