// A virtual list or grid over a paged listing: only the rows near the viewport are in the
// DOM (the container's padding stands for the rows above and below, so its scroll bar is
// true to the whole set), the pages those rows need are fetched by offset and cached, far
// pages are dropped. Rows have one height (measured on a rendered item); a CSS grid
// container gives the columns. The arithmetic is virtual.js.

import { columnsOf, farPages, pagesOf, rowCount, windowOf } from "./virtual.js";

const OVERSCAN = 600; // pixels rendered above and below the view at least (else its height)
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

/** The DOM half: the rendered elements (index -> element) and their spacers. */
class Rows {
  constructor(container, lay, itemAt, options) {
    Object.assign(this, { container, lay, itemAt, options });
    this.rendered = new Map();
    this.shown = { start: 0, end: 0 };
  }

  build(index) {
    const item = this.itemAt(index);
    const el = item === undefined ? this.options.placeholder(index) : this.options.render(item, index);
    el.dataset.index = String(index);
    if (item === undefined) {
      el.dataset.placeholder = "true";
      el.style.setProperty("min-height", `${Math.max(0, this.lay.rowHeight - this.lay.gap)}px`);
    }
    return el;
  }

  /** Put a new element for `index` in place of the old one, keeping the focus it had. */
  rebuild(index) {
    const old = this.rendered.get(index);
    const el = this.build(index);
    this.rendered.set(index, el);
    const focused = old.contains(document.activeElement);
    this.options.onRemove(old);
    old.replaceWith(el);
    if (focused) el.focus({ preventScroll: true });
  }

  remove(index) {
    const el = this.rendered.get(index);
    this.options.onRemove(el);
    el.remove();
    this.rendered.delete(index);
  }

  clear() {
    for (const index of [...this.rendered.keys()]) this.remove(index);
    this.shown = { start: 0, end: 0 };
  }

  /** Render the items of `win`, reusing those in the DOM; whether anything changed. */
  draw(win) {
    for (const index of [...this.rendered.keys()]) if (index < win.start || index >= win.end) this.remove(index);
    let changed = this.shown.start !== win.start || this.shown.end !== win.end;
    let first = win.end; // the first index still in the DOM
    for (let index = win.start; index < win.end && first === win.end; index += 1) if (this.rendered.has(index)) first = index;
    const before = [];
    const after = [];
    for (let index = win.start; index < win.end; index += 1) {
      const old = this.rendered.get(index);
      if (old && !(old.dataset.placeholder && this.itemAt(index) !== undefined)) continue;
      changed = true;
      if (old) {
        this.rebuild(index);
        continue;
      }
      const el = this.build(index);
      this.rendered.set(index, el);
      (index < first ? before : after).push(el);
    }
    if (before.length) this.container.prepend(...before);
    if (after.length) this.container.append(...after);
    this.shown = { start: win.start, end: win.end };
    this.container.style.setProperty("padding-top", `${win.padTop}px`);
    this.container.style.setProperty("padding-bottom", `${win.padBottom}px`);
    return changed;
  }
}

/**
 * A virtual list in `container`. Options:
 * - pageSize; load(offset, limit, signal) -> {total, items};
 * - render(item, index) -> element; placeholder(index) -> element (an item not loaded yet);
 * - onLoad({total, error}) after each page (error: the exception, or null);
 * - afterRender() after the rendered items changed; onRemove(element) when one leaves;
 * - estimate: the row height until one is measured.
 * Elements carry data-index.
 */
export class VirtualList {
  constructor(options) {
    this.options = { onLoad: () => {}, afterRender: () => {}, onRemove: () => {}, ...options };
    const { container, pageSize, estimate } = options;
    Object.assign(this, { container, pageSize });
    this.pages = new Map(); // page -> items
    this.pending = new Map(); // page -> AbortController
    this.lay = { columns: 1, rowHeight: estimate || 100, gap: 0, measured: false, scroller: undefined };
    this.total = null; // unknown until the first page answers
    this.generation = 0;
    this.frame = 0;
    this.rows = new Rows(container, this.lay, (index) => this.itemAt(index), this.options);
    container.style.setProperty("overflow-anchor", "none");
    this.listen();
  }

