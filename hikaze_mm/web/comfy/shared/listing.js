// The query of GET api/models (hikaze_mm/library/queries.py parses it), built the same way
// by the manager's library page and the ComfyUI extension's browser. Pure: no DOM, no side
// effects; tests/cases/listing.json holds the cases that both this module and the Python
// parser are tested with.

/**
 * The listing parameters for these filters. `recent` lists the models used at least once,
 * the latest first (it overrides sort and order); `update` lists the models with a newer
 * version on Civitai (update=available); tag lists become comma-separated values.
 */
export function listingParams(filters = {}, offset = 0, limit = 50) {
  const recent = Boolean(filters.recent);
  return {
    type: filters.type || "",
    base: filters.base || "",
    folder: filters.folder || "",
    q: String(filters.q || "").trim(),
    tags: [filters.tags || []].flat(),
    exclude_tags: [filters.excludeTags || []].flat(),
    sort: recent ? "last_used_at" : filters.sort || "name",
    order: recent ? "desc" : filters.order || "",
    used: recent ? "true" : "",
    update: filters.update ? "available" : "",
    include_missing: filters.includeMissing === undefined ? "" : String(Boolean(filters.includeMissing)),
    offset,
    limit,
  };
}

/** "?a=1&b=x%2Cy" from parameters: empty values and empty lists left out, lists joined by ",". */
export function queryString(params) {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) {
      const parts = value.filter((part) => part !== null && part !== undefined && part !== "");
      if (parts.length) qs.set(key, parts.join(","));
    } else {
      qs.set(key, String(value));
    }
  }
  const text = qs.toString();
  return text ? `?${text}` : "";
}
