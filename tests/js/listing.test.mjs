// web/comfy/shared/listing.js against tests/cases/listing.json (the Python parser reads the
// queries built here in tests/test_js_units.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { WEB, cases } from "./cases.mjs";

const { listingParams, queryString } = await import(new URL("comfy/shared/listing.js", WEB));

for (const c of cases("listing").cases) {
  test(c.name, () => {
    assert.equal(queryString(listingParams(c.filters, c.offset, c.limit)), c.query);
  });
}

test("queryString leaves out empty values and joins lists", () => {
  assert.equal(queryString({ a: "", b: null, c: undefined, d: [], e: ["x", "", "y"], f: 0 }), "?e=x%2Cy&f=0");
  assert.equal(queryString({}), "");
  assert.equal(queryString(undefined), "");
});
