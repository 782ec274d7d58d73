// The library's HTTP API as seen from inside ComfyUI. Our routes live on a sub-app at
// /hikaze/ (not mirrored under /api), so every URL goes through api.fileURL, which adds
// ComfyUI's base path when it is served under a prefix. Errors are {"error", "detail"} and
// come back as HikazeApiError. A module without side effects (ComfyUI loads every .js file
// of the extension folder as an extension; this one only exports).

import { api } from "../../scripts/api.js";
import { queryString } from "./shared/listing.js";

export const PREFIX = "/hikaze";

export class HikazeApiError extends Error {
  constructor(status, error, detail) {
    super(detail ? `${error}: ${detail}` : error);
    this.name = "HikazeApiError";
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}


/** The URL of an API path ("models", "models/types"...) with its query. */
export function apiUrl(path, params) {
  return api.fileURL(`${PREFIX}/api/${path}${queryString(params)}`);
}

/** The URL of a model image ("<sha>_<seq>.webp") in a quality tier. */
export function imageUrl(name, quality = "low") {
  return api.fileURL(`${PREFIX}/api/images/${encodeURIComponent(name)}?quality=${quality}`);
}

/** The full manager, optionally on one model's details. */
export function managerUrl(sha256) {
  return api.fileURL(`${PREFIX}/${sha256 ? `#/library/${sha256}` : ""}`);
}

/** A JSON request to the library; the parsed answer, or HikazeApiError. */
export async function request(method, path, { params, json, signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(apiUrl(path, params), init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new HikazeApiError(0, "Network error", "the ComfyUI server did not answer");
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("application/json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new HikazeApiError(
      response.status,
      (data && data.error) || `HTTP ${response.status}`,
      (data && data.detail) || "",
    );
  }
  return data;
}

export const getJson = (path, params, opts = {}) => request("GET", path, { ...opts, params });

/** A facet for filters: "types" or "bases" -> [{value, count}], most common first. */
export async function getFacet(name) {
  const key = name === "types" ? "type" : "base";
  const rows = await getJson(`models/${name}`);
  return (rows || []).filter((row) => row[key]).map((row) => ({ value: row[key], count: row.count }));
}

// ------------------------------------------------------------------ one model, cached
// Nodes ask for the same few models again and again (every redraw of a loaded workflow):
// each answer is kept until the library changes (a scan ends) or the cache is cleared.
const models = new Map(); // sha256 -> Promise<{state, model?, detail?}>

/**
 * The library's record of one model: {state: "ok", model} (model.missing says whether its
 * file is gone), {state: "absent"} (404: not in the library), or {state: "error", detail}.
 */
export function lookupModel(sha256) {
  const key = String(sha256 || "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(key)) return Promise.resolve({ state: "absent" });
  let pending = models.get(key);
  if (!pending) {
    pending = getJson(`models/${key}`).then(
      (model) => ({ state: "ok", model }),
      (err) => {
        models.delete(key); // an error is not remembered: the next look asks again
        if (err.status === 404) {
          models.set(key, Promise.resolve({ state: "absent" }));
          return { state: "absent" };
        }
        return { state: "error", detail: err.detail || err.message };
      },
    );
    models.set(key, pending);
  }
  return pending;
}

/** Forget every looked-up model (after a scan, or when a model was edited). */
export function forgetModels() {
  models.clear();
}
