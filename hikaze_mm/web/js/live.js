// The library's changes as they commit (GET api/events, Server-Sent Events): gathered for
// a moment, then handed over as one batch, so that a scan's hundred changes cost one
// refresh. The browser's EventSource reconnects by itself; "resync" (the server lost the
// catalog for a while) and a reconnection of our own stream both ask for everything.

const KINDS = ["models", "tags", "images", "pending", "jobs", "resync"];
const GATHER_MS = 400;
// At most one batch this often (a scan commits model after model).
const MIN_GAP_MS = 2000;

/** A batch: {kinds: Set of kinds, all: true when every shown thing should be read again}. */
export function followChanges(onBatch) {
  if (!window.EventSource) return () => {};
  const source = new EventSource("api/events");
  let batch = null;
  let timer = 0;
  let lastAt = -Infinity;
  let opened = false;
  const add = (kind, all) => {
    batch = batch || { kinds: new Set(), all: false };
    batch.kinds.add(kind);
    batch.all = batch.all || all;
    if (!timer) {
      const wait = Math.max(GATHER_MS, lastAt + MIN_GAP_MS - Date.now());
      timer = setTimeout(() => {
        const ready = batch;
        batch = null;
        timer = 0;
        lastAt = Date.now();
        onBatch(ready);
      }, wait);
    }
  };
  for (const kind of KINDS) {
    source.addEventListener(kind, (event) => {
      let data = {};
      try {
        data = JSON.parse(event.data);
      } catch {
        // a malformed event still says something changed
      }
      add(kind, kind === "resync" || Boolean(data.bulk));
    });
  }
  source.addEventListener("open", () => {
    if (opened) add("resync", true); // back after a break: what was sent meanwhile is lost
    opened = true;
  });
  return () => {
    clearTimeout(timer);
    source.close();
  };
}
