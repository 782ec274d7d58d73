// Small view parts of the ComfyUI extension: names that wrap, PrimeIcons icons, thumbnails.
// The DOM helpers both pages use are in shared/dom.js. No side effects: ComfyUI loads every
// .js file here as an extension; this one only exports.

import { h } from "./shared/dom.js";

/** A file-like name that may wrap after "_", "-" and "." (a <wbr> after each). */
export function breakable(name) {
  const fragment = document.createDocumentFragment();
  for (const part of String(name ?? "").split(/(?<=[_\-.])/)) {
    if (fragment.childNodes.length) fragment.append(document.createElement("wbr"));
    fragment.append(part);
  }
  return fragment;
}

/** A PrimeIcons icon (ComfyUI ships the font), hidden from assistive technology. */
export function icon(name) {
  return h("i", { class: `pi pi-${name}`, "aria-hidden": "true" });
}

/** A model's thumbnail frame: its cover image (lazy), or the first letter of its name. */
export function thumb(src, name, cls = "hkz-thumb") {
  const letter = h("span", { class: "hkz-thumb-letter", "aria-hidden": "true" });
  letter.textContent = (String(name || "?").trim()[0] || "?").toUpperCase();
  const frame = h("span", { class: cls }, letter);
  if (src) {
    const img = h("img", { alt: "", loading: "lazy", decoding: "async", draggable: "false" });
    img.addEventListener("load", () => frame.classList.add("hkz-loaded"));
    img.addEventListener("error", () => img.remove());
    img.src = src;
    frame.append(img);
  }
  return frame;
}
