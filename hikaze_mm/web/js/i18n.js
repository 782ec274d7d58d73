// Every string the UI shows, ready for translation: the English messages live in
// messages/<area>.js; add a locale object with the same keys to MESSAGES and it is picked
// from the browser's language. Placeholders are written {name}; t(key, {name: "x"}) fills
// them; numbers are shown in the locale's format. With a numeric params.n, a plural form "<key>.<category>" (Intl.PluralRules:
// "one", "few", ...) is used when the locale has one: "library.count.one": "{n} model".
// A missing key shows params._ (a fallback the caller passes for open-ended values) or
// the key itself.

import common from "./messages/common.js";
import library from "./messages/library.js";
import details from "./messages/details.js";
import pending from "./messages/pending.js";
import migration from "./messages/migration.js";
import downloads from "./messages/downloads.js";

const en = { ...common, ...library, ...details, ...pending, ...migration, ...downloads };

export const MESSAGES = { en };

function pickLocale() {
  for (const lang of navigator.languages || [navigator.language || "en"]) {
    const base = String(lang).toLowerCase().split("-")[0];
    if (MESSAGES[base]) return base;
  }
  return "en";
}

const locale = pickLocale();
const table = MESSAGES[locale];
const plurals = new Intl.PluralRules(locale);
const numbers = new Intl.NumberFormat(locale);

/** The message for `key` with {placeholders} filled from `params`. */
export function t(key, params = {}) {
  if (typeof params.n === "number") {
    const plural = `${key}.${plurals.select(params.n)}`;
    if (table[plural] !== undefined) key = plural;
  }
  const text = table[key] ?? en[key];
  if (text === undefined) return params._ !== undefined ? String(params._) : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    const value = params[name];
    if (value === undefined) return whole;
    return typeof value === "number" ? numbers.format(value) : String(value);
  });
}

/** Translate static markup: elements with data-i18n (text) or data-i18n-aria-label. */
export function applyTranslations(root) {
  document.documentElement.lang = locale;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]"))
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
}
