// The arithmetic of a virtual list or grid (only the rows near the viewport are in the DOM,
// spacers stand for the others so the scroll bar covers the whole set), and the keyboard
// moves over the whole set. Pure: no DOM, no side effects (tests/js/virtual.test.mjs).
// virtual-list.js puts it to work; the manager's library grid and the ComfyUI browser use it.

/** The rows of `total` items in `columns` columns. */
export function rowCount(total, columns) {
  return total > 0 ? Math.ceil(total / Math.max(1, columns)) : 0;
}

/**
 * The items to render for a view: rows of `rowHeight` pixels (a card and the gap under it),
 * the view from `viewTop` to `viewBottom` in the list's own coordinates, `overscan` pixels
 * more above and below. Returns {start, end (exclusive), padTop, padBottom, height}: the
 * spacers above and below the rendered rows, and the height of the whole list (the last
 * row has no gap under it).
 */
export function windowOf({ total, columns, rowHeight, viewTop, viewBottom, overscan = 0, gap = 0 }) {
  const cols = Math.max(1, columns);
  const rows = rowCount(total, cols);
  const height = rows ? rows * rowHeight - gap : 0;
  if (!rows || rowHeight <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0, height };
  const top = Math.max(0, viewTop - overscan);
  const bottom = Math.max(top, viewBottom + overscan);
  const first = Math.min(rows - 1, Math.floor(top / rowHeight));
  const last = Math.min(rows - 1, Math.max(first, Math.ceil(bottom / rowHeight) - 1));
  return {
    start: first * cols,
    end: Math.min(total, (last + 1) * cols),
    padTop: first * rowHeight,
    padBottom: (rows - 1 - last) * rowHeight,
    height,
  };
}

/** The page numbers (of `pageSize` items) that hold the items start..end-1. */
export function pagesOf(start, end, pageSize) {
  if (end <= start) return [];
  const pages = [];
  for (let page = Math.floor(start / pageSize); page <= Math.floor((end - 1) / pageSize); page += 1) pages.push(page);
  return pages;
}

/** Of the cached `pages`, those to drop: farther than `keep` pages from the `needed` ones. */
export function farPages(pages, needed, keep) {
  if (!needed.length) return [...pages];
  const low = Math.min(...needed) - keep;
  const high = Math.max(...needed) + keep;
  return [...pages].filter((page) => page < low || page > high);
}

/**
 * Where a key moves the active item of a grid of `columns` over `total` items (rows of a
 * view: `pageRows`, for PageUp/PageDown); null when the key moves nothing or would leave
 * the set. ArrowDown on the last full row goes to the last item.
 */
export function moveIndex(index, key, { columns, total, pageRows = 1 }) {
  if (total <= 0) return null;
  const cols = Math.max(1, columns);
  const step = cols * Math.max(1, pageRows);
  let next;
  if (key === "ArrowLeft") next = index - 1;
  else if (key === "ArrowRight") next = index + 1;
  else if (key === "ArrowUp") next = index - cols;
  else if (key === "ArrowDown") next = rowCount(index + 1, cols) < rowCount(total, cols) ? Math.min(index + cols, total - 1) : total;
  else if (key === "PageUp") next = Math.max(0, index - step);
  else if (key === "PageDown") next = Math.min(total - 1, index + step);
  else if (key === "Home") next = 0;
  else if (key === "End") next = total - 1;
  else return null;
  return next >= 0 && next < total ? next : null;
}

/** The columns of a CSS grid from its computed grid-template-columns ("200px 200px ..."). */
export function columnsOf(template) {
  const text = String(template || "").trim();
  if (!text || text === "none") return 1;
  return Math.max(1, text.split(/\s+/).filter((part) => /^[\d.]+px$/.test(part)).length);
}
