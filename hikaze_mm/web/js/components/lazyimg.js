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

const sources = new WeakMap(); // frame -> src (a URL, or an async function returning one)

async function load(frame) {
  let url = sources.get(frame);
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
  img.addEventListener("error", () => frame.classList.add("failed"));
  img.src = url;
}

/**
 * A thumbnail frame showing a placeholder letter until its image loads (when visible).
 * `src` is a URL, or an async function that finds one (or null: keep the placeholder).
 */
export function lazyThumb(src, name, { cls = "thumb", alt = "" } = {}) {
  const frame = h("div", { class: cls }, thumbPlaceholder(name));
  if (src) {
    frame.dataset.alt = alt;
    sources.set(frame, src);
    observer.observe(frame);
  }
  return frame;
}
