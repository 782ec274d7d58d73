// DOM helpers for both the manager's page (web/js) and the ComfyUI extension (web/comfy).
// This folder lives inside the extension's folder because ComfyUI serves only that one
// (WEB_DIRECTORY, at /extensions/<package>/); the manager serves the whole web folder under
// static/, so the same file is ../comfy/shared/dom.js from its scripts. Both reach it by a
// relative URL, under any prefix.
//
// Text always goes in through text nodes (never as markup), so model names, tags and paths
// (user data) cannot inject markup. No side effects: ComfyUI imports every .js file of the
// extension's folder; this one only exports.

/**
 * Build an element: h("button", {class: "btn", onclick: fn, "aria-label": "Close"}, "x").
 * Attributes starting with "on" become event listeners; `dataset` and `style` take objects;
 * `text` sets the text; boolean true sets an empty attribute, false/null/undefined skips
 * it. Children are nodes or strings (added as text nodes); arrays are flattened, null and
 * false skipped.
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
    } else if (key === "text") {
      el.textContent = value;
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

// Off screen without a style sheet (both pages have their own): set through the CSSOM,
// which a Content-Security-Policy without 'unsafe-inline' allows.
const OFFSCREEN = { position: "fixed", top: "0", left: "-10000px", width: "1px", height: "1px", opacity: "0" };

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
  const area = h("textarea", { style: OFFSCREEN, "aria-hidden": "true", readonly: true, tabindex: "-1" });
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
