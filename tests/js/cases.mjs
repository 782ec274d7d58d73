// The case tables of tests/cases/, shared with the Python tests (tests/test_js_units.py).
import { readFileSync } from "node:fs";

export const WEB = new URL("../../hikaze_mm/web/", import.meta.url);

/** tests/cases/<name>.json, parsed. */
export function cases(name) {
  return JSON.parse(readFileSync(new URL(`../cases/${name}.json`, import.meta.url), "utf8"));
}

/** A case's payload as text: raw text stays, JSON values are written with JSON.stringify. */
export function payloadText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}
