// Sizes and weights as both pages show them. Pure: no DOM, no side effects (node --test
// imports it as it is).

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** 1536 -> "1.5 KB"; `missing` for a size that is not a number. */
export function formatBytes(bytes, missing = "—") {
  if (bytes === null || bytes === undefined || bytes === "" || !Number.isFinite(Number(bytes))) {
    return missing;
  }
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

/** A weight for display and for <lora:NAME:WEIGHT>: at most 3 decimals, no trailing zeros. */
export function formatWeight(value) {
  const n = Number(value);
  if (value === null || value === undefined || value === "" || !Number.isFinite(n)) return "1";
  const rounded = Math.round(n * 1000) / 1000;
  return String(Object.is(rounded, -0) ? 0 : rounded);
}
