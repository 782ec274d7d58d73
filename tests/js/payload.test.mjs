// web/comfy/payload.js against tests/cases/payload.json (hikaze_mm/workflow/payload.py reads
// the same cases in tests/test_js_units.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { WEB, cases, payloadText } from "./cases.mjs";

const { parseLoras, parseSingle } = await import(new URL("comfy/payload.js", WEB));
const table = cases("payload");

const forJs = (c) => ({ ...c, ...(c.js || {}) });

for (const c of table.single.map(forJs)) {
  test(`single: ${c.name}`, () => {
    const got = parseSingle(payloadText(c.payload));
    if (c.empty) assert.equal(got, null);
    else if (c.error) assert.match(got.error, new RegExp(c.error.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    else assert.deepEqual(got, c.ref);
  });
}

for (const c of table.loras.map(forJs)) {
  test(`loras: ${c.name}`, () => {
    const got = parseLoras(payloadText(c.payload));
    if (c.error) {
      assert.ok(got.error && got.error.includes(c.error), `${got.error} does not say ${c.error}`);
      assert.deepEqual(got.loras, []);
      return;
    }
    assert.equal(got.error, undefined);
    const entries = got.loras.map((e) => ({
      sha256: e.sha256 ?? null,
      name: e.name ?? null,
      path: e.full_path ?? null,
      strength_model: e.strength_model,
      strength_clip: e.strength_clip,
      enabled: e.enabled,
    }));
    assert.deepEqual(entries, c.empty ? [] : c.loras);
  });
}
