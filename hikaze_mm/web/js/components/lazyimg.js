// Thumbnails that load only when they come near the viewport (one shared
// IntersectionObserver for the whole page, so 10,000 cards cost nothing until seen).

import { h } from "../../comfy/shared/dom.js";
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

const sources = new WeakMap(); // frame -> image URL

function load(frame) {
  const img = h("img", { alt: frame.dataset.alt || "", decoding: "async", draggable: "false" });
  img.addEventListener("load", () => {
    frame.classList.add("loaded");
    frame.replaceChildren(img);
  });
  img.addEventListener("error", () => frame.classList.add("failed"));
  img.src = sources.get(frame);
}

/** A thumbnail frame showing a placeholder letter until its image `src` (a URL, or "":
 * none) loads, once the frame comes near the viewport. */
export function lazyThumb(src, name, { cls = "thumb", alt = "" } = {}) {
  const frame = h("div", { class: cls }, thumbPlaceholder(name));
  if (src) {
    frame.dataset.alt = alt;
    sources.set(frame, src);
    observer.observe(frame);
  }
  return frame;
}

/** `root` leaves the page (a card scrolled out of a virtual grid): stop watching its thumbnails. */
export function releaseThumbs(root) {
  for (const frame of root.querySelectorAll(".thumb")) observer.unobserve(frame);
}
