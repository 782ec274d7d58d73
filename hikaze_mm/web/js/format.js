// Number, size, date and duration formatting for display.

import { formatBytes } from "../comfy/shared/format.js";
import { t } from "./i18n.js";

export function formatNumber(n) {
  return Number(n || 0).toLocaleString();
}

/** Milliseconds (or seconds, if small) since the epoch -> local date and time. */
export function formatDate(ms) {
  if (!ms) return "—";
  const value = Number(ms) < 1e11 ? Number(ms) * 1000 : Number(ms);
  return new Date(value).toLocaleString();
}

/** Seconds -> "1h 02m", "3m 05s", "12s". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return "—";
  }
  const s = Math.round(seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  if (hours) return t("format.hm", { h: hours, m: String(minutes).padStart(2, "0") });
  if (minutes) return t("format.ms", { m: minutes, s: String(secs).padStart(2, "0") });
  return t("format.s", { s: secs });
}

/** Bytes per second -> "120 MB/s". */
export function formatSpeed(bytesPerSecond) {
  if (!bytesPerSecond || !Number.isFinite(bytesPerSecond)) return "—";
  return `${formatBytes(bytesPerSecond)}/s`;
}
