// web/comfy/shared/lora.js (the manager's card menu and the ComfyUI sidebar both copy its
// tag) against tests/cases/lora.json.
import assert from "node:assert/strict";
import { test } from "node:test";

import { WEB, cases } from "./cases.mjs";

const { fileStem, loraString } = await import(new URL("comfy/shared/lora.js", WEB));

for (const c of cases("lora").cases) {
  test(c.name, () => {
    assert.equal(loraString(c.model, c.weight), c.tag);
  });
}

test("the weight defaults to 1", () => {
  assert.equal(loraString({ path: "/m/loras/x.safetensors" }), "<lora:x:1>");
});

test("fileStem keeps inner dots and drops folders of either kind", () => {
  assert.equal(fileStem("a/b\\c.v1.2.safetensors"), "c.v1.2");
  assert.equal(fileStem(null), "");
});
