// A download's progress as words, shared by the manager's Downloads page and ComfyUI's
// download toasts. Pure: no DOM, no side effects.

import { formatBytes } from "./format.js";

export const OVER = new Set(["done", "failed", "cancelled"]);
export const ACTIVE = new Set(["queued", "running", "verifying"]);

/** The file a download saves (its name, else the last part of its source). */
export function downloadName(view) {
  if (view.file_name) return view.file_name;
  const source = String(view.source || "");
  if (!source.includes("://")) return source;
  const tail = source.split(/[?#]/)[0].split("/").filter(Boolean);
  return tail.length ? tail[tail.length - 1] : source;
}

/** "3 min 20 s", "45 s", or "" for an unknown time. */
export function formatEta(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The fraction done (0..1), or null when the size is unknown. */
export function fractionDone(view) {
  if (!view.bytes_total) return view.status === "done" ? 1 : null;
  return Math.min(1, (view.bytes_done || 0) / view.bytes_total);
}

/** "45% of 1.2 GiB, 3.4 MiB/s, 30 s left" (the parts known), or the status's words. */
export function progressLine(view) {
  if (view.status === "queued") return "waiting for its turn";
  if (view.status === "paused") return `paused at ${formatBytes(view.bytes_done || 0)}`;
  if (view.status === "verifying") return "verifying the SHA-256";
  if (view.status === "done") return view.path || "done";
  if (view.status === "failed") return view.error || "failed";
  if (view.status === "cancelled") return "cancelled";
  const parts = [];
  const fraction = fractionDone(view);
  if (fraction !== null) parts.push(`${Math.floor(fraction * 100)}% of ${formatBytes(view.bytes_total)}`);
  else parts.push(formatBytes(view.bytes_done || 0));
  if (view.speed) parts.push(`${formatBytes(view.speed)}/s`);
  const eta = formatEta(view.eta_s);
  if (eta) parts.push(`${eta} left`);
  return parts.join(", ");
}
