// A virtual list or grid over a paged listing: only the rows near the viewport are in the
// DOM (the container's padding stands for the rows above and below, so its scroll bar is
// true to the whole set), the pages those rows need are fetched by offset and cached, far
// pages are dropped. Rows have one height (measured on a rendered item); a CSS grid
// container gives the columns. The arithmetic is virtual.js.

import { columnsOf, farPages, pagesOf, rowCount, windowOf } from "./virtual.js";

const OVERSCAN = 600; // pixels rendered above and below the view
const KEEP_PAGES = 4; // cached pages kept on each side of the needed ones

/** The nearest ancestor of `el` that clips and scrolls vertically, or null (the document). */
function scrollerOf(el) {
  for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
    const overflow = getComputedStyle(node).overflowY;
    if (overflow === "auto" || overflow === "scroll") return node;
  }
  return null;
}

/** The part of the window that `scroller` (null: the document) shows, in viewport pixels. */
function viewportOf(scroller) {
  if (!scroller) return { top: 0, bottom: window.innerHeight };
  const box = scroller.getBoundingClientRect();
  return { top: Math.max(0, box.top), bottom: Math.min(window.innerHeight, box.bottom) };
}

/**
 * A virtual list in `container`. Options:
 * - pageSize; load(offset, limit, signal) -> {total, items};
 * - render(item, index) -> element; placeholder(index) -> element (an item not loaded yet);
 * - onLoad({total, error}) after each page (error: the exception, or null);
 * - afterRender() after the rendered items changed; onRemove(element) when one leaves;
 * - estimate: the row height until one is measured.
 * Elements carry data-index. Returns the list's operations.
 */
