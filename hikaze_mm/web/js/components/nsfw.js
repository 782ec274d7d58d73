// How images of NSFW models show: "blur" (the default; a click reveals one), "hide" (no
// image, a placeholder) or "show". The choice lives in localStorage "hikaze.nsfw", so every
// page that shows model images reads the same setting.

import { h } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";

export const NSFW_KEY = "hikaze.nsfw";
export const NSFW_MODES = ["blur", "hide", "show"];

/** The current mode ("blur" when unset or unreadable). */
export function nsfwMode() {
  try {
    const value = localStorage.getItem(NSFW_KEY);
    return NSFW_MODES.includes(value) ? value : "blur";
  } catch {
    return "blur";
  }
}

/** Remember a mode (one of NSFW_MODES). */
export function setNsfwMode(mode) {
  if (!NSFW_MODES.includes(mode)) return;
  try {
    localStorage.setItem(NSFW_KEY, mode);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
}

/**
 * Mark the media box (a wrapper around a card's thumbnail frame) of an NSFW model for the
 * current mode: "show" leaves it; "blur" blurs the image under a button that reveals it
 * (the click does not reach the card); "hide" labels it (the caller loads no image).
 */
export function nsfwMedia(media, name, mode = nsfwMode()) {
  if (mode === "show") return media;
  if (mode === "hide") {
    media.classList.add("nsfw-hidden");
    media.append(h("span", { class: "nsfw-label" }, t("nsfw.hidden")));
    return media;
  }
  media.classList.add("nsfw-blur");
  const reveal = h(
    "button",
    {
      type: "button",
      class: "nsfw-reveal",
      tabindex: "-1",
      "aria-label": t("nsfw.revealLabel", { name }),
      onclick: (event) => {
        event.stopPropagation();
        media.classList.remove("nsfw-blur");
        media.classList.add("nsfw-revealed");
        reveal.remove();
      },
    },
    t("nsfw.reveal"),
  );
  media.append(reveal);
  return media;
}
