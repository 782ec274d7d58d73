// Progress toasts for downloads, from the plugin's `hikaze.download` websocket events (a
// download's view, as GET /hikaze/api/downloads/{id} answers it). One toast per running
// download, replaced at most every few seconds, then one that says how it ended. No side
// effects at import: it only exports createDownloadToasts.

import { removeToast, toast } from "./notify.js";
import { OVER, downloadName, progressLine } from "./shared/downloads.js";

const MIN_UPDATE_MS = 2000;
const SUMMARY_LIFE_MS = 8000;
const ENDINGS = {
  done: ["success", "Hikaze: downloaded"],
  failed: ["error", "Hikaze: download failed"],
  cancelled: ["warn", "Hikaze: download cancelled"],
};

/** A handler for download views; `onDone(view)` runs when one lands in the library. */
export function createDownloadToasts({ onDone = () => {} } = {}) {
  const shown = new Map(); // id -> {message, at, status}
  const ended = new Set();
  let serial = 0;

  function show(view, severity, summary, life) {
    const last = shown.get(view.id);
    if (last && last.message) removeToast(last.message);
    serial += 1;
    const detail = `${downloadName(view)}: ${progressLine(view)}`;
    const message = toast(severity, summary, detail, { life, id: `hikaze-download-${serial}` });
    shown.set(view.id, { message, at: Date.now(), status: view.status });
  }

  return function handle(view) {
    if (!view || typeof view !== "object" || view.id === undefined) return;
    if (OVER.has(view.status)) {
      if (ended.has(view.id)) return;
      ended.add(view.id);
      const [severity, summary] = ENDINGS[view.status];
      show(view, severity, summary, view.status === "failed" ? 0 : SUMMARY_LIFE_MS);
      shown.delete(view.id);
      if (view.status === "done") onDone(view);
      return;
    }
    ended.delete(view.id);
    const last = shown.get(view.id);
    if (last && last.status === view.status && Date.now() - last.at < MIN_UPDATE_MS) return;
    if (view.status === "paused") {
      show(view, "info", "Hikaze: download paused", SUMMARY_LIFE_MS);
      return;
    }
    show(view, "info", "Hikaze: downloading", 0);
  };
}
