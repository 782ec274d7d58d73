// Small DOM helpers for the ComfyUI extension. Text always goes in through text nodes
// (never as markup), so model names, tags and paths (user data) cannot inject markup.
// No side effects: ComfyUI loads every .js file here as an extension; this one only exports.

/**
 * Build an element: h("button", {class: "x", onclick: fn, "aria-label": "Close"}, "×").
 * "on..." attributes become listeners; `dataset` and `style` take objects; true sets an
 * empty attribute and false/null/undefined skips it; children are nodes or strings.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style") {
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
    } else if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "value" || key === "checked" || key === "selected" || key === "disabled") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays; null and false skipped). */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Remove every child, then append the given ones (as `append` does). */
export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

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

const HEX_COLOR = /^#[0-9a-fA-F]{6}$/;

/** A color from the API, only if it is a plain #RRGGBB (user data goes into CSS). */
export function safeColor(color, fallback = "#6e7681") {
  return typeof color === "string" && HEX_COLOR.test(color) ? color : fallback;
}

/** Run fn once, `ms` after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** 1536 -> "1.5 KB". */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(Number(bytes))) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A weight for display and for <lora:name:weight>: at most 3 decimals, no trailing zeros. */
export function formatWeight(value) {
  const n = Number(value);
  return Number.isFinite(n) ? String(Math.round(n * 1000) / 1000) : "1";
}

/** Copy text to the clipboard; falls back to a hidden textarea outside secure contexts. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused or no focus: fall through to the legacy path.
    }
  }
  const area = h("textarea", { class: "hkz-offscreen", "aria-hidden": "true", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
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
