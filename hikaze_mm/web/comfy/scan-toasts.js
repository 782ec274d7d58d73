// Progress toasts for library scans (and the hashing and promotion they run), from the
// plugin's `hikaze.scan` websocket events (the scan status: phase, counts...). One toast
// while a scan runs, replaced only when its phase changes (at most every few seconds), and
// one summary when it ends. No side effects at import: it only exports createScanToasts.

import { removeToast, toast } from "./notify.js";

const ENDED = new Set(["done", "failed", "cancelled"]);
const MIN_UPDATE_MS = 2000;
const SUMMARY_LIFE_MS = 8000;
const PHASES = {
  starting: "Starting",
  loading: "Reading the library",
  walking: "Walking the model folders",
  probing: "Reading file headers",
  writing: "Recording changes",
  hashing: "Hashing new files",
  promoting: "Adding new models to the library",
  sidecars: "Reading sidecar files",
};
const SUMMARY_COUNTS = [
  ["new", "new"],
  ["promoted", "added"],
  ["moved", "moved"],
  ["renamed", "renamed"],
  ["restored", "back"],
  ["missing", "missing"],
  ["conflicts", "conflicts"],
  ["errors", "errors"],
];

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** "Hashing new files: 3 of 10" and the like, for the running toast. */
export function progressText(status) {
  const counts = status.counts || {};
  const phase = PHASES[status.phase] || "Scanning";
  if (status.phase === "hashing" && counts.to_hash)
    return `${phase}: ${counts.hashed || 0} of ${counts.to_hash}`;
  if (status.phase === "promoting") return `${phase}: ${counts.promoted || 0} so far`;
  if (counts.files_seen) return `${phase} (${plural(counts.files_seen, "file")} seen)`;
  return phase;
}

/** "12 files: 3 new, 2 added, 1 missing" (or "12 files, no changes"). */
export function summaryText(status) {
  const counts = status.counts || {};
  const parts = SUMMARY_COUNTS.filter(([key]) => counts[key]).map(([key, word]) => `${counts[key]} ${word}`);
  const files = plural(counts.files_seen || 0, "file");
  return parts.length ? `${files}: ${parts.join(", ")}` : `${files}, no changes`;
}

function changed(status) {
  const counts = status.counts || {};
  return SUMMARY_COUNTS.some(([key]) => counts[key]);
}

/**
 * A handler for scan statuses. `onEnd(status)` runs when a scan ends (refresh what shows
 * the library). Statuses of a scan that started before this page get a summary only when
 * the scan changed something.
 */
export function createScanToasts({ onEnd = () => {} } = {}) {
  let running = null; // {startedAt, phase, shownAt, message}
  let lastEnded = null;
  let serial = 0;

  function show(status) {
    if (running.message) removeToast(running.message);
    serial += 1;
    running.message = toast("info", "Hikaze: scanning models", progressText(status), {
      life: 0,
      id: `hikaze-scan-${serial}`,
    });
    running.phase = status.phase;
    running.shownAt = Date.now();
  }

  return function handle(status) {
    if (!status || typeof status !== "object") return;
    const ended = ENDED.has(status.phase) || status.running === false;
    if (!ended) {
      if (!running || running.startedAt !== status.started_at) {
        if (running && running.message) removeToast(running.message);
        running = { startedAt: status.started_at, phase: null, shownAt: 0, message: null };
        show(status);
      } else if (status.phase !== running.phase && Date.now() - running.shownAt >= MIN_UPDATE_MS) {
        show(status);
      }
      return;
    }
    const key = `${status.started_at}:${status.finished_at}`;
    if (lastEnded === key || status.phase === "idle") return; // a repeat, or no scan yet
    lastEnded = key;
    const seen = running && running.startedAt === status.started_at;
    if (running && running.message) removeToast(running.message);
    running = null;
    if (status.phase === "cancelled") {
      toast("warn", "Hikaze: scan cancelled", summaryText(status), { life: SUMMARY_LIFE_MS });
    } else if (status.phase === "failed" || status.error) {
      toast("error", "Hikaze: the scan failed", status.error || "see the ComfyUI log", { life: 0 });
    } else if (seen || changed(status)) {
      const severity = (status.counts || {}).errors ? "warn" : "success";
      toast(severity, "Hikaze: scan finished", summaryText(status), { life: SUMMARY_LIFE_MS });
    }
    onEnd(status);
  };
}