  listen() {
    this.onScroll = () => this.schedule();
    this.onResize = () => {
      this.lay.measured = false;
      this.lay.scroller = undefined;
      this.schedule();
    };
    document.addEventListener("scroll", this.onScroll, { capture: true, passive: true });
    window.addEventListener("resize", this.onResize);
    // Only a new width changes the columns (the height changes with the padding as it scrolls).
    let width = -1;
    this.resizer = window.ResizeObserver
      ? new ResizeObserver((entries) => {
          const now = entries[entries.length - 1].contentRect.width;
          if (now !== width) {
            width = now;
            this.onResize();
          }
        })
      : null;
    if (this.resizer) this.resizer.observe(this.container);
  }

  get columns() {
    return this.lay.columns;
  }

  /** Rows of the view (PageUp/PageDown). */
  get viewRows() {
    const { top, bottom } = this.view();
    const end = Math.min(bottom, rowCount(this.total || 0, this.lay.columns) * this.lay.rowHeight);
    return Math.max(1, Math.floor(Math.max(0, end - Math.max(0, top)) / this.lay.rowHeight));
  }

  itemAt(index) {
    const page = this.pages.get(Math.floor(index / this.pageSize));
    return page ? page[index % this.pageSize] : undefined;
  }

  elementAt(index) {
    return this.rows.rendered.get(index) || null;
  }

  rendered() {
    return [...this.rows.rendered.values()];
  }

  /** The index of the first cached item passing `test`, or -1. */
  findIndex(test) {
    for (const [page, items] of this.pages) {
      const at = items.findIndex(test);
      if (at >= 0) return page * this.pageSize + at;
    }
    return -1;
  }

  /** Put `item` at `index` of its cached page and redraw it if rendered. */
  setItem(index, item) {
    const page = this.pages.get(Math.floor(index / this.pageSize));
    if (page) page[index % this.pageSize] = item;
    if (this.rows.rendered.has(index)) {
      this.rows.rebuild(index);
      this.options.afterRender();
    }
  }

  /** Build every rendered element again (a display setting changed). */
  redraw() {
    for (const index of [...this.rows.rendered.keys()]) this.rows.rebuild(index);
    this.options.afterRender();
  }

  async fetchPage(page) {
    if (this.pages.has(page) || this.pending.has(page)) return;
    const controller = new AbortController();
    this.pending.set(page, controller);
    const mine = this.generation;
    try {
      const data = await this.options.load(page * this.pageSize, this.pageSize, controller.signal);
      if (mine !== this.generation) return;
      this.pages.set(page, data.items || []);
      this.total = data.total;
      this.options.onLoad({ total: this.total, error: null });
    } catch (err) {
      // No update() after a failure: it would ask for the same page again at once, and
      // again, while the server fails. The error's Retry resets the list.
      if (mine !== this.generation || (err && err.name === "AbortError")) return;
      this.options.onLoad({ total: this.total, error: err });
      return;
    } finally {
      if (this.pending.get(page) === controller) this.pending.delete(page);
    }
    if (mine === this.generation) this.update();
  }

  /** Columns, gap and row height of the container as laid out now. */
  measure() {
    const style = getComputedStyle(this.container);
    const lay = this.lay;
    lay.columns = style.display.includes("grid") ? columnsOf(style.gridTemplateColumns) : 1;
    lay.gap = parseFloat(style.rowGap) || 0;
    const sample = this.rendered().find((el) => !el.dataset.placeholder);
    // The exact height (offsetHeight rounds it: 20,000 rows would add up the rounding).
    const height = sample ? sample.getBoundingClientRect().height : 0;
    if (height > 0) {
      lay.rowHeight = height + lay.gap;
      lay.measured = true;
    }
    lay.scroller = scrollerOf(this.container);
  }

  /** The view in the container's coordinates (0: the top of its first row). */
  view() {
    const box = this.container.getBoundingClientRect();
    const top = box.top + this.container.clientTop;
    const port = viewportOf(this.lay.scroller);
    return { top: port.top - top, bottom: port.bottom - top };
  }

