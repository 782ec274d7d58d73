// Migration and scan: the Stage 2, scan and Stage 1 panels (migration/stage2.js, scan.js,
// stage1.js), and the one polling loop that feeds them GET migration/status (Stage 2, and
// the Stage 1 import under legacy_import) and GET scan/status: fast while anything runs.

import { get } from "../api.js";
import { h } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";
import { createScan } from "./migration/scan.js";
import { createStage1 } from "./migration/stage1.js";
import { createStage2 } from "./migration/stage2.js";

const FAST_POLL_MS = 500;
const PAUSED_POLL_MS = 1500;
const SLOW_POLL_MS = 4000;

export function mountMigration(root, { refreshCounts = () => {} } = {}) {
  let timer = null;
  let stopped = false;

  function pollSoon() {
    clearTimeout(timer);
    timer = setTimeout(poll, 50);
  }

  const stage2 = createStage2({ pollSoon, refreshCounts });
  const scan = createScan({ pollSoon });
  const stage1 = createStage1({ pollSoon, onStage2: stage2.render });

  root.append(
    h(
      "section",
      { class: "page page-migration", "aria-labelledby": "migration-title" },
      h("h1", { id: "migration-title" }, t("nav.migration")),
      h("div", { class: "panels" }, stage2.el, scan.el, stage1.el),
    ),
  );

  // A failed poll is shown once, until one succeeds again.
  let migrationFailed = false;
  let scanFailed = false;
  let lastOutcome = null;
  async function poll() {
    if (stopped) return;
    let busy = false;
    let paused = false;
    if (!document.hidden) {
      const [mig, scanned] = await Promise.allSettled([get("migration/status"), get("scan/status")]);
      if (stopped) return;
      const st = mig.status === "fulfilled" ? mig.value : null;
      if (st) {
        migrationFailed = false;
        stage2.render(st);
        stage2.showErrors(st.pending.error);
        stage1.render(st.legacy_import);
        busy = st.status === "RUNNING" || st.legacy_import.running;
        paused = st.status === "PAUSED";
      } else if (!migrationFailed) {
        migrationFailed = true;
        stage2.unavailable(mig.reason);
      }
      const sc = scanned.status === "fulfilled" ? scanned.value : null;
      if (sc) {
        scanFailed = false;
        scan.render(sc);
        busy = busy || sc.running;
      } else if (!scanFailed) {
        scanFailed = true;
        scan.unavailable(scanned.reason);
      }
      // The header's counters follow what finished (a scan, an import, promoted items).
      const outcome = JSON.stringify([
        sc && sc.last_report && sc.last_report.finished_at,
        st && [st.status, st.stats.processed_items, st.legacy_import.finished_at],
      ]);
      if (lastOutcome !== null && outcome !== lastOutcome) refreshCounts();
      lastOutcome = outcome;
    }
    clearTimeout(timer);
    timer = setTimeout(poll, busy ? FAST_POLL_MS : paused ? PAUSED_POLL_MS : SLOW_POLL_MS);
  }

  poll();
  return {
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
