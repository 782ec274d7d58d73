// Thumbnails that load only when they come near the viewport (one shared
// IntersectionObserver for the whole page, so 10,000 cards cost nothing until seen).

import { h } from "../dom.js";
import { thumbPlaceholder } from "./widgets.js";

const observer = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      load(entry.target);
    }
  },
  { rootMargin: "400px 0px" },
);

const sources = new WeakMap(); // frame -> {src, fallback}

async function load(frame) {
  const { src, fallback } = sources.get(frame) || {};
  let url = src;
  if (typeof url === "function") {
    try {
      url = await url();
    } catch {
      url = null;
    }
  }
  if (!url) return;
  const img = h("img", { alt: frame.dataset.alt || "", decoding: "async", draggable: "false" });
  img.addEventListener("load", () => {
    frame.classList.add("loaded");
    frame.replaceChildren(img);
  });
  img.addEventListener("error", async () => {
    frame.classList.add("failed");
    if (!fallback) return;
    sources.set(frame, { src: fallback, fallback: null });
    load(frame);
  });
  img.src = url;
}

/**
 * A thumbnail frame showing a placeholder letter until its image loads (when visible).
 * `src` is a URL, or an async function that finds one (or null: keep the placeholder);
 * `fallback` (async function) finds another URL when the first fails to load.
 */
export function lazyThumb(src, name, { cls = "thumb", alt = "", fallback = null } = {}) {
  const frame = h("div", { class: cls }, thumbPlaceholder(name));
  if (src) {
    frame.dataset.alt = alt;
    sources.set(frame, { src, fallback });
    observer.observe(frame);
  }
  return frame;
}
