// The color theme: "auto" follows the system (prefers-color-scheme), "light" and "dark"
// force one. app.css defines every color for both; the choice is data-theme on <html>
// (none for auto) and is remembered in localStorage "hikaze.theme", shared by every tab.

import { h } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";

const KEY = "hikaze.theme";
const CHOICES = ["auto", "light", "dark"];
// U+FE0E asks for the text form of the symbol, not a color emoji.
const ICONS = { auto: "\u25D0", light: "\u2600\uFE0E", dark: "\u263E\uFE0E" };

function storedChoice() {
  try {
    const value = localStorage.getItem(KEY);
    return CHOICES.includes(value) ? value : "auto";
  } catch {
    return "auto"; // storage refused (privacy settings): follow the system
  }
}

function applyChoice(choice) {
  if (choice === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = choice;
}

// At import, before the first page renders, so the page never flashes the other theme.
applyChoice(storedChoice());

/** The header's button: each press moves auto -> light -> dark -> auto. */
export function createThemeToggle() {
  let choice = storedChoice();
  const button = h("button", {
    type: "button",
    class: "btn-icon theme-toggle",
    onclick() {
      choice = CHOICES[(CHOICES.indexOf(choice) + 1) % CHOICES.length];
      try {
        localStorage.setItem(KEY, choice);
      } catch {
        // not remembered, but applied to this page
      }
      update();
    },
  });
  function update() {
    applyChoice(choice);
    const label = t("theme.label", { mode: t(`theme.${choice}`) });
    button.textContent = ICONS[choice];
    button.dataset.theme = choice;
    button.setAttribute("aria-label", label);
    button.title = label;
  }
  // Another tab changed it.
  window.addEventListener("storage", (event) => {
    if (event.key !== KEY && event.key !== null) return;
    choice = storedChoice();
    update();
  });
  update();
  return button;
}
