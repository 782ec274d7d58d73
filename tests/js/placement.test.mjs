// web/comfy/placement.js: freeSpot, where a node sent to the workflow lands (pure geometry;
// the wiring is tested in the real ComfyUI, tests/test_comfyui_sent_nodes.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { WEB } from "./cases.mjs";

const { freeSpot } = await import(new URL("comfy/placement.js", WEB));

const apart = (a, b, gap) =>
  a[0] + a[2] + gap <= b[0] || b[0] + b[2] + gap <= a[0] || a[1] + a[3] + gap <= b[1] || b[1] + b[3] + gap <= a[1];

test("an empty canvas: the start", () => {
  assert.deepEqual(freeSpot([], [100, 50], [10, 20]), [10, 20]);
});

test("a free start stays where it is", () => {
  assert.deepEqual(freeSpot([[500, 500, 100, 100]], [100, 50], [0, 0], { gap: 10 }), [0, 0]);
});

test("on top of a node: moved to its right", () => {
  assert.deepEqual(freeSpot([[0, 0, 300, 200]], [100, 50], [50, 50], { gap: 10 }), [310, 50]);
});

test("along y: moved below", () => {
  assert.deepEqual(freeSpot([[0, 0, 300, 200]], [100, 50], [50, 50], { axis: "y", gap: 10 }), [50, 210]);
});

test("a row of nodes: past all of them, apart from each", () => {
  const boxes = [
    [0, 0, 200, 100],
    [220, 30, 200, 300],
    [430, -50, 100, 100],
    [900, 0, 50, 50],
  ];
  const [x, y] = freeSpot(boxes, [150, 80], [10, 10], { gap: 20 });
  assert.deepEqual([x, y], [550, 10]);
  for (const box of boxes) assert.ok(apart([x, y, 150, 80], box, 20), `${box}`);
});

test("a gap too narrow is skipped", () => {
  const boxes = [
    [0, 0, 100, 100],
    [150, 0, 100, 100],
  ];
  assert.deepEqual(freeSpot(boxes, [100, 100], [0, 0], { gap: 30 }), [280, 0]);
});