export function createVirtualList(options) {
  const { container, pageSize, load, render, placeholder } = options;
  const hooks = { onLoad: () => {}, afterRender: () => {}, onRemove: () => {}, ...options };
  const pages = new Map(); // page -> items
  const pending = new Map(); // page -> AbortController
  const rendered = new Map(); // index -> element
  const lay = { columns: 1, rowHeight: options.estimate || 100, gap: 0, measured: false, scroller: undefined };
  let total = null; // unknown until the first page answers
  let generation = 0;
  let frame = 0;
  let shown = { start: 0, end: 0 };

  container.style.setProperty("overflow-anchor", "none");

  function itemAt(index) {
    const page = pages.get(Math.floor(index / pageSize));
    return page ? page[index % pageSize] : undefined;
  }

  async function fetchPage(page) {
    if (pages.has(page) || pending.has(page)) return;
    const controller = new AbortController();
    pending.set(page, controller);
    const mine = generation;
    try {
      const data = await load(page * pageSize, pageSize, controller.signal);
      if (mine !== generation) return;
      pages.set(page, data.items || []);
      total = data.total;
      hooks.onLoad({ total, error: null });
    } catch (err) {
      if (mine !== generation || (err && err.name === "AbortError")) return;
      hooks.onLoad({ total, error: err });
    } finally {
      if (pending.get(page) === controller) pending.delete(page);
    }
    if (mine === generation) update();
  }

  /** Columns, gap and row height of the container as laid out now. */
  function measure() {
    const style = getComputedStyle(container);
    lay.columns = style.display.includes("grid") ? columnsOf(style.gridTemplateColumns) : 1;
    lay.gap = parseFloat(style.rowGap) || 0;
    const sample = [...rendered.values()].find((el) => !el.dataset.placeholder);
    if (sample && sample.offsetHeight > 0) {
      lay.rowHeight = sample.offsetHeight + lay.gap;
      lay.measured = true;
    }
    lay.scroller = scrollerOf(container);
  }

  /** The view in the container's coordinates (0: the top of its first row). */
  function view() {
    const box = container.getBoundingClientRect();
    const top = box.top + container.clientTop;
    const port = viewportOf(lay.scroller);
    return { top: port.top - top, bottom: port.bottom - top };
  }

  function removeAll() {
    for (const el of rendered.values()) {
      hooks.onRemove(el);
      el.remove();
    }
    rendered.clear();
    shown = { start: 0, end: 0 };
  }

  function build(index) {
    const item = itemAt(index);
    const el = item === undefined ? placeholder(index) : render(item, index);
    el.dataset.index = String(index);
    if (item === undefined) {
      el.dataset.placeholder = "true";
      el.style.setProperty("min-height", `${Math.max(0, lay.rowHeight - lay.gap)}px`);
    }
    return el;
  }

  /** Put `el` in place of `old`, keeping the focus if `old` had it. */
  function swap(old, el) {
    const focused = old.contains(document.activeElement);
    hooks.onRemove(old);
    old.replaceWith(el);
    if (focused) el.focus({ preventScroll: true });
  }

  /** Render the items of `win`, reusing those already in the DOM. */
  function draw(win) {
    for (const [index, el] of rendered) {
      if (index >= win.start && index < win.end) continue;
      hooks.onRemove(el);
      el.remove();
      rendered.delete(index);
    }
    let changed = shown.start !== win.start || shown.end !== win.end;
    const first = firstShown(win);
    const before = [];
    const after = [];
    for (let index = win.start; index < win.end; index += 1) {
      const old = rendered.get(index);
      if (old && !(old.dataset.placeholder && itemAt(index) !== undefined)) continue;
      const el = build(index);
      rendered.set(index, el);
      changed = true;
      if (old) swap(old, el);
      else if (index < first) before.push(el);
      else after.push(el);
    }
    if (before.length) container.prepend(...before);
    if (after.length) container.append(...after);
    shown = { start: win.start, end: win.end };
    container.style.setProperty("padding-top", `${win.padTop}px`);
    container.style.setProperty("padding-bottom", `${win.padBottom}px`);
    return changed;
  }

  function firstShown(win) {
    for (let index = win.start; index < win.end; index += 1) {
      const el = rendered.get(index);
      if (el && el.isConnected) return index;
    }
    return win.end;
  }

  /** Bring the DOM in line with the scroll position (and fetch the pages it needs). */
  function update() {
    frame = 0;
    if (!container.isConnected) return;
    if (total === null) {
      fetchPage(0);
      return;
    }
    if (!lay.measured || lay.scroller === undefined) measure();
    const { top, bottom } = view();
    const args = { total, columns: lay.columns, rowHeight: lay.rowHeight, gap: lay.gap, overscan: OVERSCAN };
    let win = windowOf({ ...args, viewTop: top, viewBottom: bottom });
    let changed = draw(win);
    if (!lay.measured && rendered.size) {
      measure();
      if (lay.measured) {
        win = windowOf({ ...args, rowHeight: lay.rowHeight, columns: lay.columns, viewTop: top, viewBottom: bottom });
        changed = draw(win) || changed;
      }
    }
    const needed = pagesOf(win.start, win.end, pageSize);
    for (const page of farPages(pages.keys(), needed, KEEP_PAGES)) pages.delete(page);
    for (const [page, controller] of pending) {
      if (!needed.includes(page)) {
        controller.abort();
        pending.delete(page);
      }
    }
    for (const page of needed) fetchPage(page);
    if (changed) hooks.afterRender();
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(update);
  }

  /** Forget the pages (and, unless `keepTotal`, the count) and load again. */
  function reset({ keepTotal = false } = {}) {
    generation += 1;
    for (const controller of pending.values()) controller.abort();
    pending.clear();
    pages.clear();
    removeAll();
    if (!keepTotal) {
      total = null;
      container.style.setProperty("padding-top", "0px");
      container.style.setProperty("padding-bottom", "0px");
    }
    lay.measured = false;
    lay.scroller = undefined;
    update();
  }

  /** Scroll so the item at `index` is in view; its element (a placeholder until loaded). */
  function reveal(index) {
    if (total === null || index < 0 || index >= total) return null;
    if (!rendered.has(index)) {
      const row = Math.floor(index / lay.columns);
      const { top, bottom } = view();
      const y = row * lay.rowHeight;
      const delta = y < top ? y - top : y + lay.rowHeight - bottom;
      if (lay.scroller) lay.scroller.scrollTop += delta;
      else window.scrollBy(0, delta);
    }
    update();
    const el = rendered.get(index);
    if (el) el.scrollIntoView({ block: "nearest" });
    return el || null;
  }

  const onScroll = () => schedule();
  const onResize = () => {
    lay.measured = false;
    lay.scroller = undefined;
    schedule();
  };
  document.addEventListener("scroll", onScroll, { capture: true, passive: true });
  window.addEventListener("resize", onResize);
  // Only a new width changes the columns (the height changes with the padding as it scrolls).
  let width = -1;
  const resizer = window.ResizeObserver
    ? new ResizeObserver((entries) => {
        const now = entries[entries.length - 1].contentRect.width;
        if (now !== width) {
          width = now;
          onResize();
        }
      })
    : null;
  if (resizer) resizer.observe(container);

  return {
    get total() {
      return total;
    },
    get columns() {
      return lay.columns;
    },
    /** Rows of the view (PageUp/PageDown). */
    get viewRows() {
      const { top, bottom } = view();
      const port = Math.max(0, Math.min(bottom, rowCount(total || 0, lay.columns) * lay.rowHeight) - Math.max(0, top));
      return Math.max(1, Math.floor(port / lay.rowHeight));
    },
    itemAt,
    elementAt: (index) => rendered.get(index) || null,
    /** The index of the first cached item passing `test`, or -1. */
    findIndex(test) {
      for (const [page, items] of pages) {
        const at = items.findIndex(test);
        if (at >= 0) return page * pageSize + at;
      }
      return -1;
    },
    /** Put `item` at `index` of its cached page and redraw it if rendered. */
    setItem(index, item) {
      const page = pages.get(Math.floor(index / pageSize));
      if (page) page[index % pageSize] = item;
      const old = rendered.get(index);
      if (old) {
        const el = build(index);
        rendered.set(index, el);
        swap(old, el);
        hooks.afterRender();
      }
    },
    /** Build every rendered element again (a display setting changed). */
    redraw() {
      for (const [index, old] of rendered) {
        const el = build(index);
        rendered.set(index, el);
        swap(old, el);
      }
      hooks.afterRender();
    },
    reset,
    reveal,
    update,
    rendered: () => [...rendered.values()],
    destroy() {
      generation += 1;
      for (const controller of pending.values()) controller.abort();
      document.removeEventListener("scroll", onScroll, { capture: true });
      window.removeEventListener("resize", onResize);
      if (resizer) resizer.disconnect();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
