// web/comfy/shared/downloads.js: a download's progress in words.
import assert from "node:assert/strict";
import { test } from "node:test";

import { WEB } from "./cases.mjs";

const { downloadName, formatEta, fractionDone, progressLine } = await import(
  new URL("comfy/shared/downloads.js", WEB)
);

test("the name is the file's, else the source's last part", () => {
  assert.equal(downloadName({ file_name: "a.safetensors", source: "civitai:1" }), "a.safetensors");
  assert.equal(downloadName({ file_name: null, source: "https://x.test/m/b.ckpt?x=1" }), "b.ckpt");
  assert.equal(downloadName({ file_name: null, source: "civitai:12" }), "civitai:12");
});

test("times left read as seconds, minutes, hours", () => {
  assert.equal(formatEta(null), "");
  assert.equal(formatEta(44.6), "45 s");
  assert.equal(formatEta(200), "3 min 20 s");
  assert.equal(formatEta(7260), "2 h 1 min");
});

test("a running download says how far, how fast and how long", () => {
  const view = { status: "running", bytes_done: 512, bytes_total: 2048, speed: 1024, eta_s: 1.5 };
  assert.equal(fractionDone(view), 0.25);
  assert.equal(progressLine(view), "25% of 2.0 KB, 1.0 KB/s, 2 s left");
  assert.equal(progressLine({ status: "running", bytes_done: 2048, bytes_total: null }), "2.0 KB");
});

test("other statuses say what happened", () => {
  assert.equal(progressLine({ status: "failed", error: "SHA-256 mismatch" }), "SHA-256 mismatch");
  assert.equal(progressLine({ status: "done", path: "/m/loras/a.safetensors" }), "/m/loras/a.safetensors");
  assert.equal(progressLine({ status: "queued" }), "waiting for its turn");
  assert.equal(fractionDone({ status: "done", bytes_total: null }), 1);
});
