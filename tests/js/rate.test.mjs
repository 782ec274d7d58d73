// web/js/pages/migration/rate.js (Stage 2's speed and time left) against tests/cases/rate.json.
import assert from "node:assert/strict";
import { test } from "node:test";

import { WEB, cases } from "./cases.mjs";

const { RateWindow, sampleOf } = await import(new URL("js/pages/migration/rate.js", WEB));
const table = cases("rate");

function assertEstimate(got, expected) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort());
  for (const [key, value] of Object.entries(expected)) {
    if (typeof value === "number") assert.ok(Math.abs(got[key] - value) < 1e-9, `${key}: ${got[key]} != ${value}`);
    else assert.equal(got[key], value, key);
  }
}

for (const c of table.sample_of) {
  test(`sampleOf: ${c.name}`, () => {
    assert.deepEqual(sampleOf(c.status, c.fallback), c.sample);
  });
}

for (const c of table.estimates) {
  test(`estimate: ${c.name}`, () => {
    const window = new RateWindow();
    for (const sample of c.samples) window.add(sample);
    assertEstimate(window.estimate(), c.estimate);
  });
}

test(`window: ${table.window.name}`, () => {
  const window = new RateWindow();
  for (let t = 0; t <= 12_000; t += 1000) {
    const bytes = t <= 6000 ? (10 * t) / 1000 : 60 + (30 * (t - 6000)) / 1000;
    const items = t / 1000;
    window.add({ t, bytes, totalBytes: 10_000, items, finished: items, totalItems: 100, largestLeft: 1 });
  }
  assertEstimate(window.estimate(), table.window.estimate);
});

test("reset forgets the samples", () => {
  const window = new RateWindow({ minSamples: 1, minSpanMs: 0 });
  window.add({ t: 0, bytes: 0, totalBytes: 10, items: 0, finished: 0, totalItems: 1, largestLeft: 0 });
  window.reset();
  assert.equal(window.estimate().basis, null);
});
