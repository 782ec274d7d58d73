// The HTTP API, as the UI uses it. Every URL is relative ("api/..."), so the UI works at
// "/" and mounted under a prefix ("/hikaze/"). Requests are same-origin (the browser sends
// Origin, which the server checks for state-changing methods). Errors come back as
// {"error", "detail"} and are thrown as ApiError.

import { t } from "./i18n.js";
import { queryString } from "../comfy/shared/listing.js";

export class ApiError extends Error {
  constructor(status, error, detail, body) {
    super(detail ? `${error}: ${detail}` : error);
    this.status = status;
    this.error = error;
    this.detail = detail;
    this.body = body;
  }
}


/** Fetch `api/<path>`; JSON in and out. Throws ApiError on any non-2xx answer. */
export async function request(method, path, { params, json, body, headers, signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  Object.assign(init.headers, headers || {});
  let response;
  try {
    response = await fetch(`api/${path}${queryString(params)}`, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, t("error.network"), t("error.networkDetail"), null);
  }
  const type = response.headers.get("Content-Type") || "";
  let data = null;
  if (type.includes("application/json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  } else if (!response.ok) {
    data = { error: response.statusText, detail: (await response.text()).slice(0, 300) };
  }
  if (!response.ok) {
    const error = (data && data.error) || `HTTP ${response.status}`;
    const detail = (data && data.detail) || "";
    throw new ApiError(response.status, error, detail, data);
  }
  return data;
}

export const get = (path, params, opts = {}) => request("GET", path, { ...opts, params });
export const post = (path, json, opts = {}) => request("POST", path, { ...opts, json });
export const patch = (path, json, opts = {}) => request("PATCH", path, { ...opts, json });
export const del = (path, params, opts = {}) => request("DELETE", path, { ...opts, params });

// Tiers are cached by the browser for days; when this page changes a model's images
// (upload, delete), later URLs carry a new "v" so a reused seq is never shown stale.
const imageVersions = new Map();

/** Note that a model's images changed: its image URLs change from now on. */
export function bumpImageVersion(sha256) {
  imageVersions.set(sha256, (imageVersions.get(sha256) || 0) + 1);
}

/** URL of a model's image in a quality tier. `name` is "<hash>_<seq>.webp". */
export function imageUrl(name, quality = "medium") {
  const version = imageVersions.get(String(name).slice(0, 64));
  const v = version ? `&v=${version}` : "";
  return `api/images/${encodeURIComponent(name)}?quality=${quality}${v}`;
}

/** URL of a pending model's n-th original image. */
export function pendingImageUrl(id, n = 0) {
  return `api/images/pending/${Number(id)}${n ? `?n=${Number(n)}` : ""}`;
}

/** Parse the seq out of "<hash>_<seq>.webp" (or "<hash>.webp": seq 0). */
export function seqOf(name) {
  const m = /^[0-9a-f]{64}(?:_(\d+))?\.webp$/.exec(name);
  return m ? Number(m[1] || 0) : null;
}

/** A facet of the library for filters: "type" or "base" -> [{value, count}] from
 * models/types or models/bases, most common first (a base not detected is "unknown"). */
export async function getFacet(key) {
  const rows = await get(`models/${key}s`);
  return rows.filter((row) => row[key]).map((row) => ({ value: row[key], count: row.count }));
}
