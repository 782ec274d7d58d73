// The "Models" sidebar tab: the library in one column of compact cards, each with "send to
// workflow", "copy <lora:FILESTEM:WEIGHT>" (LoRAs) and "open in the manager"; cards can be
// dragged onto the canvas. No side effects at import: it only exports createSidebar.

import { forgetModels, lookupModel, managerUrl } from "./api.js";
import { createBrowser } from "./browser.js";
import { copyText, h } from "./shared/dom.js";
import { loraString } from "./shared/lora.js";
import { icon } from "./parts.js";
import { toast } from "./notify.js";
import { preferredWeight } from "./payload.js";
import { canSend, sendToWorkflow, startDrag } from "./workflow.js";

/** "<lora:FILESTEM:WEIGHT>" for a library LoRA, at its preferred weight (else 1). */
async function loraTag(item) {
  const found = await lookupModel(item.sha256);
  const model = found.state === "ok" ? found.model : null;
  return loraString({ path: model?.path || item.path, name: item.name }, model ? preferredWeight(model) : 1);
}

function cardActions(item) {
  const buttons = [];
  if (canSend(item)) {
    buttons.push(
      h(
        "button",
        {
          type: "button",
          class: "hkz-icon-btn hkz-send",
          "aria-label": `Send ${item.name} to the workflow`,
          title: "Send to workflow",
          onclick: () => sendToWorkflow(item),
        },
        icon("plus"),
      ),
    );
  }
  if (item.type === "loras") {
    buttons.push(
      h(
        "button",
        {
          type: "button",
          class: "hkz-icon-btn hkz-copy",
          "aria-label": `Copy the LoRA tag of ${item.name}`,
          title: "Copy <lora:FILESTEM:WEIGHT>",
          onclick: async () => {
            const tag = await loraTag(item);
            if (await copyText(tag)) toast("success", "Copied", tag, { life: 2000 });
            else toast("warn", "Could not copy", tag, { life: 5000 });
          },
        },
        icon("copy"),
      ),
    );
  }
  buttons.push(
    h(
      "a",
      {
        class: "hkz-icon-btn",
        href: managerUrl(item.sha256),
        target: "_blank",
        rel: "noopener",
        "aria-label": `Open ${item.name} in the Hikaze manager`,
        title: "Open in the manager",
      },
      icon("external-link"),
    ),
  );
  return buttons;
}

/** The tab's content, built once and kept while the tab is closed (its filters stay). */
export function createSidebar() {
  let root = null;
  let browser = null;
  let stale = false;

  function build() {
    browser = createBrowser({ variant: "sidebar", actions: cardActions, onDragStart: startDrag });
    const refresh = h(
      "button",
      { type: "button", class: "hkz-icon-btn", "aria-label": "Refresh the list", title: "Refresh" },
      icon("refresh"),
    );
    refresh.addEventListener("click", () => {
      forgetModels(); // weights and covers edited in the manager meanwhile
      browser.reload();
    });
    root = h(
      "section",
      { class: "hkz-sidebar", "aria-labelledby": "hkz-sidebar-title" },
      h(
        "div",
        { class: "hkz-sidebar-head" },
        h("h2", { id: "hkz-sidebar-title", class: "hkz-sidebar-title" }, "Models"),
        refresh,
        h(
          "a",
          {
            class: "hkz-btn hkz-btn-link",
            href: managerUrl(),
            target: "_blank",
            rel: "noopener",
            title: "Open the full Hikaze manager in a new tab",
          },
          "Open manager ",
          icon("external-link"),
        ),
      ),
      h("p", { class: "hkz-hint" }, "Drag a card onto the canvas, or press + to send it to the workflow."),
      browser.el,
    );
  }

  return {
    /** ComfyUI calls this each time the tab shows (and may call it again for the same el). */
    render(el) {
      if (!root) build();
      if (root.parentElement !== el) el.replaceChildren(root);
      browser.load();
      if (stale) {
        stale = false;
        browser.reload();
      }
    },
    /** The library changed: reload now if the tab is open, else when it next opens. */
    refresh() {
      if (root && root.isConnected) browser.reload();
      else stale = true;
    },
  };
}
