// The tag vocabulary, cached for filters and the tag editor's autocomplete.

import { get, post } from "./api.js";

let cache = null;

/** All tags ({id, name, color, model_count, ...}), fetched once unless `force`. */
export async function loadTags(force = false) {
  if (!cache || force) {
    cache = get("tags");
    cache.catch(() => {
      cache = null;
    });
  }
  return cache;
}

/** Create a tag with a color; returns it. A name taken already returns the existing tag. */
export async function createTag(name, color) {
  try {
    const tag = await post("tags", { name, color });
    cache = null;
    return tag;
  } catch (err) {
    if (err.status === 409) {
      const tags = await loadTags(true);
      const found = tags.find((tag) => tag.name.toLowerCase() === name.trim().toLowerCase());
      if (found) return found;
    }
    throw err;
  }
}

/** Forget the cache (after edits that create tags). */
export function invalidateTags() {
  cache = null;
}
