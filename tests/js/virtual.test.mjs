// web/comfy/shared/virtual.js: the window of a virtual grid, its pages, and keyboard moves.
import assert from "node:assert/strict";
import { test } from "node:test";

import { WEB } from "./cases.mjs";

const { columnsOf, farPages, moveIndex, pagesOf, rowCount, windowOf } = await import(
  new URL("comfy/shared/virtual.js", WEB)
);

test("rowCount: partial last row, empty set", () => {
  assert.equal(rowCount(20000, 6), 3334);
  assert.equal(rowCount(12, 6), 2);
  assert.equal(rowCount(0, 6), 0);
  assert.equal(rowCount(5, 0), 5);
});

test("windowOf: the top of a grid renders the rows in view plus the overscan", () => {
  const win = windowOf({ total: 20000, columns: 6, rowHeight: 100, gap: 10, viewTop: 0, viewBottom: 900, overscan: 200 });
  assert.deepEqual(win, { start: 0, end: 66, padTop: 0, padBottom: (3334 - 11) * 100, height: 3334 * 100 - 10 });
});

test("windowOf: deep in the set the spacers add up to the whole height", () => {
  const args = { total: 20000, columns: 6, rowHeight: 100, gap: 10, overscan: 200 };
  const win = windowOf({ ...args, viewTop: 250000, viewBottom: 250900 });
  assert.equal(win.start, 2498 * 6);
  assert.equal(win.end, 2511 * 6);
  assert.equal(win.padTop + ((win.end - win.start) / 6) * 100 + win.padBottom, 3334 * 100);
  assert.equal(win.height, 3334 * 100 - 10);
});

test("windowOf: the end clamps to the last (partial) row", () => {
  const win = windowOf({ total: 20000, columns: 6, rowHeight: 100, viewTop: 333000, viewBottom: 334500, overscan: 0 });
  assert.equal(win.end, 20000);
  assert.equal(win.padBottom, 0);
  assert.equal(win.start, 3330 * 6);
});

test("windowOf: a view above the list or an empty set", () => {
  const above = windowOf({ total: 50, columns: 1, rowHeight: 58, viewTop: -900, viewBottom: -100, overscan: 0 });
  assert.deepEqual([above.start, above.end, above.padTop], [0, 1, 0]);
  assert.deepEqual(windowOf({ total: 0, columns: 4, rowHeight: 50, viewTop: 0, viewBottom: 500 }), {
    start: 0,
    end: 0,
    padTop: 0,
    padBottom: 0,
    height: 0,
  });
});

test("pagesOf and farPages", () => {
  assert.deepEqual(pagesOf(95, 160, 100), [0, 1]);
  assert.deepEqual(pagesOf(100, 200, 100), [1]);
  assert.deepEqual(pagesOf(5, 5, 100), []);
  assert.deepEqual(farPages([0, 1, 5, 9, 10, 40], [9, 10], 4), [0, 1, 40]);
  assert.deepEqual(farPages([3, 4], [], 4), [3, 4]);
});

test("moveIndex: arrows, pages, ends over the whole set", () => {
  const grid = { columns: 6, total: 20000, pageRows: 3 };
  assert.equal(moveIndex(0, "ArrowLeft", grid), null);
  assert.equal(moveIndex(0, "ArrowRight", grid), 1);
  assert.equal(moveIndex(99, "ArrowRight", grid), 100);
  assert.equal(moveIndex(96, "ArrowDown", grid), 102);
  assert.equal(moveIndex(3, "ArrowUp", grid), null);
  assert.equal(moveIndex(10, "ArrowUp", grid), 4);
  assert.equal(moveIndex(0, "PageDown", grid), 18);
  assert.equal(moveIndex(19999, "PageDown", grid), 19999);
  assert.equal(moveIndex(5, "PageUp", grid), 0);
  assert.equal(moveIndex(7, "End", grid), 19999);
  assert.equal(moveIndex(19999, "Home", grid), 0);
  assert.equal(moveIndex(19999, "ArrowRight", grid), null);
  assert.equal(moveIndex(0, "x", grid), null);
  // The row above the last, partial one: down goes to the last item; the last row stays.
  assert.equal(moveIndex(19993, "ArrowDown", grid), 19999);
  assert.equal(moveIndex(19998, "ArrowDown", grid), null);
  assert.equal(moveIndex(0, "End", { columns: 6, total: 0 }), null);
});

test("columnsOf: a computed grid template", () => {
  assert.equal(columnsOf("200px 200px 200.5px"), 3);
  assert.equal(columnsOf("none"), 1);
  assert.equal(columnsOf(""), 1);
});