  /** The items to render for a view: the view's rows and as many again above and below. */
  windowFor({ top, bottom }) {
    const { columns, rowHeight, gap } = this.lay;
    const overscan = Math.max(OVERSCAN, bottom - top);
    return windowOf({ total: this.total, columns, rowHeight, gap, overscan, viewTop: top, viewBottom: bottom });
  }

  /** Bring the DOM in line with the scroll position (and fetch the pages it needs). */
  update() {
    this.frame = 0;
    if (!this.container.isConnected) return;
    if (this.total === null) {
      this.fetchPage(0);
      return;
    }
    if (!this.lay.measured || this.lay.scroller === undefined) this.measure();
    const view = this.view();
    let win = this.windowFor(view);
    let changed = this.rows.draw(win);
    if (!this.lay.measured && this.rows.rendered.size) {
      this.measure();
      if (this.lay.measured) {
        win = this.windowFor(view);
        changed = this.rows.draw(win) || changed;
      }
    }
    const needed = pagesOf(win.start, win.end, this.pageSize);
    for (const page of farPages(this.pages.keys(), needed, KEEP_PAGES)) this.pages.delete(page);
    for (const [page, controller] of this.pending) {
      if (needed.includes(page)) continue;
      controller.abort();
      this.pending.delete(page);
    }
    for (const page of needed) this.fetchPage(page);
    if (changed) this.options.afterRender();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.update());
  }

  /** Forget the pages (and, unless `keepTotal`, the count) and load again. */
  reset({ keepTotal = false } = {}) {
    this.generation += 1;
    for (const controller of this.pending.values()) controller.abort();
    this.pending.clear();
    this.pages.clear();
    this.rows.clear();
    if (!keepTotal) {
      this.total = null;
      this.container.style.setProperty("padding-top", "0px");
      this.container.style.setProperty("padding-bottom", "0px");
    }
    this.lay.measured = false;
    this.lay.scroller = undefined;
    this.update();
  }

  /** Load the cached pages again (items changed under the list) and swap them in once
   * they have all arrived: until then the rows stay as they are, never blank. */
  async refresh() {
    this.generation += 1;
    for (const controller of this.pending.values()) controller.abort();
    this.pending.clear();
    const mine = this.generation;
    const pages = [...this.pages.keys()];
    if (!pages.length) {
      this.update();
      return;
    }
    const controller = new AbortController();
    let answers;
    try {
      answers = await Promise.all(
        pages.map((page) => this.options.load(page * this.pageSize, this.pageSize, controller.signal)),
      );
    } catch (err) {
      if (mine !== this.generation || (err && err.name === "AbortError")) return;
      this.options.onLoad({ total: this.total, error: err });
      return;
    }
    if (mine !== this.generation) return;
    this.pages.clear();
    pages.forEach((page, i) => this.pages.set(page, answers[i].items || []));
    this.total = answers[answers.length - 1].total;
    this.options.onLoad({ total: this.total, error: null });
    this.update(); // rows past a smaller total go, new ones come
    this.redraw(); // the rows kept show their new items
  }

  /** Scroll so the item at `index` is in view; its element (a placeholder until loaded). */
  reveal(index) {
    if (this.total === null || index < 0 || index >= this.total) return null;
    if (!this.rows.rendered.has(index)) {
      const y = Math.floor(index / this.lay.columns) * this.lay.rowHeight;
      const { top, bottom } = this.view();
      const delta = y < top ? y - top : y + this.lay.rowHeight - bottom;
      if (this.lay.scroller) this.lay.scroller.scrollTop += delta;
      else window.scrollBy(0, delta);
    }
    this.update();
    const el = this.elementAt(index);
    if (el) el.scrollIntoView({ block: "nearest" });
    return el;
  }

  destroy() {
    this.generation += 1;
    for (const controller of this.pending.values()) controller.abort();
    document.removeEventListener("scroll", this.onScroll, { capture: true });
    window.removeEventListener("resize", this.onResize);
    if (this.resizer) this.resizer.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}

/** A VirtualList (see there for the options). */
export function createVirtualList(options) {
  return new VirtualList(options);
}
