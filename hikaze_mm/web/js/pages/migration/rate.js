// Stage 2's speed and time left, from the statuses the page polls. Pure (no DOM, no clock):
// the Stage 2 panel feeds it one sample per status, and the tests feed it synthetic runs.
//
// A sample is what one status says at the server's time (`now`, in ms): the bytes done (the
// finished items' sizes plus the hashed part of the items in flight), the items done (the
// items in flight counted by their hashed fraction), the totals, and the most bytes one
// item in flight still has to hash. The window keeps the samples of the last WINDOW_MS;
// the speeds are the change across it, so one slow or fast poll does not swing them.
//
// Time left: from the bytes when a large file dominates (an item in flight holds at least
// half of the bytes left: bytes left / byte speed); otherwise from the items (items left /
// item rate), since with many small files the time goes into each item's work more than
// into reading bytes. When a large file starts or ends, the window starts afresh (the
// speeds of the other regime say nothing of this one). Nothing is estimated until the
// window spans MIN_SPAN_MS and holds MIN_SAMPLES samples.

export const WINDOW_MS = 10_000;
export const MIN_SPAN_MS = 2_000;
export const MIN_SAMPLES = 3;

/** The sample of one migration status (GET migration/status); `fallbackMs` when it has no `now`. */
export function sampleOf(status, fallbackMs) {
  const stats = status.stats;
  let fraction = 0;
  let largestLeft = 0;
  for (const item of status.current_items || []) {
    const total = Math.max(0, Number(item.bytes_total) || 0);
    const done = Math.min(total, Math.max(0, Number(item.bytes_done) || 0));
    if (total > 0) fraction += done / total;
    largestLeft = Math.max(largestLeft, total - done);
  }
  const finished = Number(stats.processed_items) || 0;
  return {
    t: typeof status.now === "number" ? status.now : fallbackMs,
    bytes: Number(stats.done_bytes) || 0,
    totalBytes: Number(stats.total_bytes) || 0,
    items: finished + fraction,
    finished,
    totalItems: Number(stats.total_items) || 0,
    largestLeft,
  };
}

/** True when one item in flight holds at least half of the bytes left. */
function largeFileLeft(sample) {
  const bytesLeft = sample.totalBytes - sample.bytes;
  return bytesLeft > 0 && 2 * sample.largestLeft >= bytesLeft;
}

/** The estimate when there is not enough data yet. */
const NONE = Object.freeze({ bytesPerSecond: null, itemsPerSecond: null, secondsLeft: null, basis: null });

/** A sliding window of samples of one run: add(sample), then estimate(). */
export class RateWindow {
  constructor({ windowMs = WINDOW_MS, minSpanMs = MIN_SPAN_MS, minSamples = MIN_SAMPLES } = {}) {
    this.windowMs = windowMs;
    this.minSpanMs = minSpanMs;
    this.minSamples = minSamples;
    this.samples = [];
  }

  reset() {
    this.samples = [];
  }

  add(sample) {
    const last = this.samples[this.samples.length - 1];
    if (last) {
      if (sample.t <= last.t) return; // the same status again (or a clock step back)
      // Fewer bytes or items done than before: another run started. A large file started
      // or ended: the speeds before it say nothing of the time left. Begin afresh.
      if (
        sample.bytes < last.bytes ||
        sample.finished < last.finished ||
        largeFileLeft(sample) !== largeFileLeft(last)
      ) {
        this.samples = [];
      }
    }
    this.samples.push(sample);
    // Drop the oldest while the rest still span the whole window.
    while (this.samples.length > this.minSamples && sample.t - this.samples[1].t >= this.windowMs) {
      this.samples.shift();
    }
  }

  /**
   * {bytesPerSecond, itemsPerSecond, secondsLeft, basis ("bytes" | "items")}, all null
   * until the window has enough data; secondsLeft is null while nothing moves.
   */
  estimate() {
    const n = this.samples.length;
    if (n < this.minSamples) return NONE;
    const first = this.samples[0];
    const last = this.samples[n - 1];
    const spanMs = last.t - first.t;
    if (spanMs < this.minSpanMs) return NONE;
    const seconds = spanMs / 1000;
    const bytesPerSecond = Math.max(0, last.bytes - first.bytes) / seconds;
    const itemsPerSecond = Math.max(0, last.items - first.items) / seconds;
    const bytesLeft = Math.max(0, last.totalBytes - last.bytes);
    const itemsLeft = Math.max(0, last.totalItems - last.items);
    const largeFile = largeFileLeft(last);
    const basis = largeFile ? "bytes" : "items";
    let secondsLeft = null;
    if (bytesLeft === 0 && itemsLeft === 0) secondsLeft = last.totalItems > 0 ? 0 : null;
    else if (largeFile) secondsLeft = bytesPerSecond > 0 ? bytesLeft / bytesPerSecond : null;
    else secondsLeft = itemsPerSecond > 0 ? itemsLeft / itemsPerSecond : null;
    return { bytesPerSecond, itemsPerSecond, secondsLeft, basis };
  }
}
