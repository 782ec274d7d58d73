// The pending review page's state: the filter, the page of items shown, the selection and
// the conflicts on screen. No DOM.

export const PAGE_SIZE = 50;
export const STATUSES = ["", "new", "hashing", "error", "conflict"];
export const STRATEGIES = ["override", "merge", "delete"];
export const NARROW = "(max-width: 700px)";
export const SHORT_HASH = 10;
export const CARD_TAG_LIMIT = 6;

/** A fresh state: every status, the first page, nothing selected, no conflict shown. */
export function createPendingState() {
  return {
    state: { status: "", offset: 0, total: 0, items: [], selected: new Set() },
    conflicts: new Map(), // pending id -> {existing, pending, choice}
    refreshTimer: null,
    stopped: false,
  };
}
