// Full-screen image viewer: a modal dialog showing one model's images at the high tier,
// with Previous/Next buttons and the Left/Right arrow keys, Escape (or Close) to leave.
// Focus stays inside while it is open (Tab cycles through its buttons) and goes back to
// the caller's choice when it closes.

import { imageUrl } from "../api.js";
import { h, replaceChildren } from "../../comfy/shared/dom.js";
import { t } from "../i18n.js";

/**
 * createImageViewer() -> {open(names, index, {title, isHidden, onReveal, onClose})}.
 * `isHidden(name)` true shows the image blurred under a "Show image" button (NSFW);
 * `onReveal(name)` is told when the user reveals one; `onClose(index)` gets the index shown
 * last, to put the focus back.
 */
export function createImageViewer() {
  const dialog = h("dialog", { class: "lightbox", "aria-label": t("details.imageViewer") });
  document.body.append(dialog);
  let names = [];
  let index = 0;
  let opts = {};

  const img = h("img", { class: "lightbox-img", alt: "" });
  const frame = h("div", { class: "lightbox-frame" }, img);
  const counter = h("p", { class: "lightbox-counter", "aria-live": "polite" });
  const prev = h(
    "button",
    { type: "button", class: "btn lightbox-nav lightbox-prev", "aria-label": t("details.previousImage"), onclick: () => go(-1) },
    "‹",
  );
  const next = h(
    "button",
    { type: "button", class: "btn lightbox-nav lightbox-next", "aria-label": t("details.nextImage"), onclick: () => go(1) },
    "›",
  );
  const closeButton = h(
    "button",
    { type: "button", class: "btn lightbox-close", "aria-label": t("common.close"), onclick: () => dialog.close() },
    "×",
  );
  replaceChildren(dialog, frame, prev, next, counter, closeButton);

  function show() {
    const name = names[index];
    const hidden = Boolean(opts.isHidden && opts.isHidden(name));
    img.src = imageUrl(name, "high");
    img.alt = t("details.fullImage", { name: opts.title || "", n: index + 1, total: names.length });
    frame.classList.toggle("nsfw-blurred", hidden);
    const old = frame.querySelector(".nsfw-show");
    if (old) old.remove();
    if (hidden) {
      frame.append(
        h(
          "button",
          {
            type: "button",
            class: "btn nsfw-show",
            onclick: (event) => {
              event.currentTarget.remove();
              frame.classList.remove("nsfw-blurred");
              if (opts.onReveal) opts.onReveal(name);
              closeButton.focus();
            },
          },
          t("details.nsfwShow"),
        ),
      );
    }
    counter.textContent = t("details.imageCounter", { n: index + 1, total: names.length });
    const several = names.length > 1;
    prev.hidden = !several;
    next.hidden = !several;
  }

  function go(step) {
    if (names.length < 2) return;
    index = (index + step + names.length) % names.length;
    show();
  }

  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      go(event.key === "ArrowLeft" ? -1 : 1);
    } else if (event.key === "Tab") {
      // Keep the focus inside (the browser's own controls included in no cycle).
      const stops = [...dialog.querySelectorAll("button")].filter((b) => !b.hidden);
      if (!stops.length) return;
      const at = stops.indexOf(document.activeElement);
      event.preventDefault();
      const to = event.shiftKey ? (at <= 0 ? stops.length - 1 : at - 1) : (at + 1) % stops.length;
      stops[to].focus();
    }
  });
  // A click on the dark backdrop (not on the image or a button) closes the viewer.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  dialog.addEventListener("close", () => {
    if (opts.onClose) opts.onClose(index);
  });

  return {
    open(list, start = 0, options = {}) {
      if (!list.length) return;
      names = [...list];
      index = Math.max(0, Math.min(start, names.length - 1));
      opts = options;
      show();
      if (!dialog.open) dialog.showModal();
      closeButton.focus();
    },
  };
}
