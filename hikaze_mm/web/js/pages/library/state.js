// The library page's state: the filters (some remembered in the browser), the list's count
// and state, and the listing query they make. No DOM.

import { listingParams } from "../../../comfy/shared/listing.js";
import { nsfwMode } from "../../components/nsfw.js";

export const PAGE_SIZE = 100;
export const NSFW = "nsfw";
export const UNKNOWN = "unknown";
export const SORTS = ["name", "created_at", "last_used_at", "size_bytes"];
const STORE_KEY = "hikaze.library.view";

function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

function savePrefs(prefs) {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(prefs));
  } catch {
    // Private mode: preferences are simply not remembered.
  }
}

/** The filters (from the remembered preferences) and an empty list. */
export function createLibraryState() {
  const prefs = loadPrefs();
  const state = {
    type: "",
    q: "",
    base: "",
    folder: "",
    recent: false,
    update: false, // only the models with an update available
    sort: SORTS.includes(prefs.sort) ? prefs.sort : "name",
    order: prefs.order === "desc" ? "desc" : "asc",
    view: prefs.view === "list" ? "list" : "grid",
    includeMissing: prefs.includeMissing !== false,
    tagStates: new Map([[NSFW, "exclude"]]),
    nsfw: nsfwMode(),
  };
  // The listing's count; its items are in the virtual grid's pages (query.js).
  const list = { total: 0, loading: false, error: null };
  return { state, list };
}

/** Remember the sort, order, view and missing-models choice. */
export function rememberView(state) {
  savePrefs({ sort: state.sort, order: state.order, view: state.view, includeMissing: state.includeMissing });
}

/** The GET models parameters of these filters, from `offset`. */
export function queryParams(state, offset) {
  const include = [];
  const exclude = [];
  for (const [name, st] of state.tagStates) (st === "include" ? include : exclude).push(name);
  const { type, base, folder, q, sort, order, recent, update, includeMissing } = state;
  const filters = { type, base, folder, q, sort, order, recent, update, includeMissing };
  return listingParams({ ...filters, tags: include, excludeTags: exclude }, offset, PAGE_SIZE);
}

/** How many filters differ from the defaults (the count on the Filters button). */
export function activeFilterCount(state) {
  let n = 0;
  if (state.base) n += 1;
  if (state.folder) n += 1;
  if (!state.includeMissing) n += 1;
  if (state.update) n += 1;
  for (const [name, st] of state.tagStates) if (!(name === NSFW && st === "exclude")) n += 1;
  return n;
}
