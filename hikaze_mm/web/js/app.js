// Entry point: navigation between pages (hash routes, so the UI works under any prefix),
// the shared details panel, and the header (counters, theme toggle, sticky height).

// First: it sets the color theme at import, before any page renders.
import { createThemeToggle } from "./components/theme.js";
import { get } from "./api.js";
import { replaceChildren } from "../comfy/shared/dom.js";
import { formatNumber } from "./format.js";
import { followChanges } from "./live.js";
import { applyTranslations, t } from "./i18n.js";
import { createDetails } from "./pages/details.js";
import { SHA_RE } from "./pages/details/state.js";
import { mountDownloads } from "./pages/downloads.js";
import { mountDuplicates } from "./pages/duplicates.js";
import { mountLibrary } from "./pages/library.js";
import { mountMigration } from "./pages/migration.js";
import { mountPending } from "./pages/pending.js";

const PAGES = {
  library: mountLibrary,
  pending: mountPending,
  migration: mountMigration,
  duplicates: mountDuplicates,
  downloads: mountDownloads,
};

const view = document.getElementById("view");
const navLinks = [...document.querySelectorAll("[data-nav]")];
const pendingCount = document.getElementById("pending-count");
const statsLine = document.getElementById("stats");
const topbar = document.querySelector(".topbar");
const nav = document.querySelector(".topbar .nav");

let currentName = null;
let currentPage = null;

const details = createDetails({
  onSaved(model) {
    if (currentName === "library" && currentPage) {
      currentPage.updateModel(model);
      if (model.tags) currentPage.refreshFacets(); // tag counts, new tags, types, bases
    }
  },
  onClosed(sha256) {
    // Leave the model's URL (back to the page) and return focus to its card.
    if (/^#\/library\/[0-9a-f]{64}$/.test(location.hash)) history.replaceState(null, "", "#/library");
    if (currentName === "library" && currentPage && sha256) currentPage.focusCard(sha256);
  },
});

/** "#/library/<sha>" -> {name: "library", sha: "<sha>"}. */
function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const name = PAGES[parts[0]] ? parts[0] : "library";
  const sha = name === "library" && SHA_RE.test(parts[1] || "") ? parts[1] : null;
  return { name, sha };
}

function openModel(sha256) {
  if (location.hash !== `#/library/${sha256}`) history.replaceState(null, "", `#/library/${sha256}`);
  details.open(sha256);
}

function route() {
  const { name, sha } = parseRoute();
  if (!sha && details.openSha) details.close(true);
  if (name !== currentName) {
    if (currentPage && currentPage.unmount) currentPage.unmount();
    replaceChildren(view);
    currentName = name;
    currentPage = PAGES[name](view, { openDetails: openModel, refreshCounts });
    document.title = `${t(`nav.${name}`)} · ${t("app.title")}`;
    for (const link of navLinks) {
      if (link.dataset.nav === name) {
        link.setAttribute("aria-current", "page");
        revealInNav(link);
      } else link.removeAttribute("aria-current");
    }
    view.focus({ preventScroll: true });
  }
  if (sha && details.openSha !== sha) details.open(sha);
}

/** On a phone the nav scrolls sideways inside the header: keep the current page's link in
 * view (without scrolling the document, as scrollIntoView could). */
function revealInNav(link) {
  const left = link.offsetLeft - nav.offsetLeft;
  const right = left + link.offsetWidth;
  if (left < nav.scrollLeft) nav.scrollLeft = left;
  else if (right > nav.scrollLeft + nav.clientWidth) nav.scrollLeft = right - nav.clientWidth;
}

/** The sticky header's height as --topbar-height: app.css pads scrolling by it (anchors,
 * scrollIntoView, focus) so the header never covers a heading scrolled to; pages may use
 * it for their own sticky parts. */
function trackTopbarHeight() {
  const set = () =>
    document.documentElement.style.setProperty("--topbar-height", `${topbar.offsetHeight}px`);
  set();
  if (window.ResizeObserver) new ResizeObserver(set).observe(topbar);
}

/** Refresh the header: library stats and the number of pending models. */
async function refreshCounts() {
  try {
    const stats = await get("stats");
    statsLine.textContent = t("header.models", { n: stats.models });
    setPendingCount(stats.pending);
  } catch {
    statsLine.textContent = "";
    setPendingCount(0);
  }
}

function setPendingCount(n) {
  pendingCount.hidden = n <= 0;
  pendingCount.textContent = formatNumber(n);
  pendingCount.setAttribute("aria-label", t("header.pendingCount", { n }));
}

applyTranslations(document);
document.querySelector(".topbar-end").append(createThemeToggle());
trackTopbarHeight();
window.addEventListener("hashchange", route);
route();
refreshCounts();
setInterval(() => {
  if (!document.hidden) refreshCounts();
}, 15000);
// Changes made anywhere (another tab, ComfyUI, another machine of the catalog): the header's
// counts and the page on screen follow them.
followChanges((batch) => {
  refreshCounts();
  if (currentPage && currentPage.onChanges) currentPage.onChanges(batch);
});
