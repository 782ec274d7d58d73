// The model picker: a modal dialog with the library filtered to a node's types. Clicking a
// card chooses it; Escape, the close button or a click outside cancels. No side effects at
// import: it only exports openPicker.

import { managerUrl } from "./api.js";
import { createBrowser } from "./browser.js";
import { h } from "./shared/dom.js";
import { icon } from "./parts.js";

let pickerCount = 0;

/** Open the picker; resolves to the chosen library item, or null when cancelled. */
export function openPicker({ title = "Choose a model", types = null } = {}) {
  pickerCount += 1;
  const titleId = `hkz-picker-title-${pickerCount}`;
  return new Promise((resolve) => {
    let chosen = null;
    const dialog = h("dialog", { class: "hkz-dialog", "aria-labelledby": titleId });
    const browser = createBrowser({
      variant: "picker",
      types,
      onPick(item) {
        chosen = item;
        dialog.close();
      },
    });
    const close = h(
      "button",
      { type: "button", class: "hkz-icon-btn", "aria-label": "Close", title: "Close" },
      icon("times"),
    );
    close.addEventListener("click", () => dialog.close());
    dialog.append(
      h(
        "div",
        { class: "hkz-dialog-head" },
        h("h2", { id: titleId, class: "hkz-dialog-title" }, title),
        h(
          "a",
          {
            class: "hkz-btn hkz-btn-link",
            href: managerUrl(),
            target: "_blank",
            rel: "noopener",
            title: "Open the full Hikaze manager in a new tab",
          },
          icon("external-link"),
          " Manager",
        ),
        close,
      ),
      browser.el,
    );
    // A click on the backdrop (the dialog element itself, outside its box) cancels.
    dialog.addEventListener("click", (event) => {
      if (event.target !== dialog) return;
      const box = dialog.getBoundingClientRect();
      const inside =
        event.clientX >= box.left &&
        event.clientX <= box.right &&
        event.clientY >= box.top &&
        event.clientY <= box.bottom;
      if (!inside) dialog.close();
    });
    dialog.addEventListener("close", () => {
      browser.destroy();
      dialog.remove();
      resolve(chosen);
    });
    document.body.append(dialog);
    dialog.showModal();
    browser.load();
    browser.focus();
  });
}
